#!/usr/bin/env bash
# Measures kzprobe on ClickHouse against the files, side by side in one run
# (issue #20's goals), on generated OONI-style JSONL (default 1 GB):
#
#   1. `kzprobe analyze` of the file on one core (GOMAXPROCS=1): the
#      single-core throughput the ingest goal is stated in;
#   2. `kzprobe ingest` of the file into a fresh ClickHouse (every core);
#      goal: at least 0.8 x cores x (1);
#   3. `kzprobe analyze` of the file on every core, and `kzprobe analyze
#      --clickhouse` over the ingested data; goal: --clickhouse at least 5x
#      faster; the two outputs' tables must be equal.
#
#   scripts/bench-clickhouse.sh [SIZE] [DIR]     e.g. scripts/bench-clickhouse.sh 200MB /tmp
#
# As root (scripts/clickhouse.sh starts the server on 127.0.0.1:18923).
# The server, its data and the data file are removed at the end. On a
# shared machine the ClickHouse server competes with kzprobe for the same
# cores: the ingest figure includes the server's own parsing and merging.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
size=${1:-1GB}
dir=${2:-${TMPDIR:-/tmp}}
work=$(mktemp -d "$dir/kzprobe-chbench-XXXXXX")
cleanup() {
	bash "$here/scripts/clickhouse.sh" stop "$work/ch" --kill || true
	rm -rf "$work"
}
trap cleanup EXIT
data=$work/data.jsonl
export KZPROBE_NETWORK_ALLOW=127.0.0.0/8,::1/128

cd "$here"
go build -o "$work/kzprobe" ./cmd/kzprobe
go test -c -o "$work/analysis.test" ./analysis
echo "== generating $size of OONI-style JSONL"
(cd analysis && "$work/analysis.test" -test.run '^TestWriteBenchJSONL$' -test.v -benchdata "$data" -benchsize "$size") | grep wrote
bytes=$(stat -c %s "$data")
cores=$(nproc)

echo "== starting ClickHouse"
t0=$(date +%s.%N)
bash scripts/clickhouse.sh start "$work/ch" 18923:19923 >/dev/null
t1=$(date +%s.%N)
url=http://127.0.0.1:18923/bench

# wall NAME TIMEFILE: the wall seconds of one /usr/bin/time -v run.
wall() {
	sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$1" |
		awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }'
}
cpu() {
	local u s
	u=$(sed -n 's/.*User time (seconds): //p' "$1")
	s=$(sed -n 's/.*System time (seconds): //p' "$1")
	awk -v u="$u" -v s="$s" 'BEGIN { print u+s }'
}

tables=intermediates,networks,domains,gaps
echo "== analyze, one core"
GOMAXPROCS=1 /usr/bin/time -v "$work/kzprobe" analyze "$data" --format json --table summary >/dev/null 2>"$work/an1.time"
# srvcpu prints the server's CPU seconds so far (user + system).
srvcpu() {
	awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$(cat "$work/ch/0/pid")/stat"
}
echo "== ingest, $cores cores"
s0=$(srvcpu)
/usr/bin/time -v "$work/kzprobe" ingest "$data" --clickhouse "$url" >"$work/ingest.out" 2>"$work/ingest.time"
s1=$(srvcpu)
cat "$work/ingest.out"
echo "== analyze, $cores cores, files"
/usr/bin/time -v "$work/kzprobe" analyze "$data" --format json --table "$tables" >"$work/files.json" 2>"$work/an.time"
echo "== analyze --clickhouse"
s2=$(srvcpu)
/usr/bin/time -v "$work/kzprobe" analyze --clickhouse "$url" --format json --table "$tables" >"$work/ch.json" 2>"$work/ch.time"
s3=$(srvcpu)
if cmp -s "$work/files.json" "$work/ch.json"; then same="equal"; else same="DIFFERENT"; fi
echo "== analyze --clickhouse --since 2024-01-01 --asn AS9198 (pushed down)"
/usr/bin/time -v "$work/kzprobe" analyze --clickhouse "$url" --since 2024-01-01 --asn AS9198 --format json --table summary >/dev/null 2>"$work/chf.time"

an1=$(wall "$work/an1.time"); ing=$(wall "$work/ingest.time"); an=$(wall "$work/an.time"); ch=$(wall "$work/ch.time"); chf=$(wall "$work/chf.time")
awk -v b="$bytes" -v c="$cores" -v a1="$an1" -v a1c="$(cpu "$work/an1.time")" -v i="$ing" -v ic="$(cpu "$work/ingest.time")" \
	-v a="$an" -v ac="$(cpu "$work/an.time")" -v ch="$ch" -v chc="$(cpu "$work/ch.time")" -v chf="$chf" -v is="$(awk -v a="$s0" -v b="$s1" 'BEGIN{print b-a}')" -v as="$(awk -v a="$s2" -v b="$s3" 'BEGIN{print b-a}')" -v st="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" -v same="$same" 'BEGIN {
	printf "input %.0f MB, %d cores; ClickHouse started in %.2fs\n", b/1e6, c, st
	t1 = b/1e6/a1; ti = b/1e6/i
	printf "analyze, 1 core:       %7.2fs  %7.1f MB/s (cpu %.2fs)\n", a1, t1, a1c
	printf "ingest, %d cores:       %7.2fs  %7.1f MB/s (kzprobe cpu %.2fs) = %.2f x cores x 1-core analyze (goal 0.8)\n", c, i, ti, ic, ti/(c*t1)
	printf "  CPU: kzprobe %.2fs + server %.2fs; CPU-bound on %d cores: %.1f MB/s = %.2f x cores x 1-core analyze CPU (%.1f MB/s)\n", ic, is, c, b/1e6/((ic+is)/c), (b/1e6/((ic+is)/c))/(c*b/1e6/a1c), b/1e6/a1c
	printf "analyze, files:        %7.2fs  %7.1f MB/s (cpu %.2fs)\n", a, b/1e6/a, ac
	printf "analyze --clickhouse:  %7.2fs  = %.1fx faster than files (goal 5x); tables %s; CPU kzprobe %.2fs + server %.2fs\n", ch, a/ch, same, chc, as
	printf "  with --since --asn:  %7.2fs\n", chf
}'
[ "$same" = equal ]
