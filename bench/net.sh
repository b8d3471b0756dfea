#!/bin/bash
# bench/net.sh: how fast does TCP go through a published port, rootless,
# compared with the host's own loopback? In one run, as the dedicated
# user pelagos-bench, a sender on the host (bench/tcpbench) writes
# BENCH_NET_MB MiB to a sink, each way BENCH_NET_REPS times, round-robin:
#
#   raw          tcpbench sink on 127.0.0.1:PORT                (host loopback)
#   raw-nc       busybox nc -l -p PORT on the host              (host loopback)
#   pelagos-nc   pelagos run -d -p 127.0.0.1:PORT:5001 localhost/busybox sh -c 'nc -l -p 5001 >/dev/null'
#   pelagos      the same with tcpbench sink in the container (bind-mounted)
#   podman-nc    podman run -d -p 127.0.0.1:PORT:5001 ... nc   (when installed)
#   podman       the same with tcpbench sink in the container
#
# pelagos forwards the port with pasta (its default network); podman 4.x
# with rootlessport over slirp4netns (its default). The sender's clock
# runs from connect until the sink, having read the whole stream, closes
# its side: data buffered on the way counts as not yet delivered.
# busybox nc reads in small pieces and is the slower sink, so each
# container row is compared with the raw row of the same sink.
#
# Run it as root on Debian 12 from a clone of the repository. Knobs (env):
#   BENCH_NET_MB=1024        MiB sent per transfer
#   BENCH_NET_REPS=3         transfers per row (the table shows the median)
#   BENCH_INSTALL_PODMAN=1   apt-get install podman when it is missing
#   BENCH_PODMAN=0           leave podman out even when it is installed
#   BENCH_USER=pelagos-bench the non-root user the commands run as
#   BENCH_SRC=DIR            build pelagos from DIR instead of this clone
# Results: bench/results/net.txt (versions, table, every transfer), net.md.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

MB=${BENCH_NET_MB:-1024}
REPS=${BENCH_NET_REPS:-3}
CTR_PORT=5001 # the sinks' port inside the containers
TIMEOUT=300   # seconds any one transfer may take
[[ $MB =~ ^[1-9][0-9]*$ ]] || die "BENCH_NET_MB must be a positive whole number of MiB"
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "BENCH_NET_REPS must be a positive whole number"

need_root
need_go
extra=(jq busybox-static passt slirp4netns iproute2)
if [ "${BENCH_INSTALL_PODMAN:-0}" = 1 ]; then extra+=(podman); fi
install_packages "${extra[@]}"

bench_begin
tun_allow # pasta and slirp4netns open /dev/net/tun; the old mode comes back at exit

# ---- what runs, and what goes at exit ----------------------------------------------

pelagos_ctrs=() # containers made here, removed at exit whatever happens
podman_ctrs=()
host_sink= # pid of a sink running on the host

remove_containers() {
	local id
	if [ -n "$host_sink" ]; then
		kill -s KILL "$host_sink" 2>/dev/null
		wait "$host_sink" 2>/dev/null
		host_sink=
	fi
	for id in "${pelagos_ctrs[@]}"; do
		timeout 30 runuser -u "$BENCH_USER" -- env -i "${user_env[@]}" "$PELAGOS" rm -f "$id" >/dev/null 2>&1
	done
	for id in "${podman_ctrs[@]}"; do
		timeout 30 runuser -u "$BENCH_USER" -- env -i "${user_env[@]}" podman rm -f -t 0 "$id" >/dev/null 2>&1
	done
	pelagos_ctrs=()
	podman_ctrs=()
}
on_exit remove_containers

# ---- pelagos, tcpbench, the session bus, the image ---------------------------------

