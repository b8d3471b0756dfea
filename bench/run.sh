#!/bin/bash
# bench/run.sh: how long does `run --rm IMAGE true` take, rootless, as a
# plain user? One hyperfine run compares, as the dedicated user
# pelagos-bench:
#
#   floor    unshare -U -r -m -p -f -n -u -i chroot ROOTFS /bin/true
#   runc     runc run on a rootless bundle over the same rootfs
#   pelagos  pelagos run --rm localhost/busybox true
#   podman   podman run --rm --network none localhost/busybox true  (when installed)
#
# Run it as root on Debian 12 from a clone of the repository. Knobs (env):
#   BENCH_RUNS=30            hyperfine --runs
#   BENCH_WARMUP=3           hyperfine --warmup
#   BENCH_INSTALL_PODMAN=1   apt-get install podman when it is missing
#   BENCH_PODMAN=0           leave podman out even when it is installed
#   BENCH_USER=pelagos-bench the non-root user the commands run as
# Results: bench/results/run-rm.json (hyperfine), run-rm.md, run-rm.txt.
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"

RUNS=${BENCH_RUNS:-30}
WARMUP=${BENCH_WARMUP:-3}
BENCH_USER=${BENCH_USER:-pelagos-bench}
RESULTS=$PELAGOS_ROOT/bench/results
CID=pelagos-bench # the runc container id; runs are sequential and each one deletes it

need_root
need_go
extra=(hyperfine runc jq busybox-static)
if [ "${BENCH_INSTALL_PODMAN:-0}" = 1 ]; then extra+=(podman); fi
install_packages "${extra[@]}"

say() { printf '== %s\n' "$*"; }

# ---- the user -------------------------------------------------------------

if ! id "$BENCH_USER" >/dev/null 2>&1; then
	useradd -m -s /bin/sh "$BENCH_USER"
fi
uid=$(id -u "$BENCH_USER")
gid=$(id -g "$BENCH_USER")
home=$(getent passwd "$BENCH_USER" | cut -d: -f6)

# A 65536-id range past every range already handed out, unless the user
# has one (Debian's useradd usually assigns it).
next_free_id() {
	cat /etc/subuid /etc/subgid 2>/dev/null |
		awk -F: 'NF >= 3 { e = $2 + $3; if (e > m) m = e } END { if (m < 100000) m = 100000; print m }'
}
if ! grep -q "^$BENCH_USER:" /etc/subuid 2>/dev/null; then
	s=$(next_free_id)
	usermod --add-subuids "$s-$((s + 65535))" "$BENCH_USER"
fi
if ! grep -q "^$BENCH_USER:" /etc/subgid 2>/dev/null; then
	s=$(next_free_id)
	usermod --add-subgids "$s-$((s + 65535))" "$BENCH_USER"
fi

runtime_dir=/run/user/$uid
bus_addr=unix:path=$runtime_dir/bus

