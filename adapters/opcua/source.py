"""Registers the ``"opcua"`` source: config options (``adapters.opcua.config``) ->
``OpcuaSource``."""

from __future__ import annotations

__all__ = ["create_source"]

from collections.abc import Mapping
from typing import Any

from adapters import registry
from adapters.opcua.client import OpcuaSource
from adapters.opcua.config import parse_options
from edgepipe.core import Clock, Source


def create_source(name: str, options: Mapping[str, Any], clock: Clock) -> Source:
    """The registry factory of ``"opcua"``."""
    return OpcuaSource(parse_options(name, options), clock)


registry.register("opcua", create_source)
