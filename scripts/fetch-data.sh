#!/usr/bin/env bash
# Puts the BTS flight data at data/flightdata.csv and verifies its checksum.
# Source order: $DELAYCTL_DATA (a file), ../shared/data/flightdata.csv, then the public URL.
set -euo pipefail

dest=${1:-data/flightdata.csv}
sha=f7d9f2a71a059960abda9558bf92064c6761b8d082889a45bf7ab0759f015c93
url=https://topcs.blob.core.windows.net/public/FlightData.csv

verify() {
	local got
	got=$(sha256sum "$1" | cut -d' ' -f1)
	if [ "$got" != "$sha" ]; then
		echo "fetch-data: $1 has sha256 $got, want $sha" >&2
		return 1
	fi
}

if [ -f "$dest" ] && verify "$dest" 2>/dev/null; then
	echo "fetch-data: $dest is present and verified"
	exit 0
fi

mkdir -p "$(dirname "$dest")"
tmp=$(mktemp "$dest.tmp.XXXXXX")
trap 'rm -f "$tmp"' EXIT

src=""
for cand in "${DELAYCTL_DATA:-}" ../shared/data/flightdata.csv; do
	if [ -n "$cand" ] && [ -f "$cand" ]; then
		src=$cand
		break
	fi
done
if [ -n "$src" ]; then
	echo "fetch-data: copying $src"
	cp "$src" "$tmp"
else
	echo "fetch-data: downloading $url"
	curl -fsSL --retry 3 -o "$tmp" "$url"
fi
verify "$tmp"
mv "$tmp" "$dest"
trap - EXIT
echo "fetch-data: wrote $dest (sha256 verified)"
