#!/usr/bin/env sh
# The tests need a real MQTT broker. Install mosquitto when we can (root with apt);
# otherwise stop and say exactly how. Broker tests are never skipped silently.
set -eu
find_broker() {
    command -v mosquitto 2>/dev/null || { [ -x /usr/sbin/mosquitto ] && echo /usr/sbin/mosquitto; } || true
}
[ -n "$(find_broker)" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "mosquitto not found: installing the Debian package 'mosquitto'" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q mosquitto >&2 ||
        { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mosquitto >&2; }
    # Debian starts the packaged service; the tests run their own brokers.
    [ -n "$(find_broker)" ] && exit 0
fi
echo "error: the tests need the MQTT broker mosquitto. Install it with:" >&2
echo "    sudo apt-get install mosquitto     (Debian/Ubuntu)" >&2
echo "or put a mosquitto binary on PATH, then run 'make test' again." >&2
exit 1
