"""The mosquitto harness itself: tests and the demo rely on it starting, stopping, answering."""

from __future__ import annotations

import json
import socket
import threading

import psutil
import pytest

from edgepipe.core import SystemClock
from edgepipe.delivery import BrokerConfig, MessageSubscriber, MosquittoBroker, MqttPublisher
from edgepipe.delivery.broker import broker_answers, free_port

pytestmark = pytest.mark.integration


def test_broker_answers_only_when_an_mqtt_broker_listens(mosquitto: MosquittoBroker) -> None:
    assert broker_answers("127.0.0.1", mosquitto.port, timeout=1.0)
    assert not broker_answers("127.0.0.1", free_port(), timeout=0.5)


def test_a_non_mqtt_listener_is_not_a_broker() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def reply_http() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(64)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        t = threading.Thread(target=reply_http, daemon=True)
        t.start()
        assert not broker_answers("127.0.0.1", server.getsockname()[1], timeout=1.0)
        t.join(2)


def test_stop_ends_the_process_and_frees_the_port(mosquitto: MosquittoBroker) -> None:
    pid = mosquitto.pid
    assert pid is not None and psutil.pid_exists(pid)
    mosquitto.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not broker_answers("127.0.0.1", mosquitto.port, timeout=0.5)
    mosquitto.start()  # same port again
    assert broker_answers("127.0.0.1", mosquitto.port, timeout=1.0)


async def test_restart_keeps_retained_state_with_persistence(mosquitto: MosquittoBroker) -> None:
    cfg = BrokerConfig(port=mosquitto.port, ack_timeout_s=2.0)
    async with MqttPublisher(cfg, "persist", SystemClock()) as pub:
        await pub.publish_status("degraded", {"outbox": 3})
    mosquitto.restart()
    async with MessageSubscriber(cfg, ["edgepipe/persist/status"]) as sub:
        body = json.loads((await sub.receive(2.0)).payload)
    # close() published "offline" after "degraded": the latest retained state survives.
    assert body["state"] == "offline"


def test_context_manager_cleans_up() -> None:
    with MosquittoBroker() as broker:
        pid, conf = broker.pid, broker.config_path
        assert conf.exists()
    assert pid is not None and not psutil.pid_exists(pid)
    assert not conf.exists()
