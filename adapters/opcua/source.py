"""Registers the ``"opcua"`` source: config options (``adapters.opcua.config``) ->
``OpcuaSource``."""

from __future__ import annotations

__all__ = ["create_source", "resolve_files"]

from collections.abc import Callable, Mapping
from typing import Any

from adapters import registry
from adapters.opcua.client import OpcuaSource
from adapters.opcua.config import parse_options
from edgepipe.core import Clock, Source


def create_source(name: str, options: Mapping[str, Any], clock: Clock) -> Source:
    """The registry factory of ``"opcua"``."""
    return OpcuaSource(parse_options(name, options), clock)


_FILE_OPTIONS = ("certificate", "private_key", "trust_dir", "password_file")


def resolve_files(opts: Mapping[str, Any], fix: Callable[[str], str]) -> Mapping[str, Any]:
    """The registry's file resolver: the certificate, key, trust directory and password
    file; values of the wrong type are left for ``parse_options`` to report."""
    return {k: fix(v) if k in _FILE_OPTIONS and isinstance(v, str) else v for k, v in opts.items()}


registry.register("opcua", create_source, resolve_files)
