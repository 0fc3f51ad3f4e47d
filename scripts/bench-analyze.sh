#!/usr/bin/env bash
# Generate OONI-style JSONL (default 1 GB) and run `kzprobe analyze` on it
# under /usr/bin/time -v, to show throughput and peak memory; then time a
# plain json.Decoder over the same bytes as the baseline. The data file is
# deleted at the end.
#
#   scripts/bench-analyze.sh [SIZE] [DIR]     e.g. scripts/bench-analyze.sh 1GB /tmp
#
# The data: the real OONI measurements of analysis/testdata/ooni (Italy,
# Iran) and 30% intercepted KZ measurements through 500 distinct chains,
# with inputs, networks and times varied on every line
# (analysistest.Generator).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
size=${1:-1GB}
dir=${2:-${TMPDIR:-/tmp}}
data=$(mktemp "$dir/kzprobe-bench-XXXXXX.jsonl")
bin=$(mktemp "$dir/kzprobe-bench-bin-XXXXXX")
trap 'rm -f "$data" "$bin"' EXIT

cd "$here"
go build -o "$bin" ./cmd/kzprobe
echo "== generating $size of JSONL and timing the json.Decoder baseline"
go test ./analysis -run '^TestWriteBenchJSONL$' -count=1 -v -args -benchdata "$data" -benchsize "$size" | grep -E 'wrote|baseline'
bytes=$(stat -c %s "$data")

echo "== kzprobe analyze"
/usr/bin/time -v "$bin" analyze "$data" --format json --table summary 2>"$data.time" >"$data.out" || { cat "$data.time"; exit 1; }
wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$data.time")
rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$data.time")
cpu_user=$(sed -n 's/.*User time (seconds): //p' "$data.time")
cpu_sys=$(sed -n 's/.*System time (seconds): //p' "$data.time")
secs=$(awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }' <<<"$wall")
echo "input: $bytes bytes"
echo "wall: $wall (${secs}s)  user: ${cpu_user}s  sys: ${cpu_sys}s"
awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "throughput: %.1f MB/s\n", b/1e6/s }'
echo "peak RSS: $rss KiB"
grep -E '"(measurements|intercepted|chains_judged|cache_hits|bad_lines)"' "$data.out" | tr -d ' ,' | paste -sd' '
rm -f "$data.time" "$data.out"
