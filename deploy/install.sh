#!/usr/bin/env sh
# Install edgepipe as a systemd service on a Debian/Ubuntu box (run as root from a
# checkout of the project). Idempotent: re-running upgrades in place.
set -eu
# Everything installed here is read by the service's dynamic user, which owns none of it
# and is in none of its groups: it reads as "other" (docs/operations.md, Install).
umask 022
src=$(cd "$(dirname "$0")/.." && pwd)
prefix=/opt/edgepipe
etc=/etc/edgepipe
mosq_main=/etc/mosquitto/mosquitto.conf
mosq_dir=/etc/mosquitto/conf.d
python=${PYTHON:-$(command -v /usr/bin/python3.11 || command -v python3.11 || command -v python3)}

"$python" -c 'import sys; assert sys.version_info >= (3, 11), "edgepipe needs Python >= 3.11"'

apt_updated=no
apt_install() {
    # a fresh box's package lists may be missing or stale: update once before installing
    if [ "$apt_updated" = no ]; then
        apt-get update -q
        apt_updated=yes
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || apt_install mosquitto
# Debian's python3 has no venv/ensurepip without python3-venv
"$python" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv

# The program: a clean copy of the release (files left over from an older version would
# be built into the package again), installed non-editable into the prefix's venv.
install -d -m 0755 "$prefix"
rm -rf "$prefix/edgepipe" "$prefix/adapters" "$prefix/models" "$prefix/docs" \
    "$prefix/build" "$prefix/edgepipe.egg-info"
cp -R "$src/pyproject.toml" "$src/README.md" "$src/edgepipe" "$src/adapters" "$src/models" \
    "$src/docs" "$prefix/"
find "$prefix/edgepipe" "$prefix/adapters" -name __pycache__ -prune -exec rm -rf {} +
[ -x "$prefix/.venv/bin/python" ] || "$python" -m venv "$prefix/.venv"
"$prefix/.venv/bin/python" -m pip install -q --upgrade pip
"$prefix/.venv/bin/python" -m pip install -q "$prefix"
# The service sees no home directories (ProtectHome=yes): a venv made from a Python under
# /root or /home (pyenv, a user's build) cannot start. PYTHON=/usr/bin/python3.11 avoids it.
real=$("$prefix/.venv/bin/python" -c 'import os, sys; print(os.path.realpath(sys.executable))')
case $real in
/root/* | /home/* | /run/user/*)
    echo "error: $prefix/.venv runs $real, which the service cannot see (ProtectHome=yes);" \
        "remove $prefix/.venv and run $0 again with PYTHON set to a system Python 3.11" >&2
    exit 1
    ;;
esac
# The models stay in $prefix/models, where an installed edgepipe looks by default (the
# models/ beside its venv; [models] dir in the config overrides it).
if [ ! -f "$prefix/models/manifest.json" ]; then
    echo "error: $src/models/manifest.json is missing: this checkout has no models" >&2
    exit 1
fi
# copies of a checkout made under umask 077, or a venv made by an older run, may be 0600/0700
chmod -R u+rwX,go+rX,go-w "$prefix"

# Config: readable by the service (0755/0644; it holds no secrets). Secrets are systemd
# credentials: PID 1 reads them as root (LoadCredential=), so they stay 0600 root.
install -d -m 0755 "$etc" "$etc/profiles"
install -d -m 0700 "$etc/credentials"
[ -f "$etc/edgepipe.toml" ] || install -m 0644 "$src/deploy/edgepipe.example.toml" "$etc/edgepipe.toml"
chmod 0644 "$etc/edgepipe.toml" # 0640 root:root (older install.sh) is unreadable to the service
for profile in "$src"/deploy/profiles/*.toml; do # the example's profiles/ is next to it
    [ -f "$etc/profiles/${profile##*/}" ] || install -m 0644 "$profile" "$etc/profiles/"
done
[ -f "$etc/credentials/mqtt-password" ] || install -m 0600 /dev/null "$etc/credentials/mqtt-password"

# Check the config as the service will read it: as an unprivileged user in no group.
if ! setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$prefix/.venv/bin/edgepipe" config check "$etc/edgepipe.toml"; then
    echo "error: $etc/edgepipe.toml does not pass 'edgepipe config check' as an unprivileged" \
        "user (the service runs as a dynamic user); fix it and run $0 again" >&2
    exit 1
fi

# The local broker. Debian's mosquitto.conf sets persistence_location and includes
# conf.d; the snippet relies on both (mosquitto refuses a second persistence_location).
if ! grep -Eq "^[[:space:]]*include_dir[[:space:]]+$mosq_dir/?[[:space:]]*$" "$mosq_main"; then
    echo "error: $mosq_main has no 'include_dir $mosq_dir': edgepipe's broker settings" \
        "($mosq_dir/edgepipe.conf) would be ignored. Add that line and run $0 again" >&2
    exit 1
fi
others=$(find "$mosq_dir" -maxdepth 1 -name '*.conf' ! -name edgepipe.conf \
    ! -name edgepipe-persistence.conf)
# shellcheck disable=SC2086 # $others: file names without spaces, from find
if grep -Eqs '^[[:space:]]*persistence[[:space:]]+(false|0)' "$mosq_main" $others; then
    echo "error: persistence is turned off in $mosq_main or $mosq_dir: edgepipe needs a" \
        "persistent local broker (an alert counts as delivered at its PUBACK)" >&2
    exit 1
fi
# shellcheck disable=SC2086
if grep -Eqs '^[[:space:]]*persistence_location[[:space:]]' "$mosq_main" $others; then
    rm -f "$mosq_dir/edgepipe-persistence.conf"
else
    printf '%s\n' "# deploy/install.sh of edgepipe: $mosq_main sets no persistence_location" \
        "persistence_location /var/lib/mosquitto/" >"$mosq_dir/edgepipe-persistence.conf"
    chmod 0644 "$mosq_dir/edgepipe-persistence.conf"
fi
had_snippet=no
if [ -f "$mosq_dir/edgepipe.conf" ]; then
    cp -p "$mosq_dir/edgepipe.conf" "$mosq_dir/edgepipe.conf.previous" # not *.conf: not read
    had_snippet=yes
fi
install -m 0644 "$src/deploy/mosquitto-edgepipe.conf" "$mosq_dir/edgepipe.conf"
if ! systemctl restart mosquitto; then
    # leave the broker as it was rather than down
    if [ "$had_snippet" = yes ]; then
        mv "$mosq_dir/edgepipe.conf.previous" "$mosq_dir/edgepipe.conf"
    else
        rm -f "$mosq_dir/edgepipe.conf"
    fi
    if systemctl restart mosquitto; then
        state="it runs again on the previous config"
    else
        state="it does not start on the previous config either"
    fi
    echo "error: mosquitto did not start with $mosq_dir/edgepipe.conf, so $state" \
        "(journalctl -u mosquitto says why)" >&2
    exit 1
fi
rm -f "$mosq_dir/edgepipe.conf.previous"

install -m 0644 "$src/deploy/edgepipe.service" /etc/systemd/system/edgepipe.service
systemctl daemon-reload
systemctl enable edgepipe.service
# restart, not `enable --now`: an upgrade must replace the running version
if ! systemctl restart edgepipe.service; then
    echo "error: edgepipe did not start; see journalctl -u edgepipe" >&2
    exit 1
fi
echo "edgepipe installed; status: systemctl status edgepipe; logs: journalctl -u edgepipe -f"
