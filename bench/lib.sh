# bench/lib.sh: shared by the benchmarks in this folder (run.sh, pull.sh,
# net.sh). It sets up the dedicated non-root user, its session bus with
# pelagosd D-Bus activatable, podman's per-user configuration, the busybox
# image, /dev/net/tun for pasta and slirp4netns, and one cleanup that
# runs on every exit path.
#
# Use: source it, then `bench_begin` (user, trap, clean slate, $WORK),
# `build_pelagos "$WORK/bin"`, `start_session_bus "$WORK/bin"`, and as
# needed `tun_allow`, `busybox_image`, `podman_config`, `podman_busybox`.
# Register extra cleanup steps with `on_exit FUNCTION`; they run first,
# newest first, while the user's bus is still up. `remove_on_exit PATH`
# removes PATH once the user's processes are gone.
# shellcheck shell=bash source-path=SCRIPTDIR

# shellcheck source=../scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

BENCH_USER=${BENCH_USER:-pelagos-bench}
# shellcheck disable=SC2034 # for the scripts that source this file
RESULTS=$PELAGOS_ROOT/bench/results
# The pelagos source tree to build and measure: this clone unless
# BENCH_SRC names another (say `git archive` of a commit, unpacked).
PELAGOS_SRC=${BENCH_SRC:-$PELAGOS_ROOT}
case $PELAGOS_SRC in /*) ;; *) PELAGOS_SRC=$PWD/$PELAGOS_SRC ;; esac

say() { printf '== %s\n' "$*"; }

# ---- the user -------------------------------------------------------------

# A 65536-id range past every range already handed out.
next_free_id() {
	cat /etc/subuid /etc/subgid 2>/dev/null |
		awk -F: 'NF >= 3 { e = $2 + $3; if (e > m) m = e } END { if (m < 100000) m = 100000; print m }'
}

# bench_user creates $BENCH_USER with /etc/subuid and /etc/subgid ranges
# if needed (Debian's useradd usually assigns them) and sets uid, gid,
# home, runtime_dir, bus_addr and user_env.
bench_user() {
	local s
	if ! id "$BENCH_USER" >/dev/null 2>&1; then
		useradd -m -s /bin/sh "$BENCH_USER"
	fi
	uid=$(id -u "$BENCH_USER")
	gid=$(id -g "$BENCH_USER")
	home=$(getent passwd "$BENCH_USER" | cut -d: -f6)
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
	user_env=(HOME="$home" USER="$BENCH_USER" LOGNAME="$BENCH_USER"
		PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
		XDG_RUNTIME_DIR="$runtime_dir" DBUS_SESSION_BUS_ADDRESS="$bus_addr" LANG=C.UTF-8)
}

# as_user CMD...: run CMD as the bench user with a desktop-like environment.
as_user() { runuser -u "$BENCH_USER" -- env -i "${user_env[@]}" "$@"; }

# Every process of the user, one pid at a time: TERM, then KILL what is left.
stop_user_processes() {
	local round pid sig pids
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

# ---- cleanup ----------------------------------------------------------------

WORK=
bus_pid=
tun_mode=
exit_hooks=()
exit_paths=()

# on_exit FUNCTION: call FUNCTION when the script exits, however it exits.
on_exit() { exit_hooks+=("$1"); }

# remove_on_exit PATH: remove PATH when the script exits, after the user's
# processes have been stopped.
remove_on_exit() { exit_paths+=("$1"); }

bench_cleanup() {
	local rc=$? i
	set +e
	for ((i = ${#exit_hooks[@]} - 1; i >= 0; i--)); do "${exit_hooks[$i]}"; done
	if [ -n "$bus_pid" ]; then kill -s TERM "$bus_pid" 2>/dev/null; fi
	stop_user_processes
	rm -rf "$runtime_dir"
	for i in "${exit_paths[@]}"; do rm -rf "$i"; done
	[ -n "$WORK" ] && rm -rf "$WORK"
	tun_restore
	exit $rc
}

# bench_begin sets up the user and the exit trap, clears what an earlier
# run left (processes, runtime dir), and makes the work folder $WORK
# (world-readable, so the user can read what root puts there) and cds there.
bench_begin() {
	bench_user
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	stop_user_processes
	rm -rf "$runtime_dir"
	install -d -m 0700 -o "$uid" -g "$gid" "$runtime_dir"
	WORK=$(mktemp -d /tmp/pelagos-bench.XXXXXX)
	chmod 755 "$WORK"
	cd "$WORK" || exit
}

# build_pelagos DIR builds pelagos, pelagosd, pelagos-init and pelagos-privhelper from
# $PELAGOS_SRC into DIR.
build_pelagos() {
	[ -f "$PELAGOS_SRC/go.mod" ] || die "BENCH_SRC=$PELAGOS_SRC is not a pelagos source tree"
	PELAGOS_ROOT=$PELAGOS_SRC build_programs "$1"
}

# ---- /dev/net/tun ---------------------------------------------------------------

# tun_allow makes /dev/net/tun usable by the bench user, as desktops ship
# it (0666): pasta and slirp4netns open it. Some servers ship it 0600;
# bench_cleanup puts the old mode back on every exit path.
tun_allow() {
	local m
	[ -c /dev/net/tun ] || die "/dev/net/tun is missing: pasta and slirp4netns need it (modprobe tun)"
	m=$(stat -c %a /dev/net/tun)
	[ "$m" = 666 ] && return 0
	tun_mode=$m
	chmod 0666 /dev/net/tun
}

# tun_restore puts back the mode tun_allow found, unless someone else
# changed it meanwhile.
tun_restore() {
	[ -n "$tun_mode" ] || return 0
	[ "$(stat -c %a /dev/net/tun 2>/dev/null)" = 666 ] && chmod "$tun_mode" /dev/net/tun
	tun_mode=
}

# ---- the session bus ----------------------------------------------------------

# start_session_bus BIN starts the user's session bus, on which
# BIN/pelagosd is D-Bus activatable (--idle-timeout 10m), and waits for it.
start_session_bus() {
	local bin=$1
	mkdir -p "$WORK/bus/services"
	printf '[D-BUS Service]\nName=io.pelagos.Pelagos1\nExec=%s/pelagosd --idle-timeout 10m\n' "$bin" \
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
}

# ---- podman -------------------------------------------------------------------

# podman_config writes the user's podman configuration: runc (crun refuses
# this machine's hybrid cgroups), cgroupfs and a file event log (no systemd
# user session), and native rootless overlay storage like pelagos's
# (without fuse-overlayfs podman would pick vfs, which copies every layer).
# A store made earlier with another driver is reset.
podman_config() {
	install -d -m 0700 -o "$uid" -g "$gid" "$home/.config" "$home/.config/containers"
	cat >"$home/.config/containers/containers.conf" <<'EOF'
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
	printf '[storage]\ndriver = "overlay"\n' >"$home/.config/containers/storage.conf"
	chown "$uid:$gid" "$home/.config/containers/containers.conf" "$home/.config/containers/storage.conf"
	if [ "$(as_user podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null)" != overlay ]; then
		as_user podman system reset --force >/dev/null 2>&1 || true
	fi
}

# ---- the busybox image -----------------------------------------------------------

# busybox_image makes $WORK/busybox.tar, a busybox root filesystem (made by
# scripts/mkbusybox-rootfs.sh from Debian's busybox-static), and imports
# it into the user's pelagos store as localhost/busybox unless it is
# there. Call after start_session_bus, with $PELAGOS set.
busybox_image() {
	"$PELAGOS_ROOT/scripts/mkbusybox-rootfs.sh" "$WORK/busybox.tar"
	chmod 644 "$WORK/busybox.tar"
	if ! as_user "$PELAGOS" images 2>&1 | grep -q '^localhost/busybox '; then
		as_user "$PELAGOS" import --change 'CMD ["sh"]' "$WORK/busybox.tar" localhost/busybox >/dev/null
	fi
}

# podman_busybox imports $WORK/busybox.tar into the user's podman store as
# localhost/busybox unless it is there. Call after podman_config.
podman_busybox() {
	if ! as_user podman image exists localhost/busybox; then
		as_user podman import --quiet --change 'CMD ["sh"]' "$WORK/busybox.tar" localhost/busybox >/dev/null
	fi
}

# user_procs NAME...: how many processes of the bench user run one of the
# programs NAME (by process name, as pgrep -x sees it).
user_procs() {
	local n=0 p
	for p in "$@"; do n=$((n + $(pgrep -c -u "$uid" -x "$p" || true))); done
	echo "$n"
}

# free_port: a TCP port nothing listens on, in 20000-39999.
free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 20000))
		[ -z "$(ss -Htln "sport = :$p")" ] && echo "$p" && return 0
	done
	die "no free TCP port found"
}

# ---- reporting ------------------------------------------------------------------

# versions_header prints the lines every result file starts with.
versions_header() {
	echo "date:      $(date -u +%FT%TZ)"
	echo "kernel:    $(uname -r)"
	echo "cpus:      $(nproc)"
	echo "pelagos:   $(git -C "$PELAGOS_SRC" describe --always --dirty 2>/dev/null || echo "$PELAGOS_SRC"), storage $(as_user "$PELAGOS" info 2>/dev/null | awk -F': *' 'tolower($1) ~ /driver/ { print $2; exit }')"
}
