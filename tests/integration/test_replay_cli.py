"""`edgepipe replay` as a field engineer runs it: where the alerts go, bad arguments."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import tomllib
from pathlib import Path

import pytest

from adapters.capture.importers import import_pcap
from edgepipe.app.capture_commands import add_parsers, import_to_capture
from edgepipe.core import DeliveryError, SystemClock
from edgepipe.delivery import BrokerConfig, MqttPublisher
from edgepipe.delivery.broker import MosquittoBroker
from edgepipe.delivery.subscriber import MessageSubscriber, ReceivedMessage

pytestmark = pytest.mark.integration

PCAP = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "c37118"
    / "C37.118_4in1PMU_TCP.pcap"
)  # fmt: skip


def _replay(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="edgepipe")
    add_parsers(parser.add_subparsers(required=True))
    args = parser.parse_args(["replay", *argv])
    rc: int = args.func(args)
    return rc


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cap = tmp_path_factory.mktemp("replay") / "cap"
    import_to_capture(cap, {"name": "ref"}, lambda s: import_pcap(PCAP, "ref", s))
    return cap


def _config(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "service.toml"
    path.write_text(
        f'site = "live"\n[mqtt]\nport = {port}\nclient_id = "replay-cli"\n'
        f'[outbox]\npath = "{tmp_path / "outbox.sqlite"}"\n'
        '[sources.pmu]\ntype = "pmu"\nurl = "tcp://127.0.0.1:9"\nidcode = 1\n'
    )
    tomllib.loads(path.read_text())  # the test's own TOML is valid
    return path


def test_the_services_config_prints_alerts_and_publishes_nothing(
    capture: Path, tmp_path: Path, mosquitto: MosquittoBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    # docs/capture.md: "use the service's own config to reproduce its alerts". Its [mqtt]
    # is the live site's broker: old alerts published there, retained, would overwrite the
    # live state. Without --mqtt they go to stdout.
    assert _replay(str(capture), "--config", str(_config(tmp_path, mosquitto.port))) == 0
    # (in-process, structlog's default logger writes to stdout too; the CLI's goes to stderr)
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    alerts = [json.loads(line) for line in lines]
    assert alerts and all(a["site"] == "live" for a in alerts)


async def test_mqtt_flag_publishes_beside_the_live_service_not_over_it(
    capture: Path, tmp_path: Path, mosquitto: MosquittoBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    # Review finding: a replay with the service's config took the live publisher's client
    # id (the broker dropped the live one, back and forth), published its old alerts
    # retained on the live alert topics and left "offline" on the live status topic.
    config = str(_config(tmp_path, mosquitto.port))
    live = MqttPublisher(BrokerConfig(port=mosquitto.port, client_id="replay-cli"), "live",
                         SystemClock())  # fmt: skip
    await live.start()
    messages: list[ReceivedMessage] = []
    async with MessageSubscriber(BrokerConfig(port=mosquitto.port), ["#"]) as sub:
        rc = await asyncio.to_thread(_replay, str(capture), "--config", config, "--mqtt")
        with contextlib.suppress(DeliveryError):
            while True:
                messages.append(await sub.receive(timeout_s=1.0))
    assert rc == 0
    assert not [x for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert live.connects == 1 and live.connected  # never knocked off
    await live.close()
    alerts = [m.topic for m in messages if "/alerts/" in m.topic]
    assert alerts and all(t.startswith("edgepipe-replay/live/alerts/") for t in alerts)
    live_status = [json.loads(m.payload)["state"] for m in messages
                   if m.topic == "edgepipe/live/status"]  # fmt: skip
    assert "offline" not in live_status
    replay_status = [json.loads(m.payload) for m in messages
                     if m.topic == "edgepipe-replay/live/status"]  # fmt: skip
    assert replay_status[-1]["state"] == "offline"  # the replay said goodbye on its own topic
    assert replay_status[-1]["client_id"].startswith("replay-cli-replay-")


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--mqtt"], "--mqtt needs a --config with [mqtt]"),
        (["--from", "+5", "--to", "+2"], "is not before --to"),
    ],
)
def test_bad_arguments_are_refused_before_replaying(
    capture: Path, argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _replay(str(capture), *argv) == 2
    captured = capsys.readouterr()
    assert says in captured.err and "{" not in captured.out


@pytest.mark.parametrize("speed", ["0", "-1", "nan"])
def test_speed_must_be_positive(capture: Path, speed: str) -> None:
    with pytest.raises(SystemExit) as exc:
        _replay(str(capture), "--speed", speed)
    assert exc.value.code == 2


def test_an_empty_range_is_said(capture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _replay(str(capture), "--from", "+3600", "--to", "+3601") == 0
    assert "no rows replayed" in capsys.readouterr().err


def test_a_cut_segment_is_said(
    capture: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = tmp_path / "cut"
    shutil.copytree(capture, cut)
    segment = max(cut.rglob("*.arrows"), key=lambda f: f.stat().st_size)
    segment.write_bytes(segment.read_bytes()[: segment.stat().st_size * 2 // 3])
    assert _replay(str(cut)) == 0
    assert "cut short" in capsys.readouterr().err