say "build pelagos and bench/tcpbench"
BIN=$WORK/bin
build_pelagos "$BIN"
# Static, so the busybox containers can run it from a bind mount.
(cd "$PELAGOS_ROOT" && CGO_ENABLED=0 go build -trimpath -o "$BIN/tcpbench" ./bench/tcpbench) || die "build bench/tcpbench failed"
chmod 755 "$BIN/tcpbench"
PELAGOS=$BIN/pelagos
TCPBENCH=$BIN/tcpbench
start_session_bus "$BIN"
install -d -m 0755 -o "$uid" -g "$gid" "$WORK/out"
busybox_image

# ---- podman ---------------------------------------------------------------------

have_podman=0
podman_note=
podman_net=
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

# ---- one transfer ---------------------------------------------------------------------

# wait_listening WHAT: wait until WHAT (a command printing /proc/net/tcp
# and tcp6 of some network namespace) shows a listener on $CTR_PORT.
wait_listening() {
	local hex
	hex=$(printf '%04X' "$CTR_PORT")
	for _ in $(seq 1 200); do
		"$@" 2>/dev/null | awk -v p=":$hex" 'substr($2, length($2) - 4) == p && $4 == "0A" { f = 1 } END { exit !f }' && return 0
		sleep 0.05
	done
	return 1
}

# send PORT: the sender, as the user, to 127.0.0.1:PORT; sets RATE (MiB/s).
send() {
	local out
	out=$(timeout "$TIMEOUT" runuser -u "$BENCH_USER" -- env -i "${user_env[@]}" "$TCPBENCH" send "127.0.0.1:$1" "$MB") ||
		die "tcpbench send to 127.0.0.1:$1 failed: $out"
	RATE=$(jq -r '.mb_per_s' <<<"$out")
}

# check_bytes JSON WHERE: the sink's report says the whole stream arrived.
check_bytes() {
	local n
	n=$(jq -r '.bytes' <<<"$1" 2>/dev/null || echo "?")
	[ "$n" = $((MB * 1048576)) ] || die "$2: the sink read $n bytes, not $((MB * 1048576)): $1"
}

# host ROW: one transfer to a sink on the host's loopback; sets RATE.
host() {
	local port sink_out=$WORK/out/sink.json
	port=$(free_port)
	case $1 in
	raw) as_user "$TCPBENCH" sink "127.0.0.1:$port" >"$sink_out" & ;;
	# busybox nc listens on every address: the port is open for as
	# long as one transfer takes.
	raw-nc) as_user busybox nc -l -p "$port" </dev/null >/dev/null & ;;
	esac
	host_sink=$!
	for _ in $(seq 1 250); do
		[ -n "$(ss -Htln "sport = :$port")" ] && break
		sleep 0.02
	done
	send "$port"
	wait "$host_sink" || die "$1: the sink on the host failed"
	host_sink=
	if [ "$1" = raw ]; then check_bytes "$(cat "$sink_out")" "$1"; fi
}

