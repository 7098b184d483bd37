#!/usr/bin/env sh
# Usage: tools/ensure-tool.sh PACKAGE "WHAT THE TESTS NEED IT FOR" PROGRAM...
# The tests need real parts (a mosquitto broker, a headless Chromium). If none of the
# PROGRAMs (names on PATH, or absolute paths) is there, install the Debian PACKAGE when we
# can (root with apt); otherwise stop and say exactly how. Such tests are never skipped.
set -eu
package=$1
need=$2
shift 2
found() {
    for p in "$@"; do
        case $p in
        /*) [ -x "$p" ] && return 0 ;;
        *) command -v "$p" >/dev/null 2>&1 && return 0 ;;
        esac
    done
    return 1
}
found "$@" && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "$1 not found: installing the Debian package '$package'" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$package" >&2 ||
        { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$package" >&2; }
    found "$@" && exit 0
fi
echo "error: $need. Install it with:" >&2
echo "    sudo apt-get install $package     (Debian/Ubuntu)" >&2
echo "or put a $1 binary on PATH, then run 'make test' again." >&2
exit 1
