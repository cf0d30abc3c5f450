#!/usr/bin/env bash
# Checks that a binary can run on an empty (scratch) image: statically linked, no ELF
# interpreter, and that the image's entrypoint arguments work.
set -euo pipefail
bin=${1:-bin/image/delayctl}
if readelf -l "$bin" 2>/dev/null | grep -q 'Requesting program interpreter'; then
	echo "check-static: $bin needs a dynamic loader; it would not start on scratch" >&2
	exit 1
fi
if readelf -d "$bin" 2>/dev/null | grep -q NEEDED; then
	echo "check-static: $bin links shared libraries:" >&2
	readelf -d "$bin" | grep NEEDED >&2
	exit 1
fi
# An empty environment and root directory stand in for the image: no shell, no certificates.
env -i "$bin" version
env -i "$bin" serve --help >/dev/null
env -i "$bin" probe --url http://127.0.0.1:1/readyz --timeout 1s >/dev/null 2>&1 && {
	echo "check-static: probe of a closed port succeeded" >&2
	exit 1
}
echo "check-static: $bin is static and its entrypoint commands run"
