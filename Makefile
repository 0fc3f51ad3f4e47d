# Local work: `make check` runs what CI runs (.ci/run calls it after its
# set-up), one step after the other. No step leaves loopback: the
# network guard is confined to it, as in CI.
#
#   make check   gofmt, vet (for Linux, Windows and macOS), staticcheck,
#                the release build check, the tests (as the README gives
#                them) and every fuzz target for FUZZTIME
#   make test    the tests only: the README's command
#   make e2e     the end-to-end suite, as root: scripts/e2e.sh
#   make fuzz    every fuzz target for FUZZTIME (default 20s)
#   make lab     the offline demo: kzprobe lab
#   make release the release binaries and SHA256SUMS in dist/

export KZPROBE_NETWORK_ALLOW ?= 127.0.0.0/8,::1/128
FUZZTIME ?= 20s

.PHONY: check fmt vet staticcheck release-check test fuzz e2e lab release

check: fmt vet staticcheck release-check test fuzz

# gofmt -l lists the files it would change; any is a failure.
fmt:
	@unformatted=$$(gofmt -l .); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:" >&2; echo "$$unformatted" >&2; exit 1; fi

# Volunteers run the release binaries on Windows and macOS too: the code,
# tests included, must vet there.
vet:
	go vet ./...
	GOOS=windows go vet ./...
	GOOS=darwin go vet ./...

# The six release binaries (linux, windows, darwin on amd64 and arm64)
# build, reproducibly: built twice, the second time from a copy at another
# path, their SHA256SUMS compare equal. Nothing is kept.
release-check:
	bash scripts/release.sh --check

# staticcheck is a tool dependency in go.mod (go get -tool), so its
# version is pinned there.
staticcheck:
	go tool staticcheck ./...

# The README's test command. The e2e suite in it runs only with
# KZPROBE_E2E=1, as root (CI sets it; locally see `make e2e`).
test:
	go test -race -timeout 30m ./...

# A crasher fails and is kept under the package's testdata/fuzz.
fuzz:
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

# Installs unbound, nginx and sslsplit when missing; must run as root.
e2e:
	bash scripts/e2e.sh

lab:
	go run ./cmd/kzprobe lab

release:
	bash scripts/release.sh
