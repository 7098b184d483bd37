"""The OPC-UA source against real asyncua servers (the project's simulator) on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from asyncua import ua

from adapters.c37118.testing import RecordingSink
from adapters.opcua.client import OpcuaSource
from adapters.opcua.config import OpcuaConfig, parse_options
from adapters.opcua.security import ensure_certificate
from adapters.opcua.simulator import NAMESPACE, OpcuaSimulator
from edgepipe.core import ConfigError, Quality, StatusKind, SystemClock
from edgepipe.delivery.broker import free_port

pytestmark = pytest.mark.integration

NAMES = ("H2", "CH4", "C2H2")


def _values(t: float) -> Mapping[str, float]:
    return {"H2": 20.0 + t, "CH4": 10.0, "C2H2": 0.5}


def _config(port: int, **kw: object) -> OpcuaConfig:
    cfg = parse_options("dga", {
        "url": f"opc.tcp://127.0.0.1:{port}/", "kind": "dga", "asset": "T1",
        "publishing_interval_ms": 100, "sampling_interval_ms": 50, "reconnect_min_s": 0.2,
        "reconnect_max_s": 0.5,
        "nodes": {"h2": "/Objects/2:DGA/2:H2", "ch4": "/Objects/2:DGA/2:CH4",
                  "c2h2": "ns=2;i=4"},
    })  # fmt: skip
    return replace(cfg, **kw)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(source: OpcuaSource, sink: RecordingSink) -> AsyncIterator[None]:
    task = asyncio.create_task(source.run(sink))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def served(
    nodes: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
    **sim_options: Any,
) -> AsyncIterator[tuple[OpcuaSimulator, OpcuaSource, RecordingSink]]:
    """A simulator on a free port and a source of ``_config`` (with ``nodes`` in place of
    its own) subscribed to it; ``extra`` variables (name: text value) are added to the
    server's Objects folder before the source starts."""
    port = free_port()
    sink = RecordingSink()
    cfg = _config(port) if nodes is None else replace(_config(port), nodes=tuple(nodes.items()))
    source = OpcuaSource(cfg, SystemClock(), watchdog_s=0.3)
    sim = OpcuaSimulator(NAMES, _values, port=port, period_s=0.1, **sim_options)
    await sim.start()
    assert sim._server is not None
    for name, text in (extra or {}).items():
        await sim._server.nodes.objects.add_variable(2, name, text)
    try:
        async with running(source, sink):
            yield sim, source, sink
    finally:
        await sim.stop()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")

    async def make() -> dict[str, Path]:
        srv, srv_key = await ensure_certificate(d, "server", "urn:edgepipe:sim", server=True)
        cli, cli_key = await ensure_certificate(d, "client", "urn:edgepipe:client", server=False)
        other, _ = await ensure_certificate(d / "other", "other", "urn:other", server=True)
        trusted = d / "trusted"
        trusted.mkdir()
        shutil.copy(srv, trusted / "server.der")
        wrong = d / "wrong"
        wrong.mkdir()
        shutil.copy(other, wrong / "other.der")
        return {"server": srv, "server_key": srv_key, "client": cli, "client_key": cli_key,
                "trusted": trusted, "wrong": wrong}  # fmt: skip

    return asyncio.run(make())


async def test_subscription_delivers_device_timed_rows_and_follows_a_restart() -> None:
    port = free_port()
    sink = RecordingSink()
    source = OpcuaSource(_config(port), SystemClock(), watchdog_s=0.3)
    sim = OpcuaSimulator(NAMES, _values, port=port, period_s=0.1)
    await sim.start()
    async with running(source, sink):
        await sink.wait_for(lambda: sink.rows("dga") >= 5, within_s=10)
        row = sink.batches[-1]
        assert row.device_time and int(row.quality[0]) == int(Quality.GOOD)
        assert row.values[0, 1] == 10.0 and row.values[0, 2] == 0.5 and row.values[0, 0] > 20
        assert np.all(np.diff(sink.times("dga")) > 0)
        await sim.stop()
        await sink.wait_for(lambda: StatusKind.DISCONNECTED in sink.kinds(), within_s=5)
        sim = OpcuaSimulator(NAMES, _values, port=port, period_s=0.1)
        await sim.start()
        before = sink.rows("dga")
        await sink.wait_for(lambda: sink.rows("dga") > before + 2, within_s=10)
        await sim.stop()
    assert source.stats.sessions >= 2 and source.stats.lost >= 1


