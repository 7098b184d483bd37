"""File names in the service config are relative to the config file, not to the CWD.

Each test writes a config into one temporary directory and loads it with the working
directory set to another, so a name resolved against the CWD finds nothing there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adapters import registry
from adapters.modbus.poller import ModbusPoller
from adapters.opcua.config import parse_options as opcua_options
from edgepipe.app.config import load_config
from edgepipe.core import ConfigError, SystemClock

ROOT = Path(__file__).resolve().parents[3]
PROFILE = ROOT / "deploy" / "profiles" / "transformer.toml"


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``<tmp>/etc``: the config's directory, with ``profiles/tx.toml``; the CWD is
    ``<tmp>/elsewhere``, which holds nothing."""
    etc = tmp_path / "etc"
    (etc / "profiles").mkdir(parents=True)
    shutil.copy(PROFILE, etc / "profiles" / "tx.toml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return etc


def _write(etc: Path, body: str) -> Path:
    path = etc / "edgepipe.toml"
    path.write_text('site = "north"\n' + body, encoding="utf-8")
    return path


def test_modbus_profile_is_relative_to_the_config_file(layout: Path) -> None:
    cfg = load_config(_write(layout, """
[sources.tx]
type = "modbus"
url = "tcp://127.0.0.1:1502"
profile = "profiles/tx.toml"
"""))  # fmt: skip
    (src,) = cfg.sources
    assert src.options["profile"] == str(layout / "profiles" / "tx.toml")
    # the supervisor builds sources from these options: the profile loads from any CWD
    poller = registry.create(src.type, src.name, src.options, SystemClock())
    assert isinstance(poller, ModbusPoller)
    assert poller.config.devices[0].profile.points


def test_modbus_device_list_profiles_are_relative_to_the_config_file(layout: Path) -> None:
    absolute = layout / "profiles" / "tx.toml"
    cfg = load_config(_write(layout, f"""
[sources.gw]
type = "modbus"
url = "tcp://127.0.0.1:1502"
[[sources.gw.devices]]
profile = "profiles/tx.toml"
unit_id = 1
[[sources.gw.devices]]
profile = "./profiles/../profiles/tx.toml"
unit_id = 2
[[sources.gw.devices]]
profile = "{absolute}"
unit_id = 3
"""))  # fmt: skip
    (src,) = cfg.sources
    got = [Path(d["profile"]).resolve() for d in src.options["devices"]]
    assert got == [absolute.resolve()] * 3
    assert src.options["devices"][2]["profile"] == str(absolute)  # absolute: untouched


def test_a_profile_next_to_the_cwd_only_is_not_found(layout: Path) -> None:
    """The old behaviour (relative to the CWD) would load this; now it names the key."""
    cwd = Path.cwd()
    (cwd / "profiles").mkdir()
    shutil.copy(PROFILE, cwd / "profiles" / "only-here.toml")
    with pytest.raises(ConfigError) as err:
        load_config(_write(layout, """
[sources.tx]
type = "modbus"
url = "tcp://127.0.0.1:1502"
profile = "profiles/only-here.toml"
"""))  # fmt: skip
    assert [i.key for i in err.value.issues] == ["sources.tx.profile"]
    assert str(layout / "profiles" / "only-here.toml") in str(err.value)


def test_opcua_certificate_files_are_relative_to_the_config_file(layout: Path) -> None:
    (layout / "opcua" / "trusted").mkdir(parents=True)
    (layout / "opcua" / "password").write_text("s3cret\n", encoding="utf-8")
    for name in ("client.der", "client.pem"):
        (layout / "opcua" / name).write_bytes(b"x")
    cfg = load_config(_write(layout, """
[sources.dga]
type = "opcua"
url = "opc.tcp://127.0.0.1:4840/"
security = "SignAndEncrypt"
policy = "Basic256Sha256"
certificate = "opcua/client.der"
private_key = "opcua/client.pem"
trust_dir = "opcua/trusted"
username = "edgepipe"
password_file = "opcua/password"
[sources.dga.nodes]
h2 = "/Objects/2:DGA/2:H2"
"""))  # fmt: skip
    (src,) = cfg.sources
    opts = opcua_options(src.name, src.options)
    assert opts.certificate == str(layout / "opcua" / "client.der")
    assert opts.private_key == str(layout / "opcua" / "client.pem")
    assert opts.trust_dir == str(layout / "opcua" / "trusted")
    assert opts.password == "s3cret"  # read from <config dir>/opcua/password


def test_missing_opcua_certificate_files_are_config_errors(layout: Path) -> None:
    # The client reads them at every connect; `config check` must not say ok first.
    path = _write(layout, """
[sources.dga]
type = "opcua"
url = "opc.tcp://127.0.0.1:4840/"
security = "Sign"
certificate = "nope/client.der"
private_key = "nope/client.pem"
trust_dir = "nope/trusted"
[sources.dga.nodes]
h2 = "/Objects/2:DGA/2:H2"
""")  # fmt: skip
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    keys = {i.key for i in exc.value.issues}
    assert keys == {f"sources.dga.{k}" for k in ("certificate", "private_key", "trust_dir")}
    assert str(layout / "nope" / "client.der") in str(exc.value)


def test_every_file_key_is_relative_to_the_config_file(layout: Path) -> None:
    """One rule for the whole file: models, outbox, capture, broker TLS files and the
    password file, local and regional."""
    (layout / "tls").mkdir()
    for name in ("ca.pem", "dc1.pem"):
        (layout / "tls" / name).write_text("not checked beyond existence\n", encoding="utf-8")
    cfg = load_config(_write(layout, """
[sources.tx]
type = "modbus"
url = "tcp://127.0.0.1:1502"
profile = "profiles/tx.toml"
[models]
dir = "models"
enabled = []
[outbox]
path = "state/outbox.sqlite"
[capture]
dir = "capture"
[mqtt]
host = "127.0.0.1"
[mqtt.tls]
ca_file = "tls/ca.pem"
[mqtt.regional.dc1]
host = "127.0.0.1"
port = 8883
[mqtt.regional.dc1.tls]
ca_file = "tls/dc1.pem"
"""))  # fmt: skip
    assert cfg.models.path == layout / "models"
    assert Path(cfg.outbox.path) == layout / "state" / "outbox.sqlite"
    assert cfg.capture is not None and Path(cfg.capture.dir) == layout / "capture"
    assert cfg.mqtt is not None and cfg.mqtt.tls is not None
    assert Path(cfg.mqtt.tls.ca_file) == layout / "tls" / "ca.pem"
    (dc1,) = cfg.regional
    assert dc1.broker.tls is not None
    assert Path(dc1.broker.tls.ca_file) == layout / "tls" / "dc1.pem"


def test_config_check_from_another_directory(layout: Path) -> None:
    """The operator's check (``edgepipe config check FILE``) run from anywhere."""
    path = _write(layout, """
[sources.tx]
type = "modbus"
url = "tcp://127.0.0.1:1502"
profile = "profiles/tx.toml"
""")  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "edgepipe.app.cli", "config", "check", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


SECRETS = """
[mqtt]
port = 1883
[mqtt.tls]
ca_file = "credential:mqtt-ca"
cert_file = "credential:mqtt-cert"
key_file = "credential:mqtt-key"
[sources.dga]
type = "opcua"
url = "opc.tcp://127.0.0.1:4840/"
security = "Sign"
certificate = "credential:opcua-cert"
private_key = "credential:opcua-key"
username = "edgepipe"
password_file = "credential:opcua-password"
[sources.dga.nodes]
h2 = "/Objects/2:DGA/2:H2"
"""


def test_secret_files_can_be_systemd_credentials(
    layout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A dynamic-user service cannot read a 0600 root key file; systemd hands it over as
    # $CREDENTIALS_DIRECTORY/<name> (LoadCredential=<name>:/etc/edgepipe/credentials/...).
    creds = tmp_path / "run-credentials"
    creds.mkdir()
    for name in ("mqtt-ca", "mqtt-cert", "mqtt-key", "opcua-cert", "opcua-key"):
        (creds / name).write_bytes(b"x")
    (creds / "opcua-password").write_text("s3cret\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    cfg = load_config(_write(layout, SECRETS))
    assert cfg.mqtt is not None and cfg.mqtt.tls is not None
    assert cfg.mqtt.tls.key_file == str(creds / "mqtt-key")
    opts = opcua_options("dga", cfg.sources[0].options)
    assert opts.private_key == str(creds / "opcua-key") and opts.password == "s3cret"


def test_a_credential_without_systemd_is_named(
    layout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError) as exc:
        load_config(_write(layout, SECRETS))
    text = str(exc.value)
    assert "sources.dga.private_key" in text and "$CREDENTIALS_DIRECTORY/opcua-key" in text
