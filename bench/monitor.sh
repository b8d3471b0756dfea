#!/bin/bash
# bench/monitor.sh: how much memory does a running container cost in the
# processes that outlive the service? As the dedicated user pelagos-bench:
#
#   pelagos  N x `pelagos run -d --network none localhost/busybox sleep 1d`:
#            one pelagos-monitor per container, one pelagos-holder per user
#   podman   N x `podman run -d --network none localhost/busybox sleep 1d`
#            (runc): one conmon per container, one pause process per user
#
# For each process it reads /proc/PID/smaps_rollup (as root) and reports
# PSS (shared pages split among the processes that map them: the fair
# share, which sums to what the processes really cost), RSS and
# Private_Dirty (pages no other process has: what killing the process
# would free for sure). Per container = the sum over the N monitors (or
# conmons) / N; the holder (or pause process) is shown once and
# amortized over the N containers. The containers' own processes and
# pelagosd (which may exit when idle) are shown for context only.
#
# Run it as root on Debian 12 from a clone of the repository. Knobs (env):
#   BENCH_N=20               how many containers each tool runs at once
#   BENCH_SETTLE=5           seconds to wait after the last start before reading memory
#   BENCH_INSTALL_PODMAN=1   apt-get install podman when it is missing
#   BENCH_PODMAN=0           leave podman out even when it is installed
#   BENCH_USER=pelagos-bench the non-root user the commands run as
#   BENCH_SRC=DIR            build pelagos from DIR instead of this clone
# Results: bench/results/monitor.txt (the table), monitor-procs.tsv (every
# process read), monitor-smaps-*.txt (/proc/PID/smaps of one monitor, one
# conmon, the holder and the pause process, to see where the memory is).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

N=${BENCH_N:-20}
SETTLE=${BENCH_SETTLE:-5}
IMAGE=localhost/busybox

need_root
need_go
extra=(jq busybox-static)
if [ "${BENCH_INSTALL_PODMAN:-0}" = 1 ]; then extra+=(podman runc); fi
install_packages "${extra[@]}"

bench_begin

# Every container of both tools for the user goes before the run and on
# every exit path (the user is dedicated to benchmarks).
have_podman=0
remove_containers() {
	[ -n "${PELAGOS:-}" ] && timeout 300 runuser -u "$BENCH_USER" -- env -i "${user_env[@]}" "$PELAGOS" rm --all -f >/dev/null 2>&1
	if [ "$have_podman" = 1 ]; then
		timeout 300 runuser -u "$BENCH_USER" -- env -i "${user_env[@]}" podman rm -af -t 0 >/dev/null 2>&1
	fi
	return 0
}
on_exit remove_containers

say "build pelagos"
BIN=$WORK/bin
build_pelagos "$BIN"
PELAGOS=$BIN/pelagos
[ -x "$BIN/pelagos-monitor" ] && [ -x "$BIN/pelagos-holder" ] ||
	die "BENCH_SRC=$PELAGOS_SRC has no pelagos-monitor or pelagos-holder: it predates the holder and monitor process model"