# Every process of the user, one pid at a time: TERM, then KILL what is left.
stop_user_processes() {
	local round pid sig
	for round in $(seq 1 40); do
		mapfile -t pids < <(pgrep -u "$uid" || true)
		[ ${#pids[@]} -eq 0 ] && return 0
		sig=TERM
		[ "$round" -gt 10 ] && sig=KILL
		for pid in "${pids[@]}"; do kill -s "$sig" "$pid" 2>/dev/null || true; done
		sleep 0.1
	done
	echo "warning: processes of $BENCH_USER survived: $(pgrep -u "$uid" | tr '\n' ' ')" >&2
}

WORK=
bus_pid=
cleanup() {
	local rc=$?
	set +e
	if [ -n "$bus_pid" ]; then kill -s TERM "$bus_pid" 2>/dev/null; fi
	stop_user_processes
	rm -rf "$runtime_dir"
	[ -n "$WORK" ] && rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A clean slate: nothing left of an earlier run.
stop_user_processes
rm -rf "$runtime_dir"
install -d -m 0700 -o "$uid" -g "$gid" "$runtime_dir"

WORK=$(mktemp -d /tmp/pelagos-bench.XXXXXX)
chmod 755 "$WORK"
cd "$WORK"

user_env=(HOME="$home" USER="$BENCH_USER" LOGNAME="$BENCH_USER"
	PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
	XDG_RUNTIME_DIR="$runtime_dir" DBUS_SESSION_BUS_ADDRESS="$bus_addr" LANG=C.UTF-8)
# as_user CMD...: run CMD as the bench user with a desktop-like environment.
as_user() { runuser -u "$BENCH_USER" -- env -i "${user_env[@]}" "$@"; }

# ---- pelagos, its session bus, the image ----------------------------------

say "build pelagos"
BIN=$WORK/bin
build_programs "$BIN"
PELAGOS=$BIN/pelagos

mkdir -p "$WORK/bus/services"
printf '[D-BUS Service]\nName=io.pelagos.Pelagos1\nExec=%s/pelagosd --idle-timeout 10m\n' "$BIN" \
	>"$WORK/bus/services/io.pelagos.Pelagos1.service"
cat >"$WORK/bus/session.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>$bus_addr</listen>
  <auth>EXTERNAL</auth>
  <servicedir>$WORK/bus/services</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
chmod -R a+rX "$WORK/bus"
bus_pid=$(as_user dbus-daemon --config-file="$WORK/bus/session.conf" --fork --print-pid)
for _ in $(seq 1 100); do [ -S "$runtime_dir/bus" ] && break; sleep 0.05; done
[ -S "$runtime_dir/bus" ] || die "the session bus of $BENCH_USER did not come up"

say "rootfs and image"
install -d -m 0755 -o "$uid" -g "$gid" "$WORK/out" "$WORK/bundle"
"$PELAGOS_ROOT/scripts/mkbusybox-rootfs.sh" "$WORK/busybox.tar"
chmod 644 "$WORK/busybox.tar"
# Extracted by the user, so the files are its own: uid 0 inside the
# floor's and runc's single-id user namespaces.
ROOTFS=$WORK/bundle/rootfs
as_user mkdir "$ROOTFS"
as_user tar -C "$ROOTFS" -xf "$WORK/busybox.tar"

if ! as_user "$PELAGOS" images 2>&1 | grep -q '^localhost/busybox '; then
	as_user "$PELAGOS" import --change 'CMD ["sh"]' "$WORK/busybox.tar" localhost/busybox >/dev/null
fi

# pelagos's default network is loopback only, like podman's --network none;
# pass --network none when this version knows the flag.
pelagos_net=()
if as_user "$PELAGOS" run --help 2>&1 | grep -q -- '--network' ||
	as_user "$PELAGOS" run --rm --network none localhost/busybox true >/dev/null 2>&1; then
	pelagos_net=(--network none)
fi

# ---- runc bundle ----------------------------------------------------------

say "runc bundle"
as_user runc spec --rootless --bundle "$WORK/bundle"
# runc's rootless spec drops the network namespace; put it back so the
# container is as isolated as the floor and pelagos (loopback only).
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
podman_note=
if [ "${BENCH_PODMAN:-1}" = 0 ]; then
	podman_note="BENCH_PODMAN=0"
elif ! command -v podman >/dev/null; then
	podman_note="podman is not installed (BENCH_INSTALL_PODMAN=1 installs it)"
else
	say "podman"
	# crun refuses this machine's hybrid cgroup layout; runc works. No
	# systemd user session here: cgroupfs and a file event log.
	install -d -m 0700 -o "$uid" -g "$gid" "$home/.config" "$home/.config/containers"
	cat >"$home/.config/containers/containers.conf" <<'EOF'
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
	# Native rootless overlay, like pelagos: without fuse-overlayfs podman
	# would pick vfs, which copies the whole image for every container.
	printf '[storage]\ndriver = "overlay"\n' >"$home/.config/containers/storage.conf"
	chown "$uid:$gid" "$home/.config/containers/containers.conf" "$home/.config/containers/storage.conf"
	if [ "$(as_user podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null)" != overlay ]; then
		# A store made earlier with another driver: start it afresh.
		as_user podman system reset --force >/dev/null 2>&1 || true
	fi
	if ! as_user podman image exists localhost/busybox; then
		as_user podman import --quiet --change 'CMD ["sh"]' "$WORK/busybox.tar" localhost/busybox >/dev/null
	fi
	for extra_flags in "" "--cgroups=disabled"; do
		c="podman run --rm --network none $extra_flags localhost/busybox true"
		c=${c//  / }
		# shellcheck disable=SC2086 # a plain command line, split on spaces
		if out=$(as_user $c 2>&1); then
			podman_cmd=$c
			have_podman=1
			break
		fi
		podman_err=$out
	done
	if [ "$have_podman" = 0 ]; then
		podman_note="podman is installed but \`podman run\` failed here; its last error:
$podman_err"
	fi
fi

# ---- sanity: each command works once, untimed ------------------------------

floor_cmd="unshare -U -r -m -p -f -n -u -i chroot $ROOTFS /bin/true"
runc_cmd="runc --root $RUNC_ROOT run -b $WORK/bundle $CID"
pelagos_cmd="$PELAGOS run --rm ${pelagos_net[*]} localhost/busybox true"
pelagos_cmd=${pelagos_cmd//  / }

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
pelagos_containers_before=$(as_user "$PELAGOS" ps -a -q | wc -l)
podman_containers_before=0
[ "$have_podman" = 1 ] && podman_containers_before=$(as_user podman ps -a -q | wc -l)

# ---- the timed run ----------------------------------------------------------

say "versions"
{
	echo "date:      $(date -u +%FT%TZ)"
	echo "kernel:    $(uname -r)"
	echo "cpus:      $(nproc)"
	echo "pelagos:   $(git -C "$PELAGOS_ROOT" describe --always --dirty 2>/dev/null || echo unknown), storage $(as_user "$PELAGOS" info 2>/dev/null | awk -F': *' 'tolower($1) ~ /driver/ { print $2; exit }')"
	echo "runc:      $(runc --version | head -1)"
	if [ "$have_podman" = 1 ]; then
		echo "podman:    $(podman --version), storage $(as_user podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null)"
	fi
	echo "hyperfine: $(hyperfine --version)"
} | tee "$WORK/out/versions.txt"

names=(floor runc pelagos)
cmds=("$floor_cmd" "$runc_cmd" "$pelagos_cmd")
if [ "$have_podman" = 1 ]; then
	names+=(podman)
	cmds+=("$podman_cmd")
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
	awk -F'\t' '
		{ name[NR] = $1; med[NR] = $2; mean[NR] = $3; sd[NR] = $4; lo[NR] = $5; hi[NR] = $6; m[$1] = $2 }
		END {
			printf "%-8s %10s %16s %9s %9s %9s %9s\n", "command", "median ms", "mean ± sd ms", "min ms", "max ms", "x floor", "x pelagos"
			for (i = 1; i <= NR; i++)
				printf "%-8s %10.2f %9.2f ± %5.2f %9.2f %9.2f %8.2fx %8.2fx\n", name[i], med[i], mean[i], sd[i], lo[i], hi[i], med[i] / m["floor"], med[i] / m["pelagos"]
			printf "\n(medians) pelagos/floor = %.2fx, runc/floor = %.2fx, runc/pelagos = %.2fx", m["pelagos"] / m["floor"], m["runc"] / m["floor"], m["runc"] / m["pelagos"]
			if ("podman" in m) printf ", podman/pelagos = %.2fx", m["podman"] / m["pelagos"]
			printf "\n"
			printf "target: pelagos <= 2x floor: %s\n", (m["pelagos"] <= 2 * m["floor"]) ? "MET" : "NOT MET"
		}' "$WORK/out/stats.tsv"
	if [ ${#leftovers[@]} -gt 0 ]; then
		printf 'LEFTOVERS (a run did not remove its container): %s\n' "${leftovers[@]}"
	else
		echo "leftovers: none (runc list empty, pelagos and podman container counts unchanged)"
	fi
} | tee "$RESULTS/run-rm.txt"
echo "results: $RESULTS/run-rm.{json,md,txt}"
[ ${#leftovers[@]} -eq 0 ]
