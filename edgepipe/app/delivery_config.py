"""The delivery parts of the config file: ``[mqtt.regional.<name>]`` and ``[outbox]``.

``[mqtt]`` itself stays the box's own (local) broker, first in the chain; each
``[mqtt.regional.<name>]`` table is one more broker, tried in the order written, with its
own address, TLS, credentials and client id (the same keys as ``[mqtt]``).
"""

from __future__ import annotations

__all__ = ["NamedBroker", "local_table", "outbox_config", "regional_brokers"]

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgepipe.core import ConfigError, ConfigIssue
from edgepipe.core.tables import from_mapping
from edgepipe.delivery import BrokerConfig
from edgepipe.delivery.outbox_config import OutboxConfig

Resolver = Callable[[Mapping[str, Any], Path | None], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class NamedBroker:
    """A regional broker of the failover chain; ``name`` appears in logs and the status."""

    name: str
    broker: BrokerConfig


def local_table(table: Mapping[str, Any]) -> dict[str, Any]:
    """The ``[mqtt]`` keys of the local broker (without the regional sub-tables)."""
    return {k: v for k, v in table.items() if k != "regional"}


def regional_brokers(
    table: Mapping[str, Any], base_dir: Path | None, resolve: Resolver
) -> tuple[NamedBroker, ...]:
    regional = table.get("regional", {})
    if not isinstance(regional, Mapping):
        raise ConfigError(ConfigIssue("mqtt.regional", "expected tables [mqtt.regional.<name>]"))
    issues: list[ConfigIssue] = []
    out = []
    for name, sub in regional.items():
        key = f"mqtt.regional.{name}"
        if not isinstance(sub, Mapping):
            issues.append(ConfigIssue(key, "expected a table"))
            continue
        try:
            out.append(NamedBroker(name, BrokerConfig.from_mapping(resolve(sub, base_dir), key)))
        except ConfigError as exc:
            issues.extend(exc.issues)
    if issues:
        raise ConfigError(issues)
    return tuple(out)


def outbox_config(table: Mapping[str, Any], base_dir: Path | None) -> OutboxConfig:
    """``[outbox]``; a relative ``path`` is relative to the config file."""
    cfg = from_mapping(OutboxConfig, table, "outbox")
    if cfg.path and base_dir is not None and not Path(cfg.path).is_absolute():
        values = {k: v for k, v in table.items() if k != "path"}
        return from_mapping(OutboxConfig, {**values, "path": str(base_dir / cfg.path)}, "outbox")
    return cfg
