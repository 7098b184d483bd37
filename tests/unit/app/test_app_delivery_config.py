"""Config of delivery: [mqtt] is the local broker, [mqtt.regional.<name>] follow, [outbox]."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgepipe.app.config import load_config
from edgepipe.app.delivery import destinations
from edgepipe.core import ConfigError, SystemClock

BASE = """
site = "north"
[sources.feeder]
type = "pmu"
url = "tcp://127.0.0.1:4712"
idcode = 7
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "ca.pem").write_text("not read here\n")
    p = tmp_path / "edgepipe.toml"
    p.write_text(BASE + text)
    return p


def test_local_first_then_regional_in_the_order_written(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, """
[mqtt]
port = 1884
[mqtt.regional.dc2]
host = "10.0.0.2"
[mqtt.regional.dc1]
host = "10.0.0.1"
port = 8883
client_id = "north-dc1"
[mqtt.regional.dc1.tls]
ca_file = "ca.pem"
[outbox]
path = "state/outbox.sqlite"
drain_rate = 500.0
"""))  # fmt: skip
    assert [r.name for r in cfg.regional] == ["dc2", "dc1"]
    assert cfg.mqtt is not None and cfg.mqtt.port == 1884
    dc1 = cfg.regional[1].broker
    assert (dc1.host, dc1.port, dc1.client_id) == ("10.0.0.1", 8883, "north-dc1")
    assert dc1.tls is not None and dc1.tls.ca_file == str(tmp_path / "ca.pem")
    assert cfg.outbox.path == str(tmp_path / "state" / "outbox.sqlite")
    assert cfg.outbox.drain_rate == 500.0
    chain = destinations(cfg, SystemClock())
    assert [d.name for d in chain] == ["local", "dc2", "dc1"]


def test_every_bad_delivery_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, """
[mqtt]
port = 1884
colour = "red"
[mqtt.regional.dc1]
host = ""
bogus = 1
[mqtt.regional.dc1.tls]
ca_file = "missing.pem"
[outbox]
fsync = true
"""))  # fmt: skip
    keys = {i.key for i in err.value.issues}
    assert {"mqtt.colour", "mqtt.regional.dc1.bogus", "mqtt.regional.dc1.host",
            "mqtt.regional.dc1.tls.ca_file", "outbox.fsync"} <= keys  # fmt: skip


def test_no_mqtt_means_no_outbox_and_no_chain(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ""))
    assert cfg.mqtt is None and destinations(cfg, SystemClock()) == []
