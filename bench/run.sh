#!/bin/bash
# bench/run.sh: how long does `run --rm IMAGE true` take, rootless, as a
# plain user? One hyperfine run compares, as the dedicated user
# pelagos-bench:
#
#   floor         unshare -U -r -m -p -f -n -u -i chroot ROOTFS /bin/true
#   runc          runc run on a rootless bundle over the same rootfs
#   pelagos       pelagos run --rm localhost/busybox true    (default network: pasta)
#   pelagos-none  pelagos run --rm --network none localhost/busybox true
#   podman        podman run --rm localhost/busybox true     (default network: slirp4netns in 4.x; when installed)
#   podman-none   podman run --rm --network none localhost/busybox true
#
# floor, runc and the -none lines get a network namespace with loopback
# only; pelagos and podman without --network get a private network
# connected to the host by a user-mode network program (pasta, slirp4netns).
#
# Run it as root on Debian 12 from a clone of the repository. Knobs (env):
#   BENCH_RUNS=30            hyperfine --runs
#   BENCH_WARMUP=3           hyperfine --warmup
#   BENCH_INSTALL_PODMAN=1   apt-get install podman when it is missing
#   BENCH_PODMAN=0           leave podman out even when it is installed
#   BENCH_USER=pelagos-bench the non-root user the commands run as
#   BENCH_SRC=DIR            build pelagos from DIR instead of this clone
# Results: bench/results/run-rm.json (hyperfine), run-rm.md, run-rm.txt.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

RUNS=${BENCH_RUNS:-30}
WARMUP=${BENCH_WARMUP:-3}
CID=pelagos-bench # the runc container id; runs are sequential and each one deletes it
PASTA_IP=10.0.2.100 # what pasta gives every pelagos container

need_root
need_go
extra=(hyperfine runc jq busybox-static passt slirp4netns)
if [ "${BENCH_INSTALL_PODMAN:-0}" = 1 ]; then extra+=(podman); fi
install_packages "${extra[@]}"

# ---- the user, the trap, the work folder ----------------------------------

bench_begin
tun_allow # pasta and slirp4netns open /dev/net/tun; the old mode comes back at exit

# ---- pelagos, its session bus, the image ----------------------------------

say "build pelagos"
BIN=$WORK/bin
build_pelagos "$BIN"
PELAGOS=$BIN/pelagos

start_session_bus "$BIN"

say "rootfs and image"
install -d -m 0755 -o "$uid" -g "$gid" "$WORK/out" "$WORK/bundle"
busybox_image
# Extracted by the user, so the files are its own: uid 0 inside the
# floor's and runc's single-id user namespaces.
ROOTFS=$WORK/bundle/rootfs
as_user mkdir "$ROOTFS"
as_user tar -C "$ROOTFS" -xf "$WORK/busybox.tar"

# The default network must really be pasta: pelagos falls back to
# loopback only, with a warning, when pasta cannot run, and that would
# time something else.
as_user "$PELAGOS" run --help 2>&1 | grep -q -- '--network' ||
	die "this pelagos has no --network flag: it predates pasta networking"
out=$(as_user "$PELAGOS" run --rm localhost/busybox ip -4 addr 2>&1) ||
	die "pelagos run with the default network fails: $out"
case $out in
*"inet $PASTA_IP/"*) ;;
*) die "pelagos's default network is not pasta here (no $PASTA_IP in the container): $out" ;;
esac
if grep -qi 'warn' <<<"$out"; then die "pelagos warns about its network: $out"; fi

# ---- runc bundle ----------------------------------------------------------

say "runc bundle"
as_user runc spec --rootless --bundle "$WORK/bundle"
# runc's rootless spec drops the network namespace; put it back so the
# container is as isolated as the floor and pelagos (loopback only).
# shellcheck disable=SC2016 # $root is the jq program's
as_user jq --arg root "$ROOTFS" '
	.process.args = ["/bin/true"] | .process.terminal = false |
	.root.path = $root | .root.readonly = false |
	.linux.namespaces = ([.linux.namespaces[] | select(.type != "network")] + [{type: "network"}])
' "$WORK/bundle/config.json" >"$WORK/out/config.json"
cat "$WORK/out/config.json" >"$WORK/bundle/config.json"
RUNC_ROOT=$runtime_dir/runc

# ---- podman ---------------------------------------------------------------

have_podman=0
podman_cmd=
podman_none_cmd=
podman_note=
podman_net_note=
podman_net=
if [ "${BENCH_PODMAN:-1}" = 0 ]; then
	podman_note="BENCH_PODMAN=0"
