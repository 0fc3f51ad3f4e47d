#!/usr/bin/env bash
# Generate OONI-style JSONL (default 1 GB), then run, each under
# /usr/bin/time -v, a plain json.Decoder over it (the baseline) and
# `kzprobe analyze` on it, and print wall time, CPU time, throughput and
# peak RSS of both. The data file is deleted at the end.
#
#   scripts/bench-analyze.sh [SIZE] [DIR]     e.g. scripts/bench-analyze.sh 1GB /tmp
#
# The data: the real OONI measurements of analysis/testdata/ooni (Italy,
# Iran) and 30% intercepted KZ measurements through 500 distinct chains,
# with inputs, networks and times varied on every line
# (analysistest.Generator). CPU seconds are the fairer comparison on a
# shared machine, where wall time includes waiting for a core.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
size=${1:-1GB}
dir=${2:-${TMPDIR:-/tmp}}
work=$(mktemp -d "$dir/kzprobe-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
data=$work/data.jsonl

cd "$here"
go build -o "$work/kzprobe" ./cmd/kzprobe
go test -c -o "$work/analysis.test" ./analysis # run from analysis/ (it reads testdata/)
echo "== generating $size of OONI-style JSONL"
(cd analysis && "$work/analysis.test" -test.run '^TestWriteBenchJSONL$' -test.v -benchdata "$data" -benchsize "$size") | grep wrote
bytes=$(stat -c %s "$data")

# report NAME TIMEFILE prints the figures of one /usr/bin/time -v run.
report() {
	local wall user sys rss secs cpu
	wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$2")
	user=$(sed -n 's/.*User time (seconds): //p' "$2")
	sys=$(sed -n 's/.*System time (seconds): //p' "$2")
	rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$2")
	secs=$(awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }' <<<"$wall")
	cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { print u+s }')
	awk -v n="$1" -v b="$bytes" -v w="$secs" -v c="$cpu" -v r="$rss" \
		'BEGIN { printf "%-10s wall %7.2fs (%6.1f MB/s)   cpu %7.2fs (%6.1f MB/s)   peak RSS %7.1f MiB\n", n, w, b/1e6/w, c, b/1e6/c, r/1024 }'
}

echo "== baseline: json.Decoder into any over the same bytes"
/usr/bin/time -v "$work/analysis.test" -test.run '^TestDecodeBenchJSONL$' -test.v -benchdecode "$data" >"$work/base.out" 2>"$work/base.time"
echo "== kzprobe analyze $data --format json"
/usr/bin/time -v "$work/kzprobe" analyze "$data" --format json --table summary >"$work/an.out" 2>"$work/an.time" || { cat "$work/an.time"; exit 1; }

echo "input: $bytes bytes"
report baseline "$work/base.time"
report analyze "$work/an.time"
grep -E '"(measurements|intercepted|chains_judged|cache_hits|bad_lines)"' "$work/an.out" | tr -d ' ,' | paste -sd' '
