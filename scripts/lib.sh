# Shared by the scripts in this folder: find Go, install Debian packages.
# shellcheck shell=bash

PELAGOS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PELAGOS_TAGS=containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_devicemapper
export GOFLAGS="${GOFLAGS:-} -tags=$PELAGOS_TAGS"
export PATH="/usr/local/go/bin:$PATH"

die() { echo "error: $*" >&2; exit 1; }

need_root() {
	[ "$(id -u)" = 0 ] || die "run this as root (it installs packages and creates a test user): sudo $0"
}

need_go() {
	command -v go >/dev/null || die "Go >= 1.26 is needed at /usr/local/go (Debian 12's golang is too old): see https://go.dev/doc/install"
	local v
	v=$(go env GOVERSION | sed 's/^go//')
	case "$v" in
	1.2[6-9]* | 1.[3-9]* | [2-9].*) ;;
	*) die "Go $v is too old: pelagos needs Go >= 1.26" ;;
	esac
}

# Packages the build, the demo and the tests use. Installed only when one
# is missing, so a prepared machine starts at once.
PELAGOS_PACKAGES=(uidmap dbus dbus-bin dbus-daemon systemd busybox-static meson gcc libc6-dev pkg-config iproute2 procps psmisc util-linux tar tmux libseccomp-dev skopeo docker-registry passt polkitd nftables passwd)

install_packages() {
	local missing=() p
	for p in "${PELAGOS_PACKAGES[@]}" "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_machine_id gives a bare machine the id D-Bus expects.
ensure_machine_id() {
	[ -s /etc/machine-id ] || dbus-uuidgen --ensure=/etc/machine-id
}

# build_programs DIR builds the programs into DIR.
build_programs() {
	local out=$1 p
	mkdir -p "$out"
	for p in pelagos pelagosd pelagos-init pelagos-holder pelagos-monitor pelagos-privhelper; do
		# An older tree (bench's before-and-after runs) may lack one.
		[ -d "$PELAGOS_ROOT/cmd/$p" ] || continue
		if [ "$p" = pelagos-monitor ]; then
			# One runs per container: static, without libc and libseccomp.
			(cd "$PELAGOS_ROOT" && CGO_ENABLED=0 go build -trimpath -tags "$PELAGOS_TAGS,pelagos_monitor" -o "$out/$p" "./cmd/$p") || die "build $p failed"
			continue
		fi
		(cd "$PELAGOS_ROOT" && go build -trimpath -o "$out/$p" "./cmd/$p") || die "build $p failed"
	done
	chmod 755 "$out" "$out"/*
}
