"""An OPC-UA device simulator on an asyncua server: variables updated from a callable.

Variables live under ``Objects/<folder>`` in the namespace ``urn:edgepipe:sim``
(index 2), one Double per name, each written with a SourceTimestamp every ``period_s``
from ``values(t_s)``; a name in ``eu_range`` also gets the ``EURange`` property of an
analog item (OPC 10000-8 clause 5.3.2.2), which a percent deadband needs. The physics
lives outside: the app wires in the DGA plant of ``edgepipe.pipeline.health``.
Security: any of the ``SERVER_POLICY`` endpoints (and None), a server certificate
(generated when not given), and optional username/password.
"""

from __future__ import annotations

__all__ = ["OpcuaSimulator"]

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.server import Server

from adapters.opcua.security import SERVER_POLICY

NAMESPACE = "urn:edgepipe:sim:devices"
SERVER_URI = "urn:edgepipe:sim"

logging.getLogger("asyncua").setLevel(logging.ERROR)


class _Users:
    """Username/password check (OPC 10000-4 clause 7.41.3), or anyone when unset."""

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password

    def get_user(self, _iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:  # fmt: skip
        if not self.username or (username == self.username and password == self.password):
            return User(role=UserRole.User)
        return None


class OpcuaSimulator:
    """Serves ``names`` under ``Objects/<folder>`` on ``opc.tcp://host:port``."""

    def __init__(
        self,
        names: Sequence[str],
        values: Callable[[float], Mapping[str, float]],
        *,
        host: str = "127.0.0.1",
        port: int = 4840,
        folder: str = "DGA",
        period_s: float = 1.0,
        policies: Sequence[tuple[str, str]] = (),
        certificate: Path | None = None,
        private_key: Path | None = None,
        allow_none: bool = True,
        username: str = "",
        password: str = "",
        eu_range: Mapping[str, tuple[float, float]] | None = None,
        other_namespaces: Sequence[str] = (),
        restamp: bool = True,
    ) -> None:
        self.names = tuple(names)
        self.values = values
        self.url = f"opc.tcp://{host}:{port}/"
        self.folder = folder
        self.period_s = period_s
        self.policies = tuple(policies)
        self.certificate, self.private_key = certificate, private_key
        self.allow_none = allow_none
        self.users = _Users(username, password)
        self.eu_range = dict(eu_range or {})
        # registered ahead of ours: its index moves as a real server's does when it loads
        # another information model first
        self.other_namespaces = tuple(other_namespaces)
        # restamp: every value is written each period with a new SourceTimestamp, changed
        # or not; without, only changes are (servers differ: OPC 10000-4 7.22.2)
        self.restamp = restamp
        self.frozen: set[str] = set()  # names no longer written: a point gone quiet
        self._last: dict[str, float] = {}
        self.updates = 0
        self._server: Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._vars: dict[str, Any] = {}
        self._t0 = time.monotonic()

    async def start(self) -> None:
        server = Server(user_manager=self.users)  # type: ignore[arg-type]
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name("edgepipe simulator")
        await server.set_application_uri(SERVER_URI)
        kinds = [ua.SecurityPolicyType.NoSecurity] if self.allow_none else []
        kinds += [SERVER_POLICY[p] for p in self.policies]
        server.set_security_policy(kinds)
        if self.certificate and self.private_key:
            await server.load_certificate(str(self.certificate))
            await server.load_private_key(str(self.private_key))
        for uri in self.other_namespaces:
            await server.register_namespace(uri)
        ns = await server.register_namespace(NAMESPACE)
        folder = await server.nodes.objects.add_folder(ns, self.folder)
        first = self.values(0.0)
        for name in self.names:
            self._last[name] = float(first.get(name, 0.0))
            node = await folder.add_variable(ns, name, self._last[name])
            if name in self.eu_range:
                low, high = self.eu_range[name]
                eu = ua.Range(Low=float(low), High=float(high))
                eu_id = ua.NodeId.from_string(f"ns={ns};s={self.folder}.{name}.EURange")
                await node.add_property(eu_id, ua.QualifiedName("EURange", 0), eu)
            self._vars[name] = node
        await server.start()
        self._server = server
        self._task = asyncio.create_task(self._update())

    async def _update(self) -> None:
        while True:
            await asyncio.sleep(self.period_s)
            now = self.values(time.monotonic() - self._t0)
            stamp = ua.DateTime.now(dt.UTC)  # asyncua's datetime subclass
            for name, node in self._vars.items():
                value = float(now.get(name, 0.0))
                if name in self.frozen or (not self.restamp and self._last.get(name) == value):
                    continue
                self._last[name] = value
                dv = ua.DataValue(ua.Variant(value, ua.VariantType.Double),
                                  SourceTimestamp=stamp, ServerTimestamp=stamp)  # fmt: skip
                await node.write_value(dv)
            self.updates += 1

    def monitored_filters(self) -> list[Any]:
        """The filters of the monitored items clients created, as the server holds them
        (the CreateMonitoredItems requests' ``RequestedParameters.Filter``)."""
        if self._server is None:
            return []
        subs = self._server.iserver.subscription_service.subscriptions.values()
        return [m.filter for s in subs for m in s.monitored_item_srv._monitored_items.values()]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.stop()
        self._server = None
        self._task = None

    async def __aenter__(self) -> OpcuaSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
