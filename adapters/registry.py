"""Find source adapters by name, so the pipeline never imports a concrete adapter.

Each adapter package registers a factory under its scheme name (``"pmu"``, ...). The
factory takes the adapter's typed config mapping and a ``Clock`` and returns a
``Source``.
"""

from __future__ import annotations

__all__ = ["SourceFactory", "available", "create", "register"]

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from edgepipe.core import Clock, ConfigError, Source

SourceFactory = Callable[[str, Mapping[str, Any], Clock], Source]

_FACTORIES: dict[str, SourceFactory] = {}
# Built-in adapters, imported lazily the first time their name is asked for.
_BUILTIN: dict[str, str] = {
    "pmu": "adapters.c37118.source",
    "modbus": "adapters.modbus.source",
    "opcua": "adapters.opcua.source",
}


def register(kind: str, factory: SourceFactory) -> None:
    _FACTORIES[kind] = factory


def available() -> list[str]:
    return sorted(set(_FACTORIES) | set(_BUILTIN))


def create(kind: str, name: str, options: Mapping[str, Any], clock: Clock) -> Source:
    """Build the source ``name`` of adapter ``kind`` from its config options."""
    if kind not in _FACTORIES and kind in _BUILTIN:
        importlib.import_module(_BUILTIN[kind])
    try:
        factory = _FACTORIES[kind]
    except KeyError:
        raise ConfigError(
            f"unknown source type {kind!r}; known: {', '.join(available())}",
            key=f"sources.{name}.type",
        ) from None
    return factory(name, options, clock)
