#!/usr/bin/env bash
# Render a timeline SVG (kzprobe timeline -o timeline.svg) to PNG with
# headless Chromium (Debian package "chromium-headless-shell" or
# "chromium"), offline: a local file, a fresh profile, every background
# fetch switched off and every host name resolving to nothing. kzprobe
# writes a PNG itself (kzprobe timeline -o timeline.png); this script shows
# how a browser draws the SVG, to compare the two.
#
#   scripts/render-timeline.sh [IN.svg] [OUT.png]
#
# IN defaults to analysis/render/testdata/timeline.svg, the timeline of the
# fixture that mirrors the published report (go test ./analysis/render
# -update rewrites it); OUT defaults to IN with .png.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
in=${1:-$here/analysis/render/testdata/timeline.svg}
out=${2:-${in%.svg}.png}

browser=$(command -v chromium-headless-shell || command -v chromium || command -v chromium-browser || true)
if [[ -z $browser ]]; then
	echo "render-timeline: chromium not found (apt-get install -y chromium-headless-shell)" >&2
	exit 2
fi
[[ -r $in ]] || { echo "render-timeline: cannot read $in" >&2; exit 2; }

# The picture's size, from the root element's width and height.
width=$(grep -o '<svg[^>]*' "$in" | head -1 | sed -n 's/.* width="\([0-9]*\)".*/\1/p')
height=$(grep -o '<svg[^>]*' "$in" | head -1 | sed -n 's/.* height="\([0-9]*\)".*/\1/p')
width=${width:-1200}
height=${height:-800}

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
abs_in=$(cd "$(dirname "$in")" && pwd)/$(basename "$in")
abs_out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

HOME=$profile "$browser" --headless --no-sandbox --disable-gpu --disable-quic \
	--disable-background-networking --disable-component-update --disable-sync \
	--no-first-run --no-default-browser-check --disable-extensions \
	--host-resolver-rules='MAP * ~NOTFOUND' \
	--user-data-dir="$profile" \
	--hide-scrollbars --window-size="$width,$height" \
	--screenshot="$abs_out" "file://$abs_in" >/dev/null 2>"$profile/chromium.log" || {
	cat "$profile/chromium.log" >&2
	exit 1
}
[[ -s $abs_out ]] || { echo "render-timeline: chromium wrote no PNG" >&2; cat "$profile/chromium.log" >&2; exit 1; }
echo "$abs_out (${width}x${height})"
