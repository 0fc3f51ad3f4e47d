#!/usr/bin/env bash
# Builds kzprobe's release binaries for volunteers without Go: static
# (CGO_ENABLED=0), stripped, reproducible (same commit + same Go version =
# the same bytes, whatever the folder or the machine), version stamped,
# for linux, windows and darwin on amd64 and arm64, with SHA256SUMS.
# Offline: nothing is downloaded (GOPROXY=off, GOTOOLCHAIN=local); the
# modules must already be in the module cache (`go mod download` once).
#
# Usage:
#   scripts/release.sh                 build dist/ (refuses a dirty tree)
#   scripts/release.sh --check         CI: build all targets twice, the second
#                                      time from a copy of the source at
#                                      another path, into two temporary
#                                      folders, and fail unless the two
#                                      SHA256SUMS are identical; keeps nothing
#   scripts/release.sh --check --full  the same, the second build with an empty
#                                      build cache (slow: every package compiled
#                                      again, about 6x the first build)
# Options:
#   --version V    the version to stamp (default: $VERSION, else
#                  `git describe --tags --always --dirty --match 'v[0-9]*'`)
#   --out DIR      output folder (default dist/; not with --check)
#   --targets "os/arch ..."   a subset of the six targets
#   --allow-dirty  build dist/ from uncommitted changes anyway
#
# Files: kzprobe-<os>-<arch> (.exe on windows) and SHA256SUMS, which
# `sha256sum -c`, `shasum -a 256 -c` and PowerShell's Get-FileHash check
# (README.md, "Install without Go").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

all_targets="linux/amd64 linux/arm64 windows/amd64 windows/arm64 darwin/amd64 darwin/arm64"
targets=$all_targets
out=dist
check=0
full=0
allow_dirty=0
version=${VERSION:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=1 ;;
    --full) full=1 ;;
    --allow-dirty) allow_dirty=1 ;;
    --version) version=${2:?--version needs a value}; shift ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    --targets) targets=${2:?--targets needs a list}; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "release.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
for t in $targets; do
  case " $all_targets " in
    *" $t "*) ;;
    *) echo "release.sh: unknown target $t (one of: $all_targets)" >&2; exit 2 ;;
  esac
done
if [ "$full" = 1 ] && [ "$check" = 0 ]; then
  echo "release.sh: --full only goes with --check" >&2
  exit 2
fi

dirty=0
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1 && [ -n "$(git -C "$root" status --porcelain --untracked-files=no)" ]; then
  dirty=1
fi
if [ -z "$version" ]; then
  version=$(git -C "$root" describe --tags --always --dirty --match 'v[0-9]*' 2>/dev/null) || {
    echo "release.sh: no git history to name the version; give --version" >&2
    exit 2
  }
fi
# The version goes into -ldflags and into every record: keep it one word.
if ! [[ $version =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]]; then
  echo "release.sh: version \"$version\" must be letters, digits and . _ + - only" >&2
  exit 2
fi
if [ "$check" = 0 ] && [ "$dirty" = 1 ] && [ "$allow_dirty" = 0 ]; then
  echo "release.sh: uncommitted changes: a release must be rebuildable from its commit (commit, or --allow-dirty)" >&2
  exit 1
fi

