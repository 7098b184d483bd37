"""TLS to the broker: a publisher that trusts the broker's CA connects; others are refused."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from edgepipe.core import DeliveryError, SystemClock
from edgepipe.delivery import (
    BrokerConfig,
    BrokerTls,
    MessageSubscriber,
    MosquittoBroker,
    MqttPublisher,
    TlsConfig,
)

pytestmark = pytest.mark.integration

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(d: Path, name: str) -> None:
    _openssl("req", "-x509", *EC, "-keyout", f"{name}.key", "-out", f"{name}.pem",
             "-days", "1", "-subj", f"/CN={name}", cwd=d)  # fmt: skip


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[MosquittoBroker, Path]]:
    _ca(tmp_path, "ca")
    _ca(tmp_path, "other-ca")
    _openssl("req", *EC, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=tmp_path)  # fmt: skip
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "1",
             "-extfile", "san.ext", cwd=tmp_path)  # fmt: skip
    tls = BrokerTls(cert_file=str(tmp_path / "server.pem"), key_file=str(tmp_path / "server.key"))
    with MosquittoBroker(tls=tls) as broker:
        yield broker, tmp_path


async def test_publisher_over_tls_reaches_a_plain_subscriber(
    tls_broker: tuple[MosquittoBroker, Path],
) -> None:
    broker, certs = tls_broker
    tls_cfg = BrokerConfig(port=broker.tls_port, tls=TlsConfig(ca_file=str(certs / "ca.pem")))
    async with (
        MessageSubscriber(BrokerConfig(port=broker.port), ["edgepipe/tls/status"]) as sub,
        MqttPublisher(tls_cfg, "tls", SystemClock()) as pub,
    ):
        await pub.publish_status("online", {"via": "tls"})
        states = [json.loads((await sub.receive(2.0)).payload) for _ in range(2)]
    assert states[-1]["detail"] == {"via": "tls"}


async def test_untrusted_broker_certificate_is_refused(
    tls_broker: tuple[MosquittoBroker, Path],
) -> None:
    broker, certs = tls_broker
    cfg = BrokerConfig(port=broker.tls_port, tls=TlsConfig(ca_file=str(certs / "other-ca.pem")))
    with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        await MqttPublisher(cfg, "tls", SystemClock()).start()


@pytest.fixture
def mutual_tls_broker(tmp_path: Path) -> Iterator[tuple[MosquittoBroker, Path]]:
    """A broker that also requires a client certificate signed by ``ca``."""
    _ca(tmp_path, "ca")
    for name, cn in (("server", "127.0.0.1"), ("client", "edgepipe-box")):
        _openssl("req", *EC, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={cn}", cwd=tmp_path)  # fmt: skip
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, ext in (("server", ["-extfile", "san.ext"]), ("client", [])):
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.pem", "-days", "1", *ext,
                 cwd=tmp_path)  # fmt: skip
    tls = BrokerTls(
        cert_file=str(tmp_path / "server.pem"),
        key_file=str(tmp_path / "server.key"),
        ca_file=str(tmp_path / "ca.pem"),
    )
    with MosquittoBroker(tls=tls) as broker:
        yield broker, tmp_path


async def test_client_certificate_is_presented_when_the_broker_requires_one(
    mutual_tls_broker: tuple[MosquittoBroker, Path],
) -> None:
    broker, certs = mutual_tls_broker
    ca = str(certs / "ca.pem")
    with_cert = TlsConfig(ca_file=ca, cert_file=str(certs / "client.pem"),
                          key_file=str(certs / "client.key"))  # fmt: skip
    async with MqttPublisher(
        BrokerConfig(port=broker.tls_port, tls=with_cert), "tls", SystemClock()
    ) as pub:
        await pub.publish_status("online", {"via": "mutual tls"})
    without = BrokerConfig(port=broker.tls_port, tls=TlsConfig(ca_file=ca), connect_timeout_s=2.0)
    with pytest.raises(DeliveryError):
        await MqttPublisher(without, "tls", SystemClock()).start()


async def test_a_broker_back_with_an_untrusted_certificate_is_reported(
    tls_broker: tuple[MosquittoBroker, Path],
) -> None:
    # Review finding: the broker restarted with a certificate from another CA, and paho's
    # own reconnect kept the verification error to itself: one "Unspecified error", then
    # nothing. Each failed reconnect is now counted and logged with its error.
    broker, certs = tls_broker
    _openssl("req", *EC, "-keyout", "rogue.key", "-out", "rogue.csr",
             "-subj", "/CN=127.0.0.1", cwd=certs)  # fmt: skip
    _openssl("x509", "-req", "-in", "rogue.csr", "-CA", "other-ca.pem", "-CAkey",
             "other-ca.key", "-CAcreateserial", "-out", "rogue.pem", "-days", "1",
             "-extfile", "san.ext", cwd=certs)  # fmt: skip
    tls_cfg = BrokerConfig(port=broker.tls_port, tls=TlsConfig(ca_file=str(certs / "ca.pem")),
                           reconnect_min_s=0.1, reconnect_max_s=0.2)  # fmt: skip
    async with MqttPublisher(tls_cfg, "tls", SystemClock()) as pub:
        with structlog.testing.capture_logs() as logs:
            broker.tls = BrokerTls(cert_file=str(certs / "rogue.pem"),
                                   key_file=str(certs / "rogue.key"))  # fmt: skip
            broker.restart()
            deadline = time.monotonic() + 10
            while pub.reconnect_failures < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        assert pub.reconnect_failures >= 3 and not pub.connected
    failed = [e for e in logs if e["event"] == "mqtt.reconnect_failed"]
    assert failed and "CERTIFICATE_VERIFY_FAILED" in failed[0]["error"]
    assert len(failed) == 1  # not one line per try: the next after 30 s


async def test_a_plain_connection_to_a_tls_port_names_the_likely_cause(
    tls_broker: tuple[MosquittoBroker, Path],
) -> None:
    broker, _ = tls_broker
    cfg = BrokerConfig(port=broker.tls_port, connect_timeout_s=1.0)
    with pytest.raises(DeliveryError, match=r"if that port expects TLS, set \[mqtt.tls\]"):
        await MqttPublisher(cfg, "tls", SystemClock()).start()
