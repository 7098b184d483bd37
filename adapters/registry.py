"""Find source adapters by name, so the pipeline never imports a concrete adapter.

Each adapter package registers a factory under its scheme name (``"pmu"``, ...). The
factory takes the adapter's typed config mapping and a ``Clock`` and returns a
``Source``. An adapter whose options name files (device profiles, certificates) also
registers a ``FileResolver``, so the config loader can make relative names relative to
the config file's directory without knowing any adapter's options.
"""

from __future__ import annotations

__all__ = ["FileResolver", "SourceFactory", "available", "create", "register", "resolve_files"]

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edgepipe.core import Clock, ConfigError, Source
from edgepipe.core.files import config_file_path

SourceFactory = Callable[[str, Mapping[str, Any], Clock], Source]
#: (options, fix) -> options with every file name passed through ``fix``
FileResolver = Callable[[Mapping[str, Any], Callable[[str], str]], Mapping[str, Any]]

_FACTORIES: dict[str, SourceFactory] = {}
_FILES: dict[str, FileResolver] = {}
# Built-in adapters, imported lazily the first time their name is asked for.
_BUILTIN: dict[str, str] = {
    "pmu": "adapters.c37118.source",
    "modbus": "adapters.modbus.source",
    "opcua": "adapters.opcua.source",
}


def register(kind: str, factory: SourceFactory, files: FileResolver | None = None) -> None:
    _FACTORIES[kind] = factory
    if files is not None:
        _FILES[kind] = files


def available() -> list[str]:
    return sorted(set(_FACTORIES) | set(_BUILTIN))


def create(kind: str, name: str, options: Mapping[str, Any], clock: Clock) -> Source:
    """Build the source ``name`` of adapter ``kind`` from its config options."""
    _load(kind)
    try:
        factory = _FACTORIES[kind]
    except KeyError:
        raise ConfigError(
            f"unknown source type {kind!r}; known: {', '.join(available())}",
            key=f"sources.{name}.type",
        ) from None
    return factory(name, options, clock)


def resolve_files(kind: str, options: Mapping[str, Any], base_dir: Path) -> Mapping[str, Any]:
    """``options`` with each relative file name the adapter declares made relative to
    ``base_dir`` (the config file's directory); absolute names and other options are
    kept. An unknown ``kind`` is returned as is (``create`` reports it)."""
    _load(kind)
    resolver = _FILES.get(kind)
    if resolver is None:
        return options

    def fix(name: str) -> str:
        return config_file_path(name, base_dir)  # or credential:NAME

    return resolver(options, fix)


def _load(kind: str) -> None:
    if kind not in _FACTORIES and kind in _BUILTIN:
        importlib.import_module(_BUILTIN[kind])