# ctr ENGINE ROW: one transfer to a sink in a new container of ENGINE
# (pelagos or podman) behind -p 127.0.0.1:PORT:$CTR_PORT; sets RATE.
# The container is started (untimed) before and removed after; its name
# is recorded first, so the exit trap removes it whatever happens.
ctr() {
	local engine=$1 row=$2 port name out code bin=$PELAGOS opts=() cmd=()
	[ "$engine" = podman ] && bin=podman
	port=$(free_port)
	ctr_seq=$((ctr_seq + 1))
	name=pelagos-bench-net-$$-$ctr_seq
	case $row in
	*-nc) cmd=(sh -c "nc -l -p $CTR_PORT >/dev/null") ;;
	*)
		opts=(-v "$TCPBENCH:/tcpbench:ro")
		cmd=(/tcpbench sink "0.0.0.0:$CTR_PORT")
		;;
	esac
	if [ "$engine" = podman ]; then podman_ctrs=("$name"); else pelagos_ctrs=("$name"); fi
	out=$(as_user "$bin" run -d --name "$name" -p "127.0.0.1:$port:$CTR_PORT" "${opts[@]}" localhost/busybox "${cmd[@]}" 2>&1) ||
		die "$row: $engine run failed: $out"
	wait_listening as_user "$bin" exec "$name" cat /proc/net/tcp /proc/net/tcp6 ||
		die "$row: nothing listens on port $CTR_PORT in container $name"
	if [ "$engine" = podman ] && [ -z "$podman_net" ]; then
		# What podman used: its network and what forwards -p.
		podman_net=$(as_user podman inspect --format '{{.HostConfig.NetworkMode}}' "$name" 2>/dev/null || echo "?")
		podman_fwd=other
		[ "$(user_procs rootlessport)" -gt 0 ] && podman_fwd=rootlessport
	fi
	send "$port"
	code=$(timeout 60 runuser -u "$BENCH_USER" -- env -i "${user_env[@]}" "$bin" wait "$name" 2>&1 | tail -1) || true
	[ "$code" = 0 ] || die "$row: the sink in container $name ended with '$code'"
	if [ ${#opts[@]} -gt 0 ]; then
		check_bytes "$(as_user "$bin" logs "$name" 2>&1 | tail -1)" "$row"
	fi
	as_user "$bin" rm "$name" >/dev/null
	if [ "$engine" = podman ]; then podman_ctrs=(); else pelagos_ctrs=(); fi
}

# measure ROW: one transfer of ROW; sets RATE.
measure() {
	RATE=
	case $1 in
	raw | raw-nc) host "$1" ;;
	pelagos*) ctr pelagos "$1" ;;
	podman*) ctr podman "$1" ;;
	esac
}
ctr_seq=0

# ---- sanity, then the transfers -------------------------------------------------------

names=(raw raw-nc pelagos-nc pelagos)
podman_net= # podman's network for the containers here, and what forwarded -p
podman_fwd=
if [ "$have_podman" = 1 ]; then
	names+=(podman-nc podman)
else
	echo "note: podman skipped: $podman_note"
fi

# One small transfer each, untimed: checks every path, starts pelagosd
# and tells which network podman uses.
say "sanity: one 1 MiB transfer per row"
full=$MB
MB=1
for n in "${names[@]}"; do measure "$n"; done
MB=$full

say "versions"
{
	versions_header
	echo "passt:     $(dpkg-query -W -f '${Version}' passt 2>/dev/null || echo unknown) (pasta forwards pelagos's -p)"
	if [ "$have_podman" = 1 ]; then
		v=
		[ "$podman_net" = slirp4netns ] && v=" $(slirp4netns --version | head -1 | awk '{ print $NF }')"
		echo "podman:    $(podman --version), network $podman_net$v, -p forwarded by $podman_fwd"
	fi
	echo "busybox:   $(busybox | head -1)"
	echo "transfer:  $MB MiB per transfer, $REPS transfers per row, round-robin"
} | tee "$WORK/out/versions.txt"

say "transfers: ${#names[@]} rows x $REPS, $MB MiB each"
: >"$WORK/out/rates.tsv"
for rep in $(seq 1 "$REPS"); do
	for n in "${names[@]}"; do
		measure "$n"
		printf '%s\t%s\t%s\n' "$n" "$rep" "$RATE" >>"$WORK/out/rates.tsv"
		printf '  %-11s #%s  %8.1f MiB/s\n' "$n" "$rep" "$RATE"
	done
done

# ---- leftovers ------------------------------------------------------------------------

leftovers=()
n=$(as_user "$PELAGOS" ps -a -q | wc -l)
[ "$n" -ne 0 ] && leftovers+=("pelagos: $n containers")
if [ "$have_podman" = 1 ]; then
	n=$(as_user podman ps -a -q | wc -l)
	[ "$n" -ne 0 ] && leftovers+=("podman: $n containers")
fi
for _ in $(seq 1 20); do
	[ "$(user_procs pasta pasta.avx2 slirp4netns rootlessport)" = 0 ] && break
	sleep 0.1
