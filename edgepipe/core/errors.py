"""The one error tree of edgepipe.

Third-party exceptions are wrapped where they enter (``raise ... from exc``) so that
callers only ever handle these classes.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "DeliveryError",
    "EdgepipeError",
    "ModelError",
    "ProtocolError",
    "TransportError",
]

from dataclasses import dataclass


class EdgepipeError(Exception):
    """Base of every error edgepipe raises on purpose."""


class ProtocolError(EdgepipeError):
    """The peer sent bytes that break the protocol (bad checksum, size, type...)."""


class TransportError(EdgepipeError):
    """The connection failed: refused, reset, timed out, unreachable."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config file, located by its dotted key path."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class ConfigError(EdgepipeError):
    """A config file is invalid. Carries every problem found, each with its key path."""

    def __init__(self, issues: list[ConfigIssue] | ConfigIssue | str, key: str = "") -> None:
        if isinstance(issues, str):
            issues = [ConfigIssue(key or "<file>", issues)]
        elif isinstance(issues, ConfigIssue):
            issues = [issues]
        self.issues: tuple[ConfigIssue, ...] = tuple(issues)
        super().__init__("; ".join(str(i) for i in self.issues))


class ModelError(EdgepipeError):
    """A model or its manifest is missing, tampered with, or does not fit its spec."""


class DeliveryError(EdgepipeError):
    """An alert could not be handed to a broker."""
