"""The "modbus" source's options: typed records, every error at sources.<name>.<key>."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters import registry
from adapters.modbus.poller import ModbusPoller
from adapters.modbus.source import parse_options
from edgepipe.core import ConfigError, SystemClock

PROFILE = Path(__file__).resolve().parents[3] / "deploy" / "profiles" / "transformer.toml"


def test_one_device_shorthand_and_rtu_gateway() -> None:
    cfg = parse_options("tx", {"url": "rtu+tcp://10.0.0.5:4001", "profile": str(PROFILE),
                               "unit_id": 7})  # fmt: skip
    assert (cfg.framer, cfg.host, cfg.port) == ("rtu", "10.0.0.5", 4001)
    (dev,) = cfg.devices
    assert (dev.unit_id, dev.asset, dev.stream) == (7, "tx", "tx/7")
    assert dev.profile.kind == "transformer"


def test_several_units_behind_one_gateway() -> None:
    devices = [{"profile": str(PROFILE), "unit_id": u, "asset": f"T{u}"} for u in (1, 2)]
    source = registry.create("modbus", "gw", {"url": "tcp://127.0.0.1", "devices": devices},
                             SystemClock())  # fmt: skip
    assert isinstance(source, ModbusPoller)
    assert source.config.port == 502
    assert [d.stream for d in source.config.devices] == ["gw/1", "gw/2"]


def test_every_error_names_its_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('points = [{name = "x", table = "holding", address = -1}]\n')
    with pytest.raises(ConfigError) as err:
        parse_options("tx", {"url": "http://x", "bogus": 1, "reconnect_max_s": 0,
                             "devices": [{"profile": str(bad)}, {"profile": "/nonexistent"},
                                         {"profile": str(PROFILE), "unit_id": 999}]})  # fmt: skip
    keys = {i.key for i in err.value.issues}
    assert {
        "sources.tx.url",
        "sources.tx.bogus",
        "sources.tx.reconnect_max_s",
        "sources.tx.devices[0].profile.points[0].address",
        "sources.tx.devices[1].profile",
        "sources.tx.devices[2].unit_id",
    } <= keys, keys
