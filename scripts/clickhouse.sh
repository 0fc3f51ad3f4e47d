#!/usr/bin/env bash
# Starts and stops throw-away ClickHouse servers on loopback for kzprobe's
# tests and for trying `kzprobe ingest` / `analyze --clickhouse` by hand:
# Debian's clickhouse-server (18.16), each server with its own config and
# data folder under DIR, listening on 127.0.0.1 only, on the ports given.
# With two or more servers, every server's config names all of them as the
# shards of one cluster, `kzprobe` (remote_servers), so a Distributed table
# created on any of them spreads over all.
#
# Usage (as root: the Debian binary runs as the user who starts it, and
# the folders are root's):
#   scripts/clickhouse.sh install              install clickhouse-server if missing
#   scripts/clickhouse.sh start DIR [--watch PID] HTTP:TCP [HTTP:TCP...]
#                                              start one server per port pair, wait
#                                              until each answers, print its HTTP URL;
#                                              --watch: kill them when PID ends (tests)
#   scripts/clickhouse.sh stop DIR [--kill]    stop the servers started in DIR
#                                              (--kill: at once, for throw-away data)
#
# Example: scripts/clickhouse.sh start /tmp/ch 18123:19000 18124:19001
set -euo pipefail

server=/usr/sbin/clickhouse-server

usage() { sed -n '2,19p' "$0"; }

install() {
  if [ -x "$server" ]; then
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "clickhouse.sh: install as root" >&2
    exit 1
  fi
  # Debian starts the service on install, listening on 8123 and 9000; a
  # policy-rc.d that exits 101 forbids that (ours only, removed after).
  local policy=/usr/sbin/policy-rc.d ours=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# kzprobe scripts/clickhouse.sh: no service starts during installation\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    ours=1
  fi
  export DEBIAN_FRONTEND=noninteractive RUNLEVEL=1
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends clickhouse-server >/dev/null
  if [ "$ours" = 1 ]; then rm -f "$policy"; fi
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now clickhouse-server >/dev/null 2>&1 || true
  fi
}

# config DIR/N HTTP TCP SHARDS: one server's config.xml, paths under DIR/N.
config() {
  local d=$1 http=$2 tcp=$3 shards=$4
  cat >"$d/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>$d/log/server.log</log>
    <errorlog>$d/log/error.log</errorlog>
    <size>10M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$http</http_port>
  <tcp_port>$tcp</tcp_port>
  <interserver_http_port>0</interserver_http_port>
  <path>$d/data/</path>
  <tmp_path>$d/tmp/</tmp_path>
  <user_files_path>$d/user_files/</user_files_path>
  <format_schema_path>$d/format_schemas/</format_schema_path>
  <users_config>$d/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <mlock_executable>false</mlock_executable>
  <remote_servers>
    <kzprobe>
$shards    </kzprobe>
  </remote_servers>
</yandex>
EOF
  cat >"$d/users.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default></default></quotas>
</yandex>
EOF
}

start() {
  local dir=$1 watch=""
  shift
  if [ "${1:-}" = --watch ]; then
    watch=${2:?--watch needs a PID}
    shift 2
  fi
  if [ $# -eq 0 ]; then usage >&2; exit 2; fi
  if [ ! -x "$server" ]; then
    echo "clickhouse.sh: $server missing (scripts/clickhouse.sh install)" >&2
    exit 1
  fi
  mkdir -p "$dir"
  local shards="" pair
  for pair in "$@"; do
    shards+="      <shard><replica><host>127.0.0.1</host><port>${pair#*:}</port></replica></shard>
"
  done
  local n=0 d
  for pair in "$@"; do
    d=$dir/$n
    mkdir -p "$d/log" "$d/data" "$d/tmp" "$d/user_files" "$d/format_schemas"
    config "$d" "${pair%%:*}" "${pair#*:}" "$shards"
    # The server's working folder is its data folder; it forks nothing.
    (cd "$d" && exec "$server" --config-file="$d/config.xml" >"$d/log/stdout.log" 2>&1) &
    echo $! >"$d/pid"
    n=$((n + 1))
  done
  n=0
  for pair in "$@"; do
    d=$dir/$n
    local url="http://127.0.0.1:${pair%%:*}/" i
    for i in $(seq 1 300); do
      if [ "$(curl -s --max-time 1 "$url" 2>/dev/null)" = "Ok." ]; then
        break
      fi
      if ! kill -0 "$(cat "$d/pid")" 2>/dev/null; then
        echo "clickhouse.sh: server $n exited; its log:" >&2
        tail -20 "$d/log/stdout.log" "$d/log/error.log" >&2 2>/dev/null || true
        exit 1
      fi
      sleep 0.1
    done
    if [ "$i" = 300 ]; then
      echo "clickhouse.sh: server $n did not answer on $url in 30 s" >&2
      exit 1
    fi
    echo "$url"
    n=$((n + 1))
  done
  if [ -n "$watch" ]; then
    # A test killed before its cleanup (a signal, a closed pipe) must not
    # leave servers behind: stop them when the watched process is gone.
    (
      while kill -0 "$watch" 2>/dev/null; do sleep 1; done
      stop "$dir" KILL
    ) </dev/null >/dev/null 2>&1 &
  fi
}

stop() {
  local dir=$1 sig=${2:-TERM} p pid pids=()
  for p in "$dir"/*/pid; do
    [ -e "$p" ] || continue
    pid=$(cat "$p")
    kill -"$sig" "$pid" 2>/dev/null || true
    pids+=("$pid")
    rm -f "$p"
  done
  # A graceful shutdown takes 18.16 a few seconds; wait for all at once.
  for pid in ${pids[@]+"${pids[@]}"}; do
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

case "${1:-}" in
  install) install ;;
  start) shift; [ $# -ge 2 ] || { usage >&2; exit 2; }; start "$@" ;;
  stop)
    shift
    case "$#:${2:-}" in
      1:) stop "$1" ;;
      2:--kill) stop "$1" KILL ;;
      *) usage >&2; exit 2 ;;
    esac ;;
  -h|--help) usage ;;
  *) usage >&2; exit 2 ;;
esac
