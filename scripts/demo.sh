#!/bin/bash
# demo.sh: on a fresh Debian 12 machine, as root: install what pelagos
# needs, build and install it, prepare a desktop-like user (subuid ranges,
# a session bus) and run a container as that user. No internet needed
# beyond Debian's packages and the Go module proxy.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root
need_go
install_packages
ensure_machine_id

echo "== build and install (meson, prefix /usr/local)"
builddir=$PELAGOS_ROOT/build
if [ ! -f "$builddir/build.ninja" ]; then
	meson setup "$builddir" "$PELAGOS_ROOT" --prefix=/usr/local >/dev/null
fi
meson compile -C "$builddir" >/dev/null
meson install -C "$builddir" >/dev/null

user=pelagos-demo
if ! id "$user" >/dev/null 2>&1; then
	useradd --create-home --shell /bin/bash "$user"
fi
grep -q "^$user:" /etc/subuid || usermod --add-subuids 600000-665535 "$user"
grep -q "^$user:" /etc/subgid || usermod --add-subgids 600000-665535 "$user"
uid=$(id -u "$user")
install -d -m 0700 -o "$user" -g "$user" "/run/user/$uid"

tarball=$(mktemp /tmp/busybox-rootfs.XXXXXX.tar)
"$PELAGOS_ROOT/scripts/mkbusybox-rootfs.sh" "$tarball"
chmod 644 "$tarball"

echo "== as $user, on a session bus of its own:"
runuser -u "$user" -- env -i HOME="/home/$user" PATH=/usr/local/bin:/usr/bin:/bin \
	XDG_RUNTIME_DIR="/run/user/$uid" XDG_DATA_DIRS=/usr/local/share:/usr/share \
	dbus-run-session -- sh -c "
		set -e
		pelagos images -q | grep -q . || pelagos import --change 'CMD [\"sh\"]' $tarball localhost/busybox >/dev/null
		echo '\$ pelagos run --rm localhost/busybox echo hello from pelagos'
		pelagos run --rm localhost/busybox echo hello from pelagos
		echo '\$ pelagos run --rm localhost/busybox id'
		pelagos run --rm localhost/busybox id
	"
rm -f "$tarball"
