from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgepipe.core import ConfigError
from edgepipe.delivery.mqtt import BrokerConfig, TlsConfig


def _keys(exc: pytest.ExceptionInfo[ConfigError]) -> set[str]:
    return {i.key for i in exc.value.issues}


def test_defaults_are_valid() -> None:
    cfg = BrokerConfig()
    assert (cfg.host, cfg.port, cfg.tls) == ("127.0.0.1", 1883, None)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"port": True}, "port"),
        ({"host": ""}, "host"),
        ({"keepalive": 0}, "keepalive"),
        ({"ack_timeout_s": 0}, "ack_timeout_s"),
        ({"connect_timeout_s": float("nan")}, "connect_timeout_s"),
        ({"reconnect_min_s": 5.0, "reconnect_max_s": 1.0}, "reconnect_max_s"),
        ({"client_id": "a\x00b"}, "client_id"),
        ({"username": "u", "password_file": "/nonexistent/pw"}, "password_file"),
        ({"tls": TlsConfig(ca_file="/nonexistent/ca.pem")}, "tls.ca_file"),
    ],
    ids=lambda v: str(v) if isinstance(v, str) else None,
)
def test_bad_value_names_its_key(kwargs: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        BrokerConfig(**kwargs)
    assert key in _keys(exc)
    assert key in str(exc.value)


def test_password_file_needs_username(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    with pytest.raises(ConfigError) as exc:
        BrokerConfig(password_file=str(pw))
    assert _keys(exc) == {"password_file"}
    assert BrokerConfig(username="u", password_file=str(pw)).password_file == str(pw)


def test_cert_without_key_is_refused(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError) as exc:
        BrokerConfig(tls=TlsConfig(cert_file=str(cert)))
    assert "tls.key_file" in _keys(exc)


def test_from_mapping_reports_every_issue_with_its_dotted_key() -> None:
    with pytest.raises(ConfigError) as exc:
        BrokerConfig.from_mapping(
            {"port": -1, "keepalive": "x", "colour": "red", "tls": {"insecure": "yes", "x": 1}},
            key="delivery.mqtt",
        )
    assert _keys(exc) == {
        "delivery.mqtt.port",
        "delivery.mqtt.keepalive",
        "delivery.mqtt.colour",
        "delivery.mqtt.tls.insecure",
        "delivery.mqtt.tls.x",
    }


def test_from_mapping_builds_a_config() -> None:
    cfg = BrokerConfig.from_mapping({"host": "localhost", "port": 8883, "tls": {}})
    assert cfg == BrokerConfig(host="localhost", port=8883, tls=TlsConfig())
