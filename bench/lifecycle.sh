#!/bin/bash
# bench/lifecycle.sh: how long do the everyday lifecycle commands take,
# rootless, pelagos against podman, in one run as the dedicated user
# pelagos-bench?
#
#   cycle     sh -c 'run -d --network none --name N localhost/busybox sleep 300;
#                    stop -t 0 N; rm N'           (BENCH_RUNS runs per tool)
#   ps50      ps -a with 50 containers existing   (--warmup 3, --runs 20)
#   ps1000    ps -a with 1000 containers existing (--warmup 3, --runs 20)
#
# The containers ps lists are stopped ones: pelagos has no `create`, so
# they are `pelagos run -d --network none localhost/busybox true` that
# have exited; podman's are `podman create --network none ... true`.
# When making podman's 1000 takes over BENCH_PODMAN_BUDGET seconds (300),
# podman is measured at 50 only and the result says so.
#
# Run it as root on Debian 12 from a clone of the repository. Knobs (env):
#   BENCH_RUNS=20            hyperfine --runs of the cycle
#   BENCH_PODMAN=0           leave podman out even when it is installed
#   BENCH_PODMAN_BUDGET=300  seconds podman may take to make its 1000 containers
#   BENCH_USER=pelagos-bench the non-root user the commands run as
#   BENCH_SRC=DIR            build pelagos from DIR instead of this clone
# Results: bench/results/lifecycle.json (every hyperfine result), .md, .txt.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

RUNS=${BENCH_RUNS:-20}
PS_RUNS=20
WARMUP=3
SMALL=50
LARGE=1000
BUDGET=${BENCH_PODMAN_BUDGET:-300}
NAME=pelagos-lifecycle # the cycle's container; each run removes it

need_root
need_go
install_packages hyperfine jq busybox-static

bench_begin

