#!/usr/bin/env sh
# The report test renders HTML in a real headless browser (pytest -m browser). Install
# Chromium when we can (root with apt); otherwise stop and say exactly how. Never skipped.
set -eu
find_browser() {
    for b in chromium chromium-browser; do command -v "$b" 2>/dev/null && return 0; done
    true
}
[ -n "$(find_browser)" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "chromium not found: installing the Debian package 'chromium'" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2 ||
        { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2; }
    [ -n "$(find_browser)" ] && exit 0
fi
echo "error: the report test needs a headless Chromium. Install it with:" >&2
echo "    sudo apt-get install chromium     (Debian/Ubuntu)" >&2
echo "or put a chromium binary on PATH, then run 'make test' again." >&2
exit 1