@pytest.mark.parametrize(
    ("policy", "mode", "user"),
    [
        ("Basic256Sha256", "SignAndEncrypt", ""),
        ("Aes128Sha256RsaOaep", "SignAndEncrypt", ""),
        ("Aes256Sha256RsaPss", "SignAndEncrypt", ""),
        ("Aes128Sha256RsaOaep", "Sign", "operator"),
        ("Aes256Sha256RsaPss", "Sign", "operator"),
    ],
    ids=lambda v: v or "anonymous",
)
async def test_secure_session_with_a_trusted_server(
    certs: dict[str, Path], policy: str, mode: str, user: str
) -> None:
    port = free_port()
    sink = RecordingSink()
    cfg = _config(port, security=mode, policy=policy, username=user, password="s3cret",
                  certificate=str(certs["client"]), private_key=str(certs["client_key"]),
                  trust_dir=str(certs["trusted"]))  # fmt: skip
    source = OpcuaSource(cfg, SystemClock())
    sim = OpcuaSimulator(NAMES, _values, port=port, period_s=0.1, allow_none=False,
                         policies=[(policy, mode)], username=user, password="s3cret",
                         certificate=certs["server"], private_key=certs["server_key"])  # fmt: skip
    async with sim, running(source, sink):
        await sink.wait_for(lambda: sink.rows("dga") >= 3, within_s=10)
    assert source.stats.untrusted == 0


async def test_an_untrusted_server_is_refused(certs: dict[str, Path]) -> None:
    port = free_port()
    sink = RecordingSink()
    cfg = _config(port, security="SignAndEncrypt", certificate=str(certs["client"]),
                  private_key=str(certs["client_key"]), trust_dir=str(certs["wrong"]))  # fmt: skip
    source = OpcuaSource(cfg, SystemClock())
    sim = OpcuaSimulator(NAMES, _values, port=port, period_s=0.1,
                         policies=[("Basic256Sha256", "SignAndEncrypt")],
                         certificate=certs["server"], private_key=certs["server_key"])  # fmt: skip
    async with sim, running(source, sink):
        await sink.wait_for(lambda: source.stats.untrusted >= 1, within_s=10)
        await asyncio.sleep(0.3)
    assert sink.rows("dga") == 0
    detail = next(s.detail for s in sink.statuses if s.kind is StatusKind.DISCONNECTED)
    assert "untrusted server certificate" in detail and "trust_server" in detail


def test_options_errors_name_their_keys() -> None:
    with pytest.raises(ConfigError) as err:
        parse_options("x", {"url": "http://a", "security": "Sign", "policy": "Basic128",
                            "nodes": {"a": "nonsense"}, "bogus": 1})  # fmt: skip
    keys = {i.key for i in err.value.issues}
    assert {"sources.x.url", "sources.x.policy", "sources.x.certificate",
            "sources.x.private_key", "sources.x.nodes.a", "sources.x.bogus"} <= keys  # fmt: skip


async def test_a_wrong_password_is_refused(certs: dict[str, Path]) -> None:
    port = free_port()
    sink = RecordingSink()
    cfg = _config(port, security="SignAndEncrypt", username="operator", password="wrong",
                  certificate=str(certs["client"]), private_key=str(certs["client_key"]),
                  trust_dir=str(certs["trusted"]))  # fmt: skip
    source = OpcuaSource(cfg, SystemClock())
    sim = OpcuaSimulator(NAMES, _values, port=port, period_s=0.1, allow_none=False,
                         policies=[("Basic256Sha256", "SignAndEncrypt")], username="operator",
                         password="s3cret", certificate=certs["server"],
                         private_key=certs["server_key"])  # fmt: skip
    async with sim, running(source, sink):
        await sink.wait_for(lambda: StatusKind.DISCONNECTED in sink.kinds(), within_s=10)
    assert sink.rows("dga") == 0 and source.stats.sessions == 0


@pytest.mark.parametrize("path", ["/Objects", "/", "i=85"])
async def test_probe_lists_the_objects_folder_by_its_default_path(path: str) -> None:
    # `edgepipe probe opcua URL` browses /Objects by default; an empty relative path made
    # the server answer BadInternalError, even the project's own simulator.
    from edgepipe.app.opcua_commands import probe

    port = free_port()
    sim = OpcuaSimulator(NAMES, _values, port=port, period_s=0.1)
    await sim.start()
    try:
        out = io.StringIO()
        assert await probe(_config(port), path, False, out) == 0
    finally:
        await sim.stop()
    assert "DGA" in out.getvalue()


