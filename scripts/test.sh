#!/bin/bash
# test.sh: run every test, as root on Debian 12. Installs what the tests
# need, then runs gofmt/vet, the unit tests (race detector on), and the
# integration tests, which create a test user with subuid ranges and drive
# the real programs on real session buses as that user.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root
need_go
install_packages
ensure_machine_id
# pasta needs /dev/net/tun. Desktops ship it 0666; some servers (this
# one) ship 0600. Open it up for the test run only, and put it back.
tun_mode=$(stat -c %a /dev/net/tun 2>/dev/null || echo "")
if [ -n "$tun_mode" ] && [ "$tun_mode" != 666 ]; then
	chmod 0666 /dev/net/tun
	trap 'chmod "$tun_mode" /dev/net/tun' EXIT
fi

cd "$PELAGOS_ROOT"
echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
[ -z "$unformatted" ] || die "gofmt needed: $unformatted"
echo "== go vet"
go vet ./...
unit=$(mktemp /tmp/pelagos-unit.XXXXXX)
integ=$(mktemp /tmp/pelagos-integration.XXXXXX)
trap 'rm -f "$unit" "$integ"; [ -z "$tun_mode" ] || chmod "$tun_mode" /dev/net/tun' EXIT
set +e
echo "== unit tests (race detector)"
go test -race -count=1 -v $(go list ./... | grep -v -E '/tests(/privhelper)?$') 2>&1 | tee "$unit"
unit_rc=${PIPESTATUS[0]}
echo "== integration tests (real buses, rootless test user)"
go test -count=1 -timeout 20m -v ./tests/ 2>&1 | tee "$integ"
integ_rc=${PIPESTATUS[0]}
echo "== root networking helper (real system bus, polkitd, nftables)"
go test -count=1 -timeout 10m -v ./tests/privhelper/ 2>&1 | tee -a "$integ"
[ "${PIPESTATUS[0]}" -eq 0 ] || integ_rc=1
set -e
passed=$(cat "$unit" "$integ" | grep -c -E '^\s*--- PASS' || true)
failed=$(cat "$unit" "$integ" | grep -c -E '^\s*--- FAIL' || true)
skipped=$(cat "$unit" "$integ" | grep -c -E '^\s*--- SKIP' || true)
# A suite that skipped itself (no root, no user namespaces) must not
# look like a pass.
integ_ran=$(grep -c -E '^\s*--- PASS' "$integ" || true)
if [ "$integ_ran" -eq 0 ]; then
	echo "error: no integration test passed: they did not run (see above)"
	integ_rc=1
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ $unit_rc -eq 0 ] && [ $integ_rc -eq 0 ]
