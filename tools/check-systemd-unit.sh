#!/usr/bin/env sh
# The service's sandbox must keep `systemd-analyze security` exposure at 2.0 or less.
set -eu
unit="$(dirname "$0")/../deploy/edgepipe.service"
limit=2.0
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "error: systemd-analyze is needed to check $unit (Debian package 'systemd')" >&2
    exit 1
fi
out=$(systemd-analyze security --offline=yes "$unit" 2>&1) || true
level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if [ -z "$level" ]; then
    printf '%s\n' "$out" >&2
    echo "error: could not read the exposure level of $unit" >&2
    exit 1
fi
if awk -v l="$level" -v m="$limit" 'BEGIN { exit !(l > m) }'; then
    printf '%s\n' "$out" >&2
    echo "error: $unit exposure $level is above $limit" >&2
    exit 1
fi
echo "systemd-analyze security: deploy/edgepipe.service exposure $level (limit $limit)"