async def test_a_subscription_the_server_drops_is_made_again() -> None:
    # The server deletes the subscription (e.g. its lifetime ran out while the link was
    # congested): no data, no keep-alive, no word. Data must flow again (asyncua recreates
    # the subscription once a keep-alive is missed; a subscription silent for two
    # keep-alives ends the session), not sit CONNECTED with a frozen row count.
    async with served() as (sim, _, sink):
        await sink.wait_for(lambda: sink.rows("dga") >= 3, within_s=10)
        assert sim._server is not None
        service = sim._server.iserver.subscription_service
        await service.delete_subscriptions(list(service.subscriptions))
        before = sink.rows("dga")
        await sink.wait_for(lambda: sink.rows("dga") > before + 3, within_s=15)


async def test_an_unknown_node_costs_its_channel_not_the_source() -> None:
    # A typo in one NodeId, or a point removed from the server, stopped every channel
    # ("cannot monitor ...", retried forever). Now: NaN and DEVICE_ERROR for it alone.
    nodes = {"h2": "/Objects/2:DGA/2:H2", "gone": "ns=2;s=NoSuchNode",
             "typo": "/Objects/2:DGA/2:C2H4X", "ch4": "/Objects/2:DGA/2:CH4"}  # fmt: skip
    async with served(nodes) as (_, source, sink):
        await sink.wait_for(lambda: sink.rows("dga") >= 5, within_s=10)
    row = sink.batches[-1]
    h2, gone, typo, ch4 = row.values[0]
    assert h2 > 20 and ch4 == 10.0 and np.isnan(gone) and np.isnan(typo)
    assert int(row.quality[0]) & Quality.DEVICE_ERROR and source.stats.sessions == 1


async def test_a_node_by_namespace_uri_is_found_when_the_index_moves() -> None:
    # A namespace index is the server's to assign: one that loads another information
    # model first moves ours from 2 to 3. "nsu=" was parsed by asyncua with index 0 and
    # never found; it is now looked up in the NamespaceArray on every session.
    port = free_port()
    sink = RecordingSink()
    sim = OpcuaSimulator(NAMES, _values, port=port, period_s=0.1)
    await sim.start()
    h2_id = sim._vars["H2"].nodeid.Identifier  # numeric, given by the server
    await sim.stop()
    cfg = parse_options("dga", {
        "url": f"opc.tcp://127.0.0.1:{port}/", "kind": "dga", "asset": "T1",
        "publishing_interval_ms": 100, "sampling_interval_ms": 50, "reconnect_min_s": 0.2,
        "reconnect_max_s": 0.5,
        "nodes": {"h2": f"nsu={NAMESPACE};i={h2_id}", "old_index": f"ns=2;i={h2_id}",
                  "unknown_uri": "nsu=urn:nobody:here;i=1", "ch4": "/Objects/3:DGA/3:CH4"},
    })  # fmt: skip
    source = OpcuaSource(cfg, SystemClock(), watchdog_s=0.3)
    moved = OpcuaSimulator(NAMES, _values, port=port, period_s=0.1,
                           other_namespaces=("urn:vendor:model",))  # fmt: skip
    await moved.start()
    try:
        assert moved._vars["H2"].nodeid == ua.NodeId(h2_id, 3)
        async with running(source, sink):
            await sink.wait_for(lambda: sink.rows("dga") >= 5, within_s=10)
    finally:
        await moved.stop()
    h2, old_index, unknown_uri, ch4 = sink.batches[-1].values[0]
    assert h2 > 20 and ch4 == 10.0
    assert np.isnan(old_index) and np.isnan(unknown_uri)


async def test_a_steady_value_the_server_does_not_restamp_is_not_stale() -> None:
    # A server may report changes only (OPC 10000-4 7.22.2): CH4 and C2H2 hold their
    # value and are never sent again. Every row was flagged STALE after five publishing
    # intervals; now a channel is stale by its own silence only once the server has
    # shown that it re-stamps it.
    async with served(restamp=False) as (_, _, sink):
        await sink.wait_for(lambda: sink.rows("dga") >= 15, within_s=15)
    late = [int(q) for b in sink.batches[-5:] for q in b.quality]
    assert not any(q & Quality.STALE for q in late), late
    assert sink.batches[-1].values[0, 1] == 10.0


