#!/bin/bash
# bench/pull.sh: how long does a cold pull of a ~100 MB image from a local
# registry take, rootless, as a plain user? One hyperfine run compares, as
# the dedicated user pelagos-bench:
#
#   pelagos  pelagos pull --tls-verify=false REF              (prepare: pelagos rmi -f REF)
#   skopeo   skopeo copy --src-tls-verify=false docker://REF oci:DIR:big   (prepare: rm -rf DIR)
#   podman   podman pull --tls-verify=false REF               (prepare: podman rmi -f REF; when installed)
#
# REF is 127.0.0.1:PORT/bench/big:latest on Debian's docker-registry,
# seeded with skopeo from an OCI layout bench/mkimage writes: by default 5
# layers of 20 MiB of random bytes, gzip'd. skopeo only downloads and checks the
# blobs; pelagos and podman also unpack them into their stores.
#
# Run it as root on Debian 12 from a clone of the repository; no internet
# is needed. Knobs (env):
#   BENCH_RUNS=10            hyperfine --runs
#   BENCH_WARMUP=1           hyperfine --warmup
#   BENCH_LAYERS=5           layers of the image
#   BENCH_LAYER_SIZE=20971520  random bytes per layer
#   BENCH_INSTALL_PODMAN=1   apt-get install podman when it is missing
#   BENCH_PODMAN=0           leave podman out even when it is installed
#   BENCH_USER=pelagos-bench the non-root user the commands run as
#   BENCH_SRC=DIR            build pelagos from DIR instead of this clone
# Results: bench/results/pull.json (hyperfine), pull.md, pull.txt.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

RUNS=${BENCH_RUNS:-10}
WARMUP=${BENCH_WARMUP:-1}
LAYERS=${BENCH_LAYERS:-5}
LAYER_SIZE=${BENCH_LAYER_SIZE:-20971520}

need_root
need_go
extra=(hyperfine jq curl skopeo docker-registry)
if [ "${BENCH_INSTALL_PODMAN:-0}" = 1 ]; then extra+=(podman); fi
install_packages "${extra[@]}"

bench_begin

# The images pulled here go to stores of their own, under the user's home
# (a disk like the everyday one; /tmp may be tmpfs), removed at the end:
# each run starts empty, and an interrupted run leaves nothing behind.
# That matters: a cancelled pull may keep the layers it already committed
# (containers/image does not roll them back by itself), and an earlier
# run's layers would turn the next pulls into warm ones. XDG_DATA_HOME moves pelagos's
# store, podman's and the blob-info caches; pelagosd, activated by the
# bus, inherits it.
DATA=$home/pelagos-bench-pull
rm -rf "$DATA"
install -d -m 0700 -o "$uid" -g "$gid" "$DATA"
remove_on_exit "$DATA"
user_env+=(XDG_DATA_HOME="$DATA")

# ---- pelagos, its session bus, the image layout ----------------------------

say "build pelagos and bench/mkimage"
BIN=$WORK/bin
build_pelagos "$BIN"
(cd "$PELAGOS_ROOT" && go build -trimpath -o "$BIN/mkimage" ./bench/mkimage) || die "build bench/mkimage failed"
PELAGOS=$BIN/pelagos
start_session_bus "$BIN"

say "image: $LAYERS layers of $LAYER_SIZE random bytes"
"$BIN/mkimage" -o "$WORK/layout" -tag big -layers "$LAYERS" -size "$LAYER_SIZE"
chmod -R a+rX "$WORK/layout"
manifest=$(jq -r '.manifests[0].digest | sub("^sha256:"; "")' "$WORK/layout/index.json")
image_bytes=$(jq '[.layers[].size] | add' "$WORK/layout/blobs/sha256/$manifest")

# ---- the registry -------------------------------------------------------------

reg_pid=
stop_registry() {
	if [ -n "$reg_pid" ]; then
		kill -s TERM "$reg_pid" 2>/dev/null
		wait "$reg_pid" 2>/dev/null
		reg_pid=
	fi
}
on_exit stop_registry

# start_registry PORT: serve $WORK/registry/data on 127.0.0.1:PORT; fails
# when the registry exits or does not answer within 10 s.
start_registry() {
	local port=$1
	cat >"$WORK/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $WORK/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
	# Killed with this script even when it gets no chance to clean up.
	setpriv --pdeathsig KILL docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry/log" 2>&1 &
	reg_pid=$!
	for _ in $(seq 1 200); do
		kill -0 "$reg_pid" 2>/dev/null || break
		curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null && return 0
		sleep 0.05
	done
	stop_registry
	return 1
}

