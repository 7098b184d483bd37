#!/usr/bin/env sh
# Install edgepipe as a systemd service on a Debian/Ubuntu box (run as root from a
# checkout of the project). Idempotent: re-running upgrades in place.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
prefix=/opt/edgepipe
python=${PYTHON:-$(command -v python3.11 || command -v python3)}

"$python" -c 'import sys; assert sys.version_info >= (3, 11), "edgepipe needs Python >= 3.11"'
command -v mosquitto >/dev/null 2>&1 || apt-get install -y -q mosquitto

install -d -m 0755 "$prefix"
cp -a "$src/pyproject.toml" "$src/README.md" "$src/edgepipe" "$src/adapters" "$src/models" \
    "$src/docs" "$prefix/"
[ -x "$prefix/.venv/bin/python" ] || "$python" -m venv "$prefix/.venv"
"$prefix/.venv/bin/python" -m pip install -q --upgrade pip
"$prefix/.venv/bin/python" -m pip install -q "$prefix"

install -d -m 0750 /etc/edgepipe /etc/edgepipe/credentials
[ -f /etc/edgepipe/edgepipe.toml ] ||
    install -m 0640 "$src/deploy/edgepipe.example.toml" /etc/edgepipe/edgepipe.toml
[ -f /etc/edgepipe/credentials/mqtt-password ] ||
    install -m 0600 /dev/null /etc/edgepipe/credentials/mqtt-password
install -m 0644 "$src/deploy/mosquitto-edgepipe.conf" /etc/mosquitto/conf.d/edgepipe.conf
install -m 0644 "$src/deploy/edgepipe.service" /etc/systemd/system/edgepipe.service

"$prefix/.venv/bin/edgepipe" config check /etc/edgepipe/edgepipe.toml
systemctl daemon-reload
systemctl restart mosquitto
systemctl enable --now edgepipe.service
echo "edgepipe installed; status: systemctl status edgepipe; logs: journalctl -u edgepipe -f"