# Every container of the user, of both tools, goes at exit (and before
# the run: the user is dedicated to benchmarks).
have_podman=0
remove_containers() {
	timeout 300 runuser -u "$BENCH_USER" -- env -i "${user_env[@]}" "$PELAGOS" rm --all -f >/dev/null 2>&1
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
start_session_bus "$BIN"
install -d -m 0755 -o "$uid" -g "$gid" "$WORK/out"
busybox_image

podman_note=
if [ "${BENCH_PODMAN:-1}" = 0 ]; then
	podman_note="BENCH_PODMAN=0"
elif ! command -v podman >/dev/null; then
	podman_note="podman is not installed"
else
	say "podman"
	podman_config
	podman_busybox
	have_podman=1
fi
remove_containers

count() { as_user "$1" ps -a -q | wc -l; }

# ---- sanity: one cycle each, untimed (also starts pelagosd) ---------------------

cycle() { # cycle TOOL: the cycle, a sh script
	echo "$1 run -d --network none --name $NAME localhost/busybox sleep 300 >/dev/null && $1 stop -t 0 $NAME >/dev/null && $1 rm $NAME >/dev/null"
}
tools=(pelagos)
declare -A bin=([pelagos]=$PELAGOS [podman]=podman)
[ "$have_podman" = 1 ] && tools+=(podman)
say "sanity runs"
for t in "${tools[@]}"; do
	out=$(as_user sh -c "$(cycle "${bin[$t]}")" 2>&1) || die "the $t cycle fails as $BENCH_USER: $out"
	[ "$(count "${bin[$t]}")" = 0 ] || die "the $t cycle left a container"
done

{
	versions_header
	[ "$have_podman" = 1 ] && echo "podman:    $(podman --version), runtime runc, storage $(as_user podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null)"
	echo "hyperfine: $(hyperfine --version)"
} >"$WORK/out/versions.txt"
cat "$WORK/out/versions.txt"

# hf FILE NAME CMD [NAME CMD...] with RUNS set: one hyperfine run as the user.
hf() {
	local file=$1 a
	shift
	a=(hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$WORK/out/$file.json" --export-markdown "$WORK/out/$file.md")
	while [ $# -gt 0 ]; do a+=(--command-name "$1" "$2"); shift 2; done
	as_user "${a[@]}"
}

# ---- 1. the cycle -------------------------------------------------------------------

say "cycle: run -d + stop -t 0 + rm, $WARMUP warmup + $RUNS runs each"
args=()
for t in "${tools[@]}"; do args+=("cycle-$t" "sh -c '$(cycle "${bin[$t]}")'"); done
hf cycle "${args[@]}"
RUNS=$PS_RUNS

# ---- 2. ps -a at 50 and 1000 --------------------------------------------------------

# make_ctrs TOOL N: add containers until TOOL has N; fails past $BUDGET seconds.
make_ctrs() {
	local t=$1 n=$2 have start=$SECONDS
	have=$(count "${bin[$t]}")
	while [ "$have" -lt "$n" ]; do
		if [ "$t" = pelagos ]; then
			as_user "$PELAGOS" run -d --network none localhost/busybox true >/dev/null
		else
			as_user podman create --network none localhost/busybox true >/dev/null
		fi
		have=$((have + 1))
		if [ $((SECONDS - start)) -gt "$BUDGET" ]; then
			echo "$t: $have containers after $((SECONDS - start)) s, over the ${BUDGET} s budget"
			return 1
		fi
	done
	echo "$t: $n containers ($((SECONDS - start)) s to make them)" | tee -a "$WORK/out/make.txt"
}
# settled TOOL N: TOOL lists exactly N containers, none running.
settled() {
	local t=$1 n=$2 running
	for _ in $(seq 1 100); do
		running=$(as_user "${bin[$t]}" ps -q | wc -l)
		[ "$running" = 0 ] && break
		sleep 0.1
	done
	[ "$running" = 0 ] || die "$t: $running containers still running"
	[ "$(count "${bin[$t]}")" = "$n" ] || die "$t lists $(count "${bin[$t]}") containers, not $n"
}

: >"$WORK/out/make.txt"
for t in "${tools[@]}"; do make_ctrs "$t" "$SMALL" || die "$t: making $SMALL containers took too long"; done
args=()
for t in "${tools[@]}"; do
	settled "$t" "$SMALL"
	args+=("ps$SMALL-$t" "${bin[$t]} ps -a")
done
say "ps -a with $SMALL containers"
hf ps$SMALL "${args[@]}"

make_ctrs pelagos "$LARGE" || die "pelagos: making $LARGE containers took too long"
settled pelagos "$LARGE"
args=("ps$LARGE-pelagos" "$PELAGOS ps -a")
if [ "$have_podman" = 1 ]; then
	if out=$(make_ctrs podman "$LARGE"); then
		echo "$out"
		settled podman "$LARGE"
		args+=("ps$LARGE-podman" "podman ps -a")
	else
		podman_note="podman measured at $SMALL only: $out"
		echo "note: $podman_note"
	fi
fi
say "ps -a with $LARGE containers"
hf ps$LARGE "${args[@]}"

# ---- results ----------------------------------------------------------------------

mkdir -p "$RESULTS"
jq -s '{results: [.[].results[]]}' "$WORK/out/cycle.json" "$WORK/out/ps$SMALL.json" "$WORK/out/ps$LARGE.json" >"$RESULTS/lifecycle.json"
for f in cycle ps$SMALL ps$LARGE; do printf '### %s\n\n' "$f"; cat "$WORK/out/$f.md"; echo; done >"$RESULTS/lifecycle.md"
jq -r '.results[] | [.command, .median, .mean, (.stddev // 0), .min, .max] | map(if type == "number" then . * 1000 else . end) | @tsv' \
	"$RESULTS/lifecycle.json" >"$WORK/out/stats.tsv"
{
	echo
	cat "$WORK/out/versions.txt"
	echo
	cat "$WORK/out/make.txt"
	[ -z "$podman_note" ] || echo "note: $podman_note"
	echo
	awk -F'\t' -v small="$SMALL" -v large="$LARGE" '
		{ name[NR] = $1; med[NR] = $2; mean[NR] = $3; sd[NR] = $4; lo[NR] = $5; hi[NR] = $6; m[$1] = $2 }
		END {
			printf "%-15s %10s %16s %9s %9s\n", "command", "median ms", "mean ± sd ms", "min ms", "max ms"
			for (i = 1; i <= NR; i++)
				printf "%-15s %10.2f %9.2f ± %5.2f %9.2f %9.2f\n", name[i], med[i], mean[i], sd[i], lo[i], hi[i]
			printf "\n(medians)\n"
			split("cycle ps" small " ps" large, what, " ")
			for (i = 1; i <= 3; i++)
				if ((what[i] "-podman") in m)
					printf "podman/pelagos, %-7s = %.2fx (%.2f / %.2f ms)\n", what[i], m[what[i] "-podman"] / m[what[i] "-pelagos"], m[what[i] "-podman"], m[what[i] "-pelagos"]
			printf "pelagos ps -a, %d vs %d containers = %.2fx\n", large, small, m["ps" large "-pelagos"] / m["ps" small "-pelagos"]
			if (("ps" large "-podman") in m)
				printf "podman ps -a, %d vs %d containers = %.2fx\n", large, small, m["ps" large "-podman"] / m["ps" small "-podman"]
			if (("ps" small "-podman") in m)
				printf "target: pelagos ps -a at %d containers faster than podman ps -a at %d: %s (%.2f ms vs %.2f ms; 39.8 ms in an earlier measurement)\n", large, small, (m["ps" large "-pelagos"] < m["ps" small "-podman"]) ? "MET" : "NOT MET", m["ps" large "-pelagos"], m["ps" small "-podman"]
			else
				printf "target: pelagos ps -a at %d containers faster than podman ps -a at %d: no podman in this run (pelagos %.2f ms; podman took 39.8 ms in an earlier measurement)\n", large, small, m["ps" large "-pelagos"]
		}' "$WORK/out/stats.tsv"
} | tee "$RESULTS/lifecycle.txt"
echo "results: $RESULTS/lifecycle.{json,md,txt}"