say "registry"
mkdir -p "$WORK/registry/data"
port=
for _ in 1 2 3 4 5; do
	p=$((20000 + RANDOM % 20000))
	[ -z "$(ss -Htln "sport = :$p")" ] || continue
	if start_registry "$p"; then
		port=$p
		break
	fi
done
[ -n "$port" ] || die "docker-registry did not start: $(tail -5 "$WORK/registry/log" 2>/dev/null)"
REF=127.0.0.1:$port/bench/big:latest
as_user skopeo copy --quiet --dest-tls-verify=false "oci:$WORK/layout:big" "docker://$REF"
echo "registry: $REF (docker-registry pid $reg_pid), $image_bytes bytes of layers"

# ---- podman -------------------------------------------------------------------

have_podman=0
podman_note=
if [ "${BENCH_PODMAN:-1}" = 0 ]; then
	podman_note="BENCH_PODMAN=0"
elif ! command -v podman >/dev/null; then
	podman_note="podman is not installed (BENCH_INSTALL_PODMAN=1 installs it)"
else
	say "podman"
	podman_config
	have_podman=1
fi

# ---- the pulled copies go, whatever happens -------------------------------------

OCIDIR=$WORK/skopeo/oci
install -d -m 0755 -o "$uid" -g "$gid" "$WORK/skopeo" "$WORK/out"
remove_pulled() {
	timeout 60 runuser -u "$BENCH_USER" -- env -i "${user_env[@]}" "$PELAGOS" rmi -f "$REF" >/dev/null 2>&1
	if [ "$have_podman" = 1 ]; then
		timeout 60 runuser -u "$BENCH_USER" -- env -i "${user_env[@]}" podman rmi -f "$REF" >/dev/null 2>&1
	fi
	rm -rf "$OCIDIR"
}
on_exit remove_pulled

# ---- sanity: each pull works once, untimed --------------------------------------

pelagos_cmd="$PELAGOS pull --tls-verify=false $REF"
skopeo_cmd="skopeo copy --src-tls-verify=false docker://$REF oci:$OCIDIR:big"
podman_cmd="podman pull --tls-verify=false $REF"

# check NAME CMD: run CMD once as the user; stop with its output on failure.
check() {
	local name=$1 out
	shift
	# shellcheck disable=SC2068 # a plain command line, split on spaces
	if ! out=$(as_user $@ 2>&1); then
		die "$name does not work as $BENCH_USER: $*
$out"
	fi
}
say "sanity pulls (this also warms pelagosd: D-Bus activation is not timed)"
check pelagos "$pelagos_cmd"
as_user "$PELAGOS" images | grep -q "^127.0.0.1:$port/bench/big " ||
	die "pelagos pull succeeded but \`pelagos images\` does not list $REF"
check skopeo "$skopeo_cmd"
if [ "$have_podman" = 1 ]; then
	if ! out=$(as_user podman pull --tls-verify=false "$REF" 2>&1); then
		have_podman=0
		podman_note="podman is installed but \`podman pull\` failed here:
$out"
	fi
fi
# Each prepare step removes the previous copy, so each timed run (and each
# warmup run) pulls into a store without the image: a cold pull. The copies
# made above are there for the first prepare to remove: a failing prepare
# stops hyperfine, so every `rmi -f` must find the image.

# ---- the timed run ----------------------------------------------------------------

say "versions"
{
	versions_header
	echo "skopeo:    $(skopeo --version)"
	if [ "$have_podman" = 1 ]; then
		echo "podman:    $(podman --version), storage $(as_user podman info --format '{{.Store.GraphDriverName}}' 2>/dev/null)"
	fi
	echo "registry:  $(docker-registry --version 2>&1 | head -1)"
	echo "hyperfine: $(hyperfine --version)"
	echo "image:     $LAYERS layers, $image_bytes bytes compressed (gzip'd random data)"
} | tee "$WORK/out/versions.txt"

names=(pelagos skopeo)
cmds=("$pelagos_cmd" "$skopeo_cmd")
preps=("$PELAGOS rmi -f $REF" "rm -rf $OCIDIR")
if [ "$have_podman" = 1 ]; then
	names+=(podman)
	cmds+=("$podman_cmd")
	preps+=("podman rmi -f $REF")
else
	echo "note: podman skipped: $podman_note"