# A freshly written binary's page-cache pages are dirty until written
# back, and smaps counts them as Private_Dirty of every process mapping
# them: write them back first.
sync "$BIN"/*
start_session_bus "$BIN"
install -d -m 0755 -o "$uid" -g "$gid" "$WORK/out"
busybox_image

podman_note=
if [ "${BENCH_PODMAN:-1}" = 0 ]; then
	podman_note="BENCH_PODMAN=0"
elif ! command -v podman >/dev/null; then
	podman_note="podman is not installed (BENCH_INSTALL_PODMAN=1 installs it)"
else
	say "podman"
	podman_config
	podman_busybox
	have_podman=1
fi
remove_containers

# ---- reading memory -----------------------------------------------------------

# pids_of NAME: the bench user's processes named NAME (as pgrep -x sees it), one a line.
pids_of() { pgrep -u "$uid" -x "$1" || true; }

# descendants PID...: every descendant of the PIDs, one a line.
descendants() {
	local p c
	for p in "$@"; do
		for c in $(pgrep -P "$p" || true); do
			echo "$c"
			descendants "$c"
		done
	done
}

# mem ROW PID...: appends one line per PID to $WORK/out/procs.tsv (row,
# pid, name, and the smaps_rollup fields in KiB) and prints the sums
# "procs rss pss private_dirty pss_anon pss_file" over the PIDs.
mem() {
	local row=$1 pid
	shift
	for pid in "$@"; do
		awk -v row="$row" -v pid="$pid" -v name="$(cat "/proc/$pid/comm")" '
			{ v[$1] = $2 }
			END { printf "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", row, pid, name, v["Rss:"], v["Pss:"], v["Private_Dirty:"], v["Private_Clean:"], v["Shared_Clean:"], v["Pss_Anon:"], v["Pss_File:"] }
		' "/proc/$pid/smaps_rollup" >>"$WORK/out/procs.tsv"
	done
	awk -F'\t' -v row="$row" '
		$1 == row { n++; rss += $4; pss += $5; pd += $6; pa += $9; pf += $10 }
		END { printf "%d %d %d %d %d %d\n", n, rss, pss, pd, pa, pf }
	' "$WORK/out/procs.tsv"
}

# keep_smaps NAME PID: saves /proc/PID/smaps as monitor-smaps-NAME.txt.
keep_smaps() { cp "/proc/$2/smaps" "$WORK/out/smaps-$1.txt"; }

printf 'row\tpid\tname\trss_kib\tpss_kib\tprivate_dirty_kib\tprivate_clean_kib\tshared_clean_kib\tpss_anon_kib\tpss_file_kib\n' >"$WORK/out/procs.tsv"
: >"$WORK/out/rows.txt" # ROW ONCE procs rss pss private_dirty pss_anon pss_file

# row ROW ONCE PID...: reads the PIDs' memory into rows.txt; ONCE is 1 for a
# per-user process (shown once and amortized), 0 for per-container ones,
# - for context rows.
row() {
	local r=$1 once=$2
	shift 2
	echo "$r $once $(mem "$r" "$@")" >>"$WORK/out/rows.txt"
}

# wait_count NAME WANT: waits up to 10 s until the user has WANT processes NAME.
wait_count() {
	for _ in $(seq 1 100); do
		[ "$(user_procs "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# run_n TOOL: starts N detached sleep containers with TOOL, checks they all
# run, and writes their ids to $WORK/out/TOOL.ids.
run_n() {
	local t=$1 bin i start
	bin=$PELAGOS
	[ "$t" = podman ] && bin=podman
	: >"$WORK/out/$t.ids"
	start=$(date +%s%N)
	for i in $(seq 1 "$N"); do
		as_user "$bin" run -d --network none "$IMAGE" sleep 1d >>"$WORK/out/$t.ids" ||
			die "$t run -d failed at container $i"
	done
	echo "$t: $N containers started in $((($(date +%s%N) - start) / 1000000)) ms" | tee -a "$WORK/out/timing.txt"
	[ "$(as_user "$bin" ps -q | wc -l)" = "$N" ] || die "$t: $(as_user "$bin" ps -q | wc -l) containers run, not $N"
}

# stop_n TOOL: stops (-t 0) and removes TOOL's containers.
stop_n() {
	local t=$1 bin start
	bin=$PELAGOS
	[ "$t" = podman ] && bin=podman
	start=$(date +%s%N)
	# shellcheck disable=SC2046 # one id a word
	as_user "$bin" stop -t 0 $(cat "$WORK/out/$t.ids") >/dev/null
	# shellcheck disable=SC2046
	as_user "$bin" rm $(cat "$WORK/out/$t.ids") >/dev/null
	echo "$t: $N containers stopped and removed in $((($(date +%s%N) - start) / 1000000)) ms" | tee -a "$WORK/out/timing.txt"
}

leftovers=()
# check_clean TOOL PROGRAM...: TOOL lists no container, and none of the
# PROGRAMs (nor pasta, slirp4netns or a container's sleep) runs.
check_clean() {
	local t=$1 bin p n
	shift
	bin=$PELAGOS
	[ "$t" = podman ] && bin=podman
	n=$(as_user "$bin" ps -a -q | wc -l)
	[ "$n" = 0 ] || leftovers+=("$t: $n containers")
	for p in "$@" pasta pasta.avx2 slirp4netns sleep; do
		wait_count "$p" 0 || leftovers+=("$t: $(user_procs "$p") $p processes")
	done
}

: >"$WORK/out/timing.txt"

# ---- pelagos --------------------------------------------------------------------

say "pelagos: $N x run -d --network none $IMAGE sleep 1d"
run_n pelagos
wait_count pelagos-monitor "$N" || die "$(user_procs pelagos-monitor) pelagos-monitor processes run, not $N"
[ "$(user_procs pelagos-holder)" = 1 ] || die "$(user_procs pelagos-holder) pelagos-holder processes run, not 1"
sleep "$SETTLE"
mapfile -t mons < <(pids_of pelagos-monitor)
holder=$(pids_of pelagos-holder)
mapfile -t inside < <(descendants "${mons[@]}")
row pelagos-monitor 0 "${mons[@]}"
row pelagos-holder 1 "$holder"
row pelagos-container - "${inside[@]}"
mapfile -t svc < <(pids_of pelagosd)
[ ${#svc[@]} -gt 0 ] && row pelagosd - "${svc[@]}"
keep_smaps pelagos-monitor "${mons[0]}"
keep_smaps pelagos-holder "$holder"
ps -o pid,ppid,rss,comm,args --ppid "$holder" --pid "$holder" >"$WORK/out/ps-pelagos.txt"
stop_n pelagos
check_clean pelagos pelagos-monitor

# ---- podman ---------------------------------------------------------------------

if [ "$have_podman" = 1 ]; then
	say "podman: $N x run -d --network none $IMAGE sleep 1d"
	run_n podman
	wait_count conmon "$N" || die "$(user_procs conmon) conmon processes run, not $N"
	sleep "$SETTLE"
	mapfile -t cmons < <(pids_of conmon)
	pause=$(cat "$runtime_dir/libpod/tmp/pause.pid" 2>/dev/null || true)
	[ -n "$pause" ] && [ -d "/proc/$pause" ] || die "podman's pause process ($runtime_dir/libpod/tmp/pause.pid) does not run"
	pause_name=$(cat "/proc/$pause/comm")
	mapfile -t inside < <(descendants "${cmons[@]}")
	row conmon 0 "${cmons[@]}"
	echo "podman's pause process: pid $pause, named \"$pause_name\"" >>"$WORK/out/timing.txt"
	row podman-pause 1 "$pause"
	row podman-container - "${inside[@]}"
	keep_smaps conmon "${cmons[0]}"
	keep_smaps podman-pause "$pause"
	stop_n podman
	check_clean podman conmon
fi

# ---- the table --------------------------------------------------------------------

mkdir -p "$RESULTS"
cp "$WORK/out/procs.tsv" "$RESULTS/monitor-procs.tsv"
for f in "$WORK"/out/smaps-*.txt; do cp "$f" "$RESULTS/monitor-${f##*/}"; done
{
	echo
	versions_header
	if [ "$have_podman" = 1 ]; then
		echo "podman:    $(podman --version), runtime $(runc --version | head -1), $(conmon --version | head -1)"
	else
		echo "podman:    skipped ($podman_note)"
	fi
	echo "containers: $N per tool, --network none, sleep 1d; memory read ${SETTLE} s after the last start"
	cat "$WORK/out/timing.txt"
	echo
	awk -v n="$N" '
		function mib(k) { return k / 1024 }
		{
			r[NR] = $1; once[NR] = $2; procs[NR] = $3; rss[NR] = $4; pss[NR] = $5; pd[NR] = $6; pa[NR] = $7; pf[NR] = $8
			idx[$1] = NR
		}
		END {
			printf "%-24s %5s %9s %9s %9s %9s %9s | %9s %9s %9s\n", "process (MiB)", "procs", "PSS", "PSS anon", "PSS file", "RSS", "PrivDirty", "PSS/ctr", "RSS/ctr", "PD/ctr"
			for (i = 1; i <= NR; i++) {
				div = (once[i] == "-") ? 0 : n
				printf "%-24s %5d %9.2f %9.2f %9.2f %9.2f %9.2f | ", r[i], procs[i], mib(pss[i]), mib(pa[i]), mib(pf[i]), mib(rss[i]), mib(pd[i])
				if (once[i] == "-") printf "%9s %9s %9s  (context)\n", "-", "-", "-"
				else printf "%9.2f %9.2f %9.2f%s\n", mib(pss[i]) / n, mib(rss[i]) / n, mib(pd[i]) / n, (once[i] == 1) ? "  (once per user, /" n ")" : ""
			}
			m = idx["pelagos-monitor"]; h = idx["pelagos-holder"]
			printf "\nper container, what outlives the service:\n"
			printf "  pelagos  monitor %.2f MiB PSS (RSS %.2f, Private_Dirty %.2f) + holder/%d %.2f = %.2f MiB PSS\n", mib(pss[m]) / n, mib(rss[m]) / n, mib(pd[m]) / n, n, mib(pss[h]) / n, (mib(pss[m]) + mib(pss[h])) / n
			p = idx["podman-pause"]
			if ("conmon" in idx) {
				c = idx["conmon"]
				printf "  podman   conmon  %.2f MiB PSS (RSS %.2f, Private_Dirty %.2f) + pause/%d  %.2f = %.2f MiB PSS\n", mib(pss[c]) / n, mib(rss[c]) / n, mib(pd[c]) / n, n, mib(pss[p]) / n, (mib(pss[c]) + mib(pss[p])) / n
				printf "\nmonitor/conmon: PSS %.2fx, RSS %.2fx, Private_Dirty %.2fx\n", pss[m] / pss[c], rss[m] / rss[c], pd[m] / pd[c]
				printf "(monitor + holder/%d)/(conmon + pause/%d): PSS %.2fx\n", n, n, (pss[m] + pss[h]) / (pss[c] + pss[p])
				printf "holder/pause, once per user: PSS %.2fx (%.2f vs %.2f MiB)\n", pss[h] / pss[p], mib(pss[h]), mib(pss[p])
			}
		}' "$WORK/out/rows.txt"
	echo
	echo "spread over the processes, KiB (min / median / max):"
	for r in pelagos-monitor conmon; do
		awk -F'\t' -v r="$r" '$1 == r { print $5, $6 }' "$WORK/out/procs.tsv" | sort -n | awk -v r="$r" '
			{ pss[NR] = $1; pd[NR] = $2 }
			END { if (NR) printf "  %-16s PSS %d / %d / %d\n", r, pss[1], pss[int((NR + 1) / 2)], pss[NR] }'
		awk -F'\t' -v r="$r" '$1 == r { print $6 }' "$WORK/out/procs.tsv" | sort -n | awk '
			{ pd[NR] = $1 }
			END { if (NR) printf "  %-16s Private_Dirty %d / %d / %d\n", "", pd[1], pd[int((NR + 1) / 2)], pd[NR] }'
	done
	if [ ${#leftovers[@]} -gt 0 ]; then
		printf 'LEFTOVERS: %s\n' "${leftovers[@]}"
	else
		echo "leftovers: none (no container listed; no pelagos-monitor, conmon, pasta, slirp4netns or container sleep left)"
	fi
} | tee "$RESULTS/monitor.txt"
echo "results: $RESULTS/monitor.txt, monitor-procs.tsv, monitor-smaps-*.txt"
[ ${#leftovers[@]} -eq 0 ]
