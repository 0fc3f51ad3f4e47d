#!/usr/bin/env bash
# Runs kzprobe's end-to-end suite (e2e/) by hand: real unbound, nginx and
# sslsplit on 127.77.0.0/16, the real kzprobe binary, a verdict table, and
# everything torn down at the end; and the trace suite (TestTrace): network
# namespaces, nftables and haproxy, a 4-hop network for kzprobe trace.
# All the set-up lives in the Go test
# (e2e/e2e_test.go); this script only installs the packages and runs it.
# It also installs headless Chromium (chromium-headless-shell), which the
# report's browser test (analysis/render TestReportInBrowser) renders with,
# and ClickHouse (scripts/clickhouse.sh install), which store/clickhouse's
# tests and cmd/kzprobe's ingest tests start on loopback.
#
# Usage (as root, on Debian or Ubuntu):
#   scripts/e2e.sh                  install what is missing, run the suite
#   scripts/e2e.sh --install-only   install what is missing, run nothing
#   scripts/e2e.sh --no-install     run the suite, install nothing
#   scripts/e2e.sh --keep           keep the work folder (configs, logs, output)
#   scripts/e2e.sh --break          swap two expectations: the suite must FAIL
# Anything after -- goes to go test (e.g. -- -timeout 5m).
set -euo pipefail
cd "$(dirname "$0")/.."

install=1
run=1
go_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --install-only) run=0 ;;
    --no-install) install=0 ;;
    --keep) export KZPROBE_E2E_KEEP=1 ;;
    --break) export KZPROBE_E2E_BREAK=1 ;;
    --) shift; go_args=("$@"); break ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "e2e.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$(id -u)" != 0 ]; then
  echo "e2e.sh: run as root: the suite binds 127.77.0.0/16 and runs sslsplit, which drops to nobody" >&2
  exit 1
fi

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

missing=()
for tool in unbound nginx sslsplit openssl nft haproxy; do
  have "$tool" || missing+=("$tool")
done
browser=()
if ! have chromium-headless-shell && ! have chromium; then
  missing+=(chromium-headless-shell)
  browser=(chromium-headless-shell)
fi

if [ ${#missing[@]} -gt 0 ] && [ "$install" = 1 ]; then
  echo "e2e.sh: installing unbound nginx-light sslsplit openssl nftables haproxy ${browser[*]} (missing: ${missing[*]})"
  # Debian starts unbound, nginx and haproxy on install, listening on every
  # interface; a policy-rc.d that exits 101 forbids that. Ours is removed
  # afterwards; an existing one is left alone.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# kzprobe scripts/e2e.sh: no service starts during installation\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive RUNLEVEL=1
  apt-get update -qq
  # Debian 13 dropped nginx-light; plain nginx is the same server.
  apt-get install -y -qq --no-install-recommends unbound nginx-light sslsplit openssl nftables haproxy iproute2 procps ${browser[@]+"${browser[@]}"} ||
    apt-get install -y -qq --no-install-recommends unbound nginx sslsplit openssl nftables haproxy iproute2 procps ${browser[@]+"${browser[@]}"}
  # On a machine booted with systemd the packages were also enabled for
  # the next boot; the suite runs its own instances, so disable the
  # services this script just installed.
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    for svc in unbound nginx haproxy; do
      case " ${missing[*]} " in *" $svc "*) systemctl disable --now "$svc" >/dev/null 2>&1 || true ;; esac
    done
  fi
fi

# ClickHouse (Debian's clickhouse-server, 18.16) for store/clickhouse's
# tests and kzprobe ingest / analyze --clickhouse; its own script installs
# it without starting the service.
if [ "$install" = 1 ]; then
  bash scripts/clickhouse.sh install
fi

if [ "$run" = 0 ]; then
  exit 0
fi

# -count=1: the suite talks to daemons, never cache its result.
KZPROBE_E2E=1 go test -count=1 -v -run '^(TestE2E|TestTrace)$' ./e2e/ ${go_args[@]+"${go_args[@]}"}
