#!/usr/bin/env bash
# Runs every fuzz target of the module, one after the other, each for a
# bounded time, and fails if any finds a crasher.
#
# Usage: scripts/fuzz.sh [PATTERN]
#   PATTERN      only targets whose "package.FuzzName" matches this
#                extended regular expression (default: all)
# Environment:
#   FUZZTIME     time per target, a Go duration or Nx (default 20s)
#   FUZZMINTIME  -fuzzminimizetime per crasher (default 2s)
#   FUZZPARALLEL fuzzing workers per target (default: GOMAXPROCS)
#   FUZZLOG      folder for each target's full output (default: a temp dir)
#
# Targets are found with `go test -list '^Fuzz'`, so a new one is picked up
# without editing this script. Each runs with -run '^$', so only fuzzing
# happens (the seed corpus and testdata/fuzz are replayed first by -fuzz
# itself). A crasher is written by Go under the package's
# testdata/fuzz/<FuzzName>/; this script prints that path. Keep the file:
# it is a regression test that plain `go test` replays from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-20s}
FUZZMINTIME=${FUZZMINTIME:-2s}
FUZZLOG=${FUZZLOG:-$(mktemp -d "${TMPDIR:-/tmp}/kzprobe-fuzz.XXXXXX")}
PATTERN=${1:-.}
mkdir -p "$FUZZLOG"

# "package FuzzName" per line. `go test -list` prints a package's names,
# then "ok <package>"; a package without tests prints "? <package>".
list=$(go test -run '^$' -list '^Fuzz' ./... | awk '
	/^Fuzz/ { names[n++] = $1; next }
	/^ok/   { for (i = 0; i < n; i++) print $2, names[i]; n = 0; next }
	/^\?/   { n = 0 }
')
targets=$(printf '%s\n' "$list" | awk -v pat="$PATTERN" 'NF == 2 && ($1 "." $2) ~ pat')
if [ -z "$targets" ]; then
	echo "fuzz.sh: no fuzz target matches ${PATTERN}" >&2
	exit 1
fi

parallel=()
if [ -n "${FUZZPARALLEL:-}" ]; then
	parallel=(-parallel "$FUZZPARALLEL")
fi

# fuzz_one PKG NAME LOG fuzzes one target for FUZZTIME, its output in LOG.
fuzz_one() {
	go test -run '^$' -fuzz "^${2}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINTIME" \
		"${parallel[@]}" "$1" >"$3" 2>&1
}

# coordinator_race LOG succeeds when LOG shows only the failure Go's own
# fuzzing coordinator produces at the -fuzztime deadline: a "--- FAIL:"
# line followed by a bare "context deadline exceeded", no input written
# under testdata/fuzz, and no panic or other failure message.
coordinator_race() {
	awk '
		/^--- FAIL: Fuzz/             { fail = 1; next }
		fail == 1 && /^    context deadline exceeded$/ { deadline = 1; fail = 2; next }
		fail == 1                     { other = 1; fail = 2 }
		/testdata\/fuzz\/|panic:|Failing input|fuzzing process hung/ { other = 1 }
		END { exit !(deadline && !other) }
	' "$1"
}

echo "fuzz.sh: $(printf '%s\n' "$targets" | wc -l) targets, ${FUZZTIME} each; logs in ${FUZZLOG}"
failed=()
summary=()
while read -r pkg name; do
	log="$FUZZLOG/$(basename "$pkg").$name.log"
	echo "=== $pkg $name"
	start=$SECONDS
	status=0
	fuzz_one "$pkg" "$name" "$log" || status=$?
	if [ "$status" -ne 0 ] && coordinator_race "$log"; then
		# Go's fuzzing coordinator can report its own -fuzztime deadline
		# as a failure (golang/go#75804, fixed in Go 1.27): the run ends
		# with a bare "context deadline exceeded" and no input is written.
		# That is not a finding, so run the target once more; a second
		# failure of any kind fails the job.
		echo "fuzz.sh: $pkg $name ended with Go's fuzztime race (golang/go#75804, no input written); running it again"
		mv "$log" "$log.race"
		status=0
		fuzz_one "$pkg" "$name" "$log" || status=$?
	fi
	# The last progress line carries the total: "fuzz: elapsed: 1m0s, execs: 123456 (2057/sec), ...".
	execs=$(grep -o 'execs: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2 || true)
	line=$(printf '%-28s %-26s %12s execs %5ss' "$pkg" "$name" "${execs:-?}" "$((SECONDS - start))")
	if [ "$status" -ne 0 ]; then
		tail -n 40 "$log"
		dir=$(go list -f '{{.Dir}}' "$pkg")
		crasher=$(grep -o 'testdata/fuzz/[^ ]*' "$log" | tail -n 1 || true)
		if [ -n "$crasher" ]; then
			echo "--- FAIL: $pkg $name: crasher kept in ${dir}/${crasher}"
			line="$line  CRASHER ${dir}/${crasher}"
		else
			echo "--- FAIL: $pkg $name: exit $status without a crasher file (build error or hang; see $log)"
			line="$line  FAILED (exit $status)"
		fi
		failed+=("$pkg $name")
	else
		echo "--- ok: $line"
	fi
	summary+=("$line")
done <<<"$targets"

echo
echo "fuzz.sh: summary (FUZZTIME=${FUZZTIME})"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
	echo "fuzz.sh: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz.sh: no crasher"