fi
hf=(hyperfine -N --warmup "$WARMUP" --runs "$RUNS"
	--export-json "$WORK/out/pull.json" --export-markdown "$WORK/out/pull.md")
for i in "${!names[@]}"; do hf+=(--prepare "${preps[$i]}"); done
for i in "${!names[@]}"; do hf+=(--command-name "${names[$i]}" "${cmds[$i]}"); done

# pelagosd_cpu: "PIDS TICKS", the user's pelagosd processes and the CPU
# time they and their waited-for children (the layer unpackers) used.
# hyperfine sees only the client's CPU: the pull runs in pelagosd.
pelagosd_cpu() {
	local pids p ticks=0
	pids=$(pgrep -u "$uid" -f "^$BIN/pelagosd " | sort -n | paste -sd, -)
	for p in ${pids//,/ }; do
		ticks=$((ticks + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	echo "${pids:-none} $ticks"
}

say "hyperfine as $BENCH_USER: ${#names[@]} commands, $WARMUP warmup + $RUNS runs each, a cold pull each"
read -r cpu_pids0 cpu_ticks0 <<<"$(pelagosd_cpu)"
as_user "${hf[@]}"
read -r cpu_pids1 cpu_ticks1 <<<"$(pelagosd_cpu)"
# seconds per pelagos run (its rmi included), or -1 when pelagosd restarted
pelagosd_s=-1
if [ "$cpu_pids0" != none ] && [ "$cpu_pids0" = "$cpu_pids1" ]; then
	pelagosd_s=$(awk -v d="$((cpu_ticks1 - cpu_ticks0))" -v hz="$(getconf CLK_TCK)" -v n="$((WARMUP + RUNS))" 'BEGIN { printf "%.3f", d / hz / n }')
fi

# The last timed pull left the image in place: check that it is whole.
as_user "$PELAGOS" images | grep -q "^127.0.0.1:$port/bench/big " ||
	die "after the timed runs \`pelagos images\` does not list $REF"

# ---- the table ------------------------------------------------------------------

mkdir -p "$RESULTS"
cp "$WORK/out/pull.json" "$WORK/out/pull.md" "$RESULTS/"
# name median mean stddev min max user system, in seconds, one line per command
jq -r '.results[] | [.command, .median, .mean, (.stddev // 0), .min, .max, .user, .system] | @tsv' \
	"$RESULTS/pull.json" >"$WORK/out/stats.tsv"
{
	echo
	cat "$WORK/out/versions.txt"
	[ "$have_podman" = 1 ] || echo "podman:    skipped ($(echo "$podman_note" | head -1))"
	echo
	awk -F'\t' -v bytes="$image_bytes" -v daemon="$pelagosd_s" '
		{
			name[NR] = $1; med[NR] = $2; mean[NR] = $3; sd[NR] = $4; lo[NR] = $5; hi[NR] = $6; m[$1] = $2
			cpu[NR] = sprintf("%.2f", $7 + $8)
			if ($1 == "pelagos") cpu[NR] = (daemon < 0) ? "n/a" : sprintf("%.2f", $7 + $8 + daemon)
		}
		END {
			printf "%-8s %9s %15s %8s %8s %8s %7s %9s %9s\n", "command", "median s", "mean ± sd s", "min s", "max s", "MB/s", "cpu s", "x skopeo", "x pelagos"
			for (i = 1; i <= NR; i++)
				printf "%-8s %9.3f %7.3f ± %5.3f %8.3f %8.3f %8.1f %7s %8.2fx %8.2fx\n", name[i], med[i], mean[i], sd[i], lo[i], hi[i], bytes / med[i] / 1e6, cpu[i], med[i] / m["skopeo"], med[i] / m["pelagos"]
			printf "\n(medians) pelagos/skopeo = %.2fx", m["pelagos"] / m["skopeo"]
			if ("podman" in m) printf ", podman/pelagos = %.2fx", m["podman"] / m["pelagos"]
			printf "\n"
			if ("podman" in m)
				printf "target: pelagos no slower than podman (median): %s\n", (m["pelagos"] <= m["podman"]) ? "MET" : "NOT MET"
			else
				printf "target: pelagos no slower than podman (median): not checked, podman did not run\n"
		}' "$WORK/out/stats.tsv"
	echo "cpu s: user + system CPU per pull, mean, children included; for pelagos the client's plus pelagosd's"
	echo "(the pull runs there), read from /proc around the hyperfine run: its rmi -f steps are included"
} | tee "$RESULTS/pull.txt"
echo "results: $RESULTS/pull.{json,md,txt}"