done
for p in pasta.avx2 pasta slirp4netns rootlessport; do
	n=$(user_procs "$p")
	[ "$n" -ne 0 ] && leftovers+=("$n $p processes")
done

# ---- the table ------------------------------------------------------------------------

mkdir -p "$RESULTS"
summary() { # the table, with FMT "txt" or "md"
	sort -t$'\t' -k1,1 -k3,3g "$WORK/out/rates.tsv" | awk -F'\t' -v fmt="$1" -v order="${names[*]}" '
		{ r[$1, ++c[$1]] = $3; all[$1] = all[$1] sprintf(" %.0f", $3) }
		function med(n,   k) { k = c[n]; return (k % 2) ? r[n, (k + 1) / 2] : (r[n, k / 2] + r[n, k / 2 + 1]) / 2 }
		END {
			split(order, o, " ")
			for (i in o) m[o[i]] = med(o[i])
			sinkof["raw"] = "tcpbench, host"; sinkof["raw-nc"] = "busybox nc, host"
			sinkof["pelagos"] = "tcpbench, pelagos -p"; sinkof["pelagos-nc"] = "busybox nc, pelagos -p"
			sinkof["podman"] = "tcpbench, podman -p"; sinkof["podman-nc"] = "busybox nc, podman -p"
			if (fmt == "md") {
				print "| row | sink | median MiB/s | min | max | x raw | x raw, same sink | every transfer (sorted) |"
				print "|---|---|--:|--:|--:|--:|--:|---|"
			} else
				printf "%-11s %-23s %12s %8s %8s %7s %9s  %s\n", "row", "sink", "median MiB/s", "min", "max", "x raw", "x raw-same", "every transfer, MiB/s, sorted"
			for (i = 1; i in o; i++) {
				n = o[i]; same = (n ~ /-nc$/) ? "raw-nc" : "raw"
				if (fmt == "md")
					printf "| %s | %s | %.0f | %.0f | %.0f | %.2fx | %.2fx |%s |\n", n, sinkof[n], m[n], r[n, 1], r[n, c[n]], m[n] / m["raw"], m[n] / m[same], all[n]
				else
					printf "%-11s %-23s %12.0f %8.0f %8.0f %6.2fx %9.2fx %s\n", n, sinkof[n], m[n], r[n, 1], r[n, c[n]], m[n] / m["raw"], m[n] / m[same], all[n]
			}
			if (fmt == "md") exit
			printf "\n(medians) pelagos/raw = %.2fx (tcpbench sink), pelagos-nc/raw-nc = %.2fx (busybox nc sink)", m["pelagos"] / m["raw"], m["pelagos-nc"] / m["raw-nc"]
			if ("podman" in m) printf "\n          podman/raw = %.2fx (tcpbench sink), podman-nc/raw-nc = %.2fx (busybox nc sink), pelagos/podman = %.2fx, pelagos-nc/podman-nc = %.2fx", m["podman"] / m["raw"], m["podman-nc"] / m["raw-nc"], m["pelagos"] / m["podman"], m["pelagos-nc"] / m["podman-nc"]
			printf "\n"
		}'
}
{
	echo
	cat "$WORK/out/versions.txt"
	[ "$have_podman" = 1 ] || echo "podman:    skipped ($(echo "$podman_note" | head -1))"
	echo
	summary txt
	echo "MiB/s: $MB MiB over the sender's time, from connect until the sink has read everything and closed"
	if [ ${#leftovers[@]} -gt 0 ]; then
		printf 'LEFTOVERS: %s\n' "${leftovers[@]}"
	else
		echo "leftovers: none (no containers, pasta, slirp4netns or rootlessport left)"
	fi
} | tee "$RESULTS/net.txt"
{
	echo "$MB MiB per transfer, $REPS transfers per row; $(nproc) CPUs, $(uname -r)"
	echo
	summary md
} >"$RESULTS/net.md"
echo "results: $RESULTS/net.{txt,md}"
[ ${#leftovers[@]} -eq 0 ]
