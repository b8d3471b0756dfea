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

cd "$PELAGOS_ROOT"
echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
[ -z "$unformatted" ] || die "gofmt needed: $unformatted"
echo "== go vet"
go vet ./...
echo "== unit tests (race detector)"
go test -race -count=1 $(go list ./... | grep -v /tests$)
echo "== integration tests (real buses, rootless test user)"
go test -count=1 -timeout 20m -v ./tests/
