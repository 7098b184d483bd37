"""The "pmu" registry entry: options mapping, validation errors naming their key."""

from __future__ import annotations

from typing import Any

import pytest

from adapters import registry
from adapters.c37118.client import PmuClient
from edgepipe.core import ConfigError, VirtualClock


def _create(**opts: Any) -> PmuClient:
    src = registry.create("pmu", "bus1", opts, VirtualClock())
    assert isinstance(src, PmuClient)
    return src


def test_tcp_source_with_defaults() -> None:
    c = _create(url="tcp://127.0.0.1:4712", idcode=7).config
    assert (c.name, c.transport, c.host, c.port, c.idcode) == ("bus1", "tcp", "127.0.0.1", 4712, 7)
    assert (c.timeout_s, c.quiet_periods, c.config_frame, c.spontaneous) == (
        2.0,
        10.0,
        "cfg2",
        False,
    )


def test_udp_with_tcp_commands_and_every_option() -> None:
    c = _create(
        url="udp://0.0.0.0:4713",
        idcode=1,
        command_url="tcp://10.0.0.5:4712",
        config_frame="cfg3",
        timeout_s=0.5,
        quiet_periods=3,
        nominal_voltage={"VA": 132_790, "*": 66_400},
        reconnect_max_s=5,
    ).config
    assert (c.transport, c.command_host, c.command_port) == ("udp", "10.0.0.5", 4712)
    assert c.nominal_voltage == {"VA": 132_790.0, "*": 66_400.0}
    assert (c.config_frame, c.timeout_s, c.quiet_periods, c.reconnect_max_s) == ("cfg3", 0.5, 3, 5)
    assert _create(
        url="udp://0.0.0.0:4713", idcode=1, spontaneous=True, nominal_voltage=230e3
    ).config.nominal_voltage == {"*": 230e3}


@pytest.mark.parametrize(
    ("opts", "key"),
    [
        ({"idcode": 1}, "sources.bus1.url"),
        ({"url": "http://x:80", "idcode": 1}, "sources.bus1.url"),
        ({"url": "tcp://host", "idcode": 1}, "sources.bus1.url"),
        ({"url": "tcp://h:1"}, "sources.bus1.idcode"),
        ({"url": "tcp://h:1", "idcode": 70000}, "sources.bus1.idcode"),
        ({"url": "tcp://h:1", "idcode": 1, "command_url": "tcp://h:2"}, "sources.bus1.command_url"),
        ({"url": "tcp://h:1", "idcode": 1, "spontaneous": True}, "sources.bus1.spontaneous"),
        ({"url": "tcp://h:1", "idcode": 1, "config_frame": "cfg1"}, "sources.bus1.config_frame"),
        ({"url": "tcp://h:1", "idcode": 1, "timeout_s": "2"}, "sources.bus1.timeout_s"),
        ({"url": "tcp://h:1", "idcode": 1, "quiet_periods": 0}, "sources.bus1.quiet_periods"),
        (
            {"url": "tcp://h:1", "idcode": 1, "nominal_voltage": {"VA": -1}},
            "sources.bus1.nominal_voltage.VA",
        ),
        ({"url": "tcp://h:1", "idcode": 1, "colour": "red"}, "sources.bus1.colour"),
    ],
)
def test_bad_option_names_its_key(opts: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        _create(**opts)
    assert key in [i.key for i in err.value.issues], str(err.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        _create(url="ftp://h:1", idcode=0, timeout_s=-1)
    assert {i.key for i in err.value.issues} == {
        "sources.bus1.url",
        "sources.bus1.idcode",
        "sources.bus1.timeout_s",
    }