# Everything that decides the bytes of the output is set here, so that a
# developer's `go env -w` or environment cannot change them.
export CGO_ENABLED=0 GOFLAGS=-mod=readonly GOTOOLCHAIN=local GOPROXY=off GOWORK=off
export GOAMD64=v1 GOARM64=v8.0 GOEXPERIMENT=
unset GOARM GO386 GOMIPS GOPPC64 GORISCV64 GOWASM 2>/dev/null || true
# -s -w: no symbol table or DWARF (linux/amd64: 16.6 MiB instead of 23.4);
# the Go build ID is derived from the content, so it does not break
# reproducibility.
gobuild=(go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=$version")

if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$@"; }
else
  sha256() { shasum -a 256 "$@"; }
fi

# build SRC DEST: every target from the source tree SRC into DEST, then
# DEST/SHA256SUMS.
build() {
  local src=$1 dest=$2 t os arch name
  mkdir -p "$dest"
  for t in $targets; do
    os=${t%/*} arch=${t#*/}
    name=kzprobe-$os-$arch
    [ "$os" = windows ] && name=$name.exe
    (cd "$src" && GOOS=$os GOARCH=$arch "${gobuild[@]}" -o "$dest/$name" ./cmd/kzprobe)
  done
  (cd "$dest" && sha256 kzprobe-* > SHA256SUMS)
}

# verify DEST: what the binaries say about themselves is what was asked.
verify() {
  local dest=$1 t os arch name info host
  host=$(go env GOHOSTOS)/$(go env GOHOSTARCH)
  for t in $targets; do
    os=${t%/*} arch=${t#*/}
    name=kzprobe-$os-$arch
    [ "$os" = windows ] && name=$name.exe
    info=$(go version -m "$dest/$name")
    # (With -trimpath the go command does not record -ldflags.)
    for want in "build	GOOS=$os" "build	GOARCH=$arch" "build	CGO_ENABLED=0" "build	-trimpath=true"; do
      if ! grep -qF -- "$want" <<<"$info"; then
        echo "release.sh: $name: build information lacks \"$want\":" >&2
        echo "$info" >&2
        return 1
      fi
    done
    if ! grep -qF -- "$version" "$dest/$name"; then
      echo "release.sh: $name: the version $version is not in the binary" >&2
      return 1
    fi
    if [ "$t" = "$host" ]; then
      local got
      got=$("$dest/$name" --version)
      if [ "$got" != "$version" ]; then
        echo "release.sh: $name --version printed \"$got\", want \"$version\"" >&2
        return 1
      fi
    fi
  done
}

sizes() {
  local dest=$1 f n
  for f in "$dest"/kzprobe-*; do
    n=$(wc -c <"$f")
    awk -v f="$(basename "$f")" -v n="$n" 'BEGIN { printf "  %-28s %5.1f MiB (%d bytes)\n", f, n / 1048576, n }'
  done
}

echo "release.sh: kzprobe $version with $(go version | cut -d' ' -f3-), targets: $targets"
SECONDS=0

if [ "$check" = 0 ]; then
  mkdir -p "$out"
  rm -f "$out"/kzprobe-* "$out/SHA256SUMS"
  build "$root" "$(cd "$out" && pwd)"
  verify "$out"
  echo "release.sh: built in ${SECONDS}s into $out/:"
  sizes "$out"
  echo "release.sh: $out/SHA256SUMS:"
  sed 's/^/  /' "$out/SHA256SUMS"
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/kzprobe-release.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
build "$root" "$work/a"
verify "$work/a"
first=$SECONDS

# The second build: the same files (tracked and untracked, as in the
# working tree, not ignored) copied to another path, so that a path
# leaking into a binary shows as a difference.
mkdir -p "$work/elsewhere/src"
(
  cd "$root"
  git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -
) | tar -xf - -C "$work/elsewhere/src"
if [ "$full" = 1 ]; then
  (export GOCACHE="$work/gocache" && build "$work/elsewhere/src" "$work/b")
else
  build "$work/elsewhere/src" "$work/b"
fi

if ! cmp -s "$work/a/SHA256SUMS" "$work/b/SHA256SUMS"; then
  echo "release.sh: NOT reproducible: two builds of the same source differ:" >&2
  diff "$work/a/SHA256SUMS" "$work/b/SHA256SUMS" >&2 || true
  exit 1
fi
echo "release.sh: reproducible: two builds ($root and a copy at another path$([ "$full" = 1 ] && echo ", the second with an empty build cache")) gave the same SHA256SUMS"
echo "release.sh: first build ${first}s, both $((SECONDS))s; sizes:"
sizes "$work/a"