async def test_a_channel_that_falls_silent_is_stale() -> None:
    async with served() as (sim, source, sink):
        await sink.wait_for(lambda: sink.rows("dga") >= 8, within_s=10)
        fresh = [int(b.quality[0]) for b in sink.batches[-3:]]
        sim.frozen.add("CH4")  # re-stamped until now: its silence is news
        seen = sink.rows("dga")
        await sink.wait_for(lambda: sink.rows("dga") >= seen + 10, within_s=10)
    assert not any(q & Quality.STALE for q in fresh), fresh
    assert int(sink.batches[-1].quality[0]) & Quality.STALE and source.stats.stale_rows > 0


async def test_a_node_that_holds_text_reads_nan_with_device_error() -> None:
    # A channel pointed at a string node (a name plate, a state text) was NaN with GOOD
    # quality, as if the device had sent a NaN: now it says why, once, and flags the row.
    nodes = {"h2": "/Objects/2:DGA/2:H2", "label": "/Objects/2:Label",
             "numeric_text": "/Objects/2:Setpoint"}  # fmt: skip
    extra = {"Label": "Buchholz relay, tank 1", "Setpoint": "12.5"}
    async with served(nodes, extra) as (_, source, sink):
        await sink.wait_for(lambda: sink.rows("dga") >= 5, within_s=10)
    h2, label, numeric_text = sink.batches[-1].values[0]
    assert h2 > 20 and np.isnan(label) and numeric_text == 12.5
    assert int(sink.batches[-1].quality[0]) & Quality.DEVICE_ERROR
    assert source.stats.not_numbers >= 1 and source.stats.bad_status == 0


def test_a_malformed_node_id_is_refused_naming_its_key() -> None:
    with pytest.raises(ConfigError, match=r"nodes\.h2.*nsu=urn:x"):
        parse_options("dga", {"url": "opc.tcp://127.0.0.1:4840/", "kind": "dga",
                              "nodes": {"h2": "nsu=urn:x", "ch4": "ns=2;i=4"}})  # fmt: skip


async def test_a_refused_deadband_filter_falls_back_to_no_filter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A server may refuse deadband filters (BadFilterNotAllowed, OPC 10000-4 7.22.2); the
    # source applies the deadband itself, so the items go on without a filter.
    from asyncua.server import monitored_item_service as mis

    original = mis.MonitoredItemService._create_data_change_monitored_item

    async def refuse(self: Any, item: Any) -> Any:
        if getattr(item.RequestedParameters.Filter, "DeadbandType", 0):
            result = ua.MonitoredItemCreateResult()
            result.StatusCode = ua.StatusCode(ua.StatusCodes.BadFilterNotAllowed)
            return result
        return await original(self, item)

    monkeypatch.setattr(mis.MonitoredItemService, "_create_data_change_monitored_item", refuse)
    port = free_port()
    sink = RecordingSink()
    source = OpcuaSource(_config(port, deadband=0.5), SystemClock(), watchdog_s=0.3)
    sim = OpcuaSimulator(NAMES, _values, port=port, period_s=0.1)
    await sim.start()
    try:
        async with running(source, sink):
            await sink.wait_for(lambda: sink.rows("dga") >= 3, within_s=10)
    finally:
        await sim.stop()
    assert source.stats.sessions == 1
    assert np.isfinite(sink.batches[-1].values).all()


async def test_a_channel_stamped_in_the_future_does_not_pin_the_row_time() -> None:
    # One channel written once with a SourceTimestamp of 2099 stamped every later row
    # 2099 (the row took the newest timestamp of all channels, changed or not).
    port = free_port()
    sink = RecordingSink()
    source = OpcuaSource(_config(port), SystemClock(), watchdog_s=0.3)
    sim = OpcuaSimulator(NAMES, _values, port=port, period_s=0.1)
    await sim.start()
    assert sim._task is not None
    sim._task.cancel()  # the test writes the values itself

    async def write(name: str, value: float, stamp: datetime) -> None:
        dv = ua.DataValue(ua.Variant(value, ua.VariantType.Double),
                          SourceTimestamp=stamp, ServerTimestamp=stamp)  # fmt: skip
        await sim._vars[name].write_value(dv)

    try:
        async with running(source, sink):
            await sink.wait_for(lambda: sink.rows("dga") >= 1, within_s=10)
            await write("C2H2", 0.7, datetime(2099, 1, 1, tzinfo=UTC))
            for k in range(6):
                await write("H2", 30.0 + k, datetime.now(UTC))
                await asyncio.sleep(0.2)
    finally:
        await sim.stop()
    times = [int(b.times_ns[0]) for b in sink.batches]
    assert abs(times[-1] - time.time_ns()) < 30 * 1_000_000_000
    assert times == sorted(times)