elif ! command -v podman >/dev/null; then
	podman_note="podman is not installed (BENCH_INSTALL_PODMAN=1 installs it)"
else
	say "podman"
	podman_config
	podman_busybox
	for extra_flags in "" "--cgroups=disabled"; do
		c="podman run --rm --network none $extra_flags localhost/busybox true"
		c=${c//  / }
		# shellcheck disable=SC2086 # a plain command line, split on spaces
		if out=$(as_user $c 2>&1); then
			podman_none_cmd=$c
			have_podman=1
			break
		fi
		podman_err=$out
	done
	if [ "$have_podman" = 0 ]; then
		podman_note="podman is installed but \`podman run\` failed here; its last error:
$podman_err"
	else
		# The same without --network: podman's default rootless network.
		c="podman run --rm $extra_flags localhost/busybox true"
		c=${c//  / }
		# Which one it is: 4.x makes slirp4netns the default, 5.x pasta.
		# shellcheck disable=SC2086 # a plain command line, split on spaces
		if id=$(as_user podman create $extra_flags localhost/busybox true 2>&1); then
			podman_net=$(as_user podman inspect --format '{{.HostConfig.NetworkMode}}' "$id" 2>/dev/null || echo unknown)
			as_user podman rm "$id" >/dev/null 2>&1 || true
		fi
		# shellcheck disable=SC2086 # a plain command line, split on spaces
		if out=$(as_user $c 2>&1); then
			podman_cmd=$c
		else
			podman_net_note="podman run with its default network ($podman_net) failed: $(echo "$out" | tail -1)"
		fi
	fi
fi

# ---- sanity: each command works once, untimed ------------------------------

floor_cmd="unshare -U -r -m -p -f -n -u -i chroot $ROOTFS /bin/true"
runc_cmd="runc --root $RUNC_ROOT run -b $WORK/bundle $CID"
pelagos_cmd="$PELAGOS run --rm localhost/busybox true"
pelagos_none_cmd="$PELAGOS run --rm --network none localhost/busybox true"

check() { # check NAME CMD: run CMD once as the user; stop with its output on failure
	local name=$1 out
	shift
	# shellcheck disable=SC2068 # a plain command line, split on spaces
	if ! out=$(as_user $@ 2>&1); then
		die "$name does not work as $BENCH_USER: $*
$out"
	fi
}
say "sanity runs (this also warms pelagosd: D-Bus activation is not timed)"
check floor "$floor_cmd"
check runc "$runc_cmd"
check pelagos "$pelagos_cmd"
check pelagos-none "$pelagos_none_cmd"
pelagos_containers_before=$(as_user "$PELAGOS" ps -a -q | wc -l)
podman_containers_before=0
[ "$have_podman" = 1 ] && podman_containers_before=$(as_user podman ps -a -q | wc -l)

# ---- the timed run ----------------------------------------------------------

say "versions"
{
	versions_header
	echo "runc:      $(runc --version | head -1)"
	echo "passt:     $(dpkg-query -W -f '${Version}' passt 2>/dev/null || echo unknown) (pasta: pelagos's default network)"
	if [ "$have_podman" = 1 ]; then
		echo "podman:    $(podman --version), storage $(as_user podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null), default network $podman_net$([ "$podman_net" = slirp4netns ] && echo " $(slirp4netns --version | head -1 | awk '{ print $NF }')")"
	fi
	echo "hyperfine: $(hyperfine --version)"
} | tee "$WORK/out/versions.txt"

names=(floor runc pelagos pelagos-none)
cmds=("$floor_cmd" "$runc_cmd" "$pelagos_cmd" "$pelagos_none_cmd")
if [ "$have_podman" = 1 ]; then
	if [ -n "$podman_cmd" ]; then
		names+=(podman)
		cmds+=("$podman_cmd")
	else
		echo "note: $podman_net_note"
	fi
	names+=(podman-none)
	cmds+=("$podman_none_cmd")
else
	echo "note: podman skipped: $podman_note"
fi
hf=(hyperfine -N --warmup "$WARMUP" --runs "$RUNS"
	--export-json "$WORK/out/run-rm.json" --export-markdown "$WORK/out/run-rm.md")
for i in "${!names[@]}"; do hf+=(--command-name "${names[$i]}" "${cmds[$i]}"); done

say "hyperfine as $BENCH_USER: ${#names[@]} commands, $WARMUP warmup + $RUNS runs each"
# runuser wraps hyperfine once; the timed commands are the bare commands.
as_user "${hf[@]}"

# ---- leftovers ----------------------------------------------------------------

leftovers=()
[ -n "$(as_user runc --root "$RUNC_ROOT" list -q)" ] && leftovers+=("runc: $(as_user runc --root "$RUNC_ROOT" list -q | tr '\n' ' ')")
n=$(as_user "$PELAGOS" ps -a -q | wc -l)
[ "$n" -ne "$pelagos_containers_before" ] && leftovers+=("pelagos: $pelagos_containers_before containers before, $n after")
if [ "$have_podman" = 1 ]; then
	n=$(as_user podman ps -a -q | wc -l)
	[ "$n" -ne "$podman_containers_before" ] && leftovers+=("podman: $podman_containers_before containers before, $n after")
fi
# Every run --rm has returned: no pasta or slirp4netns may be left (a
# second's grace for podman, whose cleanup may end after the client).
for _ in $(seq 1 20); do
	[ "$(user_procs pasta pasta.avx2 slirp4netns)" = 0 ] && break
	sleep 0.1
done
n=$(user_procs pasta pasta.avx2)
[ "$n" -ne 0 ] && leftovers+=("$n pasta processes")
n=$(user_procs slirp4netns)
[ "$n" -ne 0 ] && leftovers+=("$n slirp4netns processes")

# ---- the table ------------------------------------------------------------------

mkdir -p "$RESULTS"
cp "$WORK/out/run-rm.json" "$WORK/out/run-rm.md" "$RESULTS/"
# name median mean stddev min max, in ms, one line per command
jq -r '.results[] | [.command, .median, .mean, (.stddev // 0), .min, .max] | map(if type == "number" then . * 1000 else . end) | @tsv' \
	"$RESULTS/run-rm.json" >"$WORK/out/stats.tsv"
{
	echo
	cat "$WORK/out/versions.txt"
	[ "$have_podman" = 1 ] || echo "podman:    skipped ($(echo "$podman_note" | head -1))"
	echo
	[ -z "$podman_net_note" ] || echo "podman:    $podman_net_note"
	echo
	awk -F'\t' -v podman_net="${podman_net:-default}" '
		{ name[NR] = $1; med[NR] = $2; mean[NR] = $3; sd[NR] = $4; lo[NR] = $5; hi[NR] = $6; m[$1] = $2 }
		END {
			printf "%-12s %10s %16s %9s %9s %9s\n", "command", "median ms", "mean ± sd ms", "min ms", "max ms", "x floor"
			for (i = 1; i <= NR; i++)
				printf "%-12s %10.2f %9.2f ± %5.2f %9.2f %9.2f %8.2fx\n", name[i], med[i], mean[i], sd[i], lo[i], hi[i], med[i] / m["floor"]
			printf "\n(medians) pelagos/floor = %.2fx, pelagos-none/floor = %.2fx, runc/floor = %.2fx, runc/pelagos-none = %.2fx\n", m["pelagos"] / m["floor"], m["pelagos-none"] / m["floor"], m["runc"] / m["floor"], m["runc"] / m["pelagos-none"]
			printf "network: pasta adds %.1f ms to pelagos (pelagos - pelagos-none)", m["pelagos"] - m["pelagos-none"]
			if ("podman" in m) printf ", %s adds %.1f ms to podman (podman - podman-none)", podman_net, m["podman"] - m["podman-none"]
			printf "\n"
			if ("podman" in m) printf "podman/pelagos, default network (%s vs pasta) = %.2fx\n", podman_net, m["podman"] / m["pelagos"]
			if ("podman-none" in m) printf "podman-none/pelagos-none, --network none = %.2fx\n", m["podman-none"] / m["pelagos-none"]
			printf "target: pelagos default network (pasta) <= 30 ms median: %s (%.2f ms)\n", (m["pelagos"] <= 30) ? "MET" : "NOT MET", m["pelagos"]
			printf "target: pelagos --network none <= 2x floor: %s (%.2fx)\n", (m["pelagos-none"] <= 2 * m["floor"]) ? "MET" : "NOT MET", m["pelagos-none"] / m["floor"]
		}' "$WORK/out/stats.tsv"
	if [ ${#leftovers[@]} -gt 0 ]; then
		printf 'LEFTOVERS (a run did not remove its container): %s\n' "${leftovers[@]}"
	else
		echo "leftovers: none (runc list empty, pelagos and podman container counts unchanged, no pasta or slirp4netns left)"
	fi
} | tee "$RESULTS/run-rm.txt"
echo "results: $RESULTS/run-rm.{json,md,txt}"
[ ${#leftovers[@]} -eq 0 ]
