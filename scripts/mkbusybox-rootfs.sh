#!/bin/bash
# mkbusybox-rootfs.sh OUT.tar: a root filesystem tarball made from Debian's
# static busybox (package busybox-static), for `pelagos import`. No
# internet needed.
set -euo pipefail
out=${1:?usage: mkbusybox-rootfs.sh OUT.tar}
bb=/bin/busybox
[ -x "$bb" ] || { echo "error: $bb is missing: apt-get install busybox-static" >&2; exit 1; }
if readelf -l "$bb" 2>/dev/null | grep -q INTERP || file "$bb" 2>/dev/null | grep -q dynamically; then
	echo "error: $bb is dynamically linked: install busybox-static, not busybox" >&2
	exit 1
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
# mktemp makes the directory 0700, and it becomes the image's /: every
# user but root in the container would find nothing executable.
chmod 0755 "$root"
mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev,root,home,var,run,usr/bin}
chmod 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
for applet in $("$bb" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
cat >"$root/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
alice:x:1000:1000:alice:/home/alice:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat >"$root/etc/group" <<'GR'
root:x:0:
alice:x:1000:
nobody:x:65534:
GR
tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$out" .
