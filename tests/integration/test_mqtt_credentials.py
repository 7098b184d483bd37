"""Username/password from a file or a systemd credential; the password is never logged."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from edgepipe.core import ConfigError, DeliveryError, SystemClock
from edgepipe.delivery import BrokerConfig, MosquittoBroker, MqttPublisher

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-Pa55word"


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "edge", PASSWORD], check=True,
                   capture_output=True)  # fmt: skip
    extra = ("allow_anonymous false", f"password_file {pw}")
    with MosquittoBroker(extra_config=extra) as broker:
        yield broker


async def test_password_from_a_systemd_credential_connects_and_is_never_logged(
    auth_broker: MosquittoBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "mqtt-local").write_text(PASSWORD + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    cfg = BrokerConfig(port=auth_broker.port, username="edge", password_credential="mqtt-local")
    with structlog.testing.capture_logs() as logs:
        async with MqttPublisher(cfg, "auth", SystemClock()) as pub:
            await pub.publish_status("online")
    assert PASSWORD not in repr(logs) and PASSWORD not in repr(cfg)


async def test_a_wrong_password_file_is_refused_with_a_clear_error(
    auth_broker: MosquittoBroker, tmp_path: Path
) -> None:
    (tmp_path / "pw").write_text("wrong\n")
    cfg = BrokerConfig(port=auth_broker.port, username="edge", password_file=str(tmp_path / "pw"))
    with structlog.testing.capture_logs() as logs:
        with pytest.raises(DeliveryError, match="refused the connection: Not authorized") as err:
            await MqttPublisher(cfg, "auth", SystemClock()).start()
        await asyncio.sleep(0.2)  # the broker's close after the refusal
    assert "wrong" not in str(err.value)
    # one warning, the refusal: the close that follows it is not a second problem
    warnings = [e["event"] for e in logs if e["log_level"] == "warning"]
    assert warnings == ["mqtt.connect_refused"], warnings


def test_a_missing_credential_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(ConfigError, match="password_credential: no credential 'nope'"):
        BrokerConfig(username="edge", password_credential="nope")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    with pytest.raises(ConfigError, match="CREDENTIALS_DIRECTORY is unset"):
        BrokerConfig(username="edge", password_credential="nope")
