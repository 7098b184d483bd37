"""Typed, validated connection settings of one MQTT broker."""

from __future__ import annotations

__all__ = ["BrokerConfig", "TlsConfig", "credential_path"]

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from edgepipe.core import ConfigError, ConfigIssue


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS to the broker. ``ca_file`` None means the system trust store.

    ``insecure`` skips the host-name check (never the chain check); for lab brokers only.
    """

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    """One MQTT broker. Validated when built; ``ConfigError`` names every bad key.

    ``client_id`` empty means ``edgepipe-<site>`` for a publisher (stable, so the broker
    replaces a stale session of the same box) and a random id for a subscriber.
    ``password_file`` or ``password_credential`` (the name of a systemd credential,
    ``LoadCredential=<name>:...``, read from ``$CREDENTIALS_DIRECTORY/<name>``) holds the
    password; it is read when connecting and never logged. ``max_inflight``: QoS 1
    messages awaiting PUBACK at once on this connection (MQTT 5.0 §4.9 flow control),
    kept by the forwarder; paho's own window is off (it rescans its queue per PUBACK).
    ``keepalive`` (s) also bounds how late the broker notices a dead publisher and sends
    its Last Will (MQTT 5.0 §3.1.2.10: 1.5 x keepalive).
    """

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = ""
    keepalive: int = 30
    username: str | None = None
    password_file: str | None = None
    password_credential: str | None = None
    tls: TlsConfig | None = None
    connect_timeout_s: float = 5.0
    ack_timeout_s: float = 5.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    max_inflight: int = 1000

    def __post_init__(self) -> None:
        issues = _check(self)
        if issues:
            raise ConfigError(issues)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], key: str = "mqtt") -> BrokerConfig:
        """Build from a parsed TOML table; issue keys are prefixed with ``key``."""
        known = {f.name for f in fields(cls)}
        issues = [ConfigIssue(f"{key}.{k}", "unknown key") for k in data if k not in known]
        values = dict(data)
        tls = values.get("tls")
        if isinstance(tls, Mapping):
            tls_known = {f.name for f in fields(TlsConfig)}
            issues += [
                ConfigIssue(f"{key}.tls.{k}", "unknown key") for k in tls if k not in tls_known
            ]
            values["tls"] = TlsConfig(**{k: v for k, v in tls.items() if k in tls_known})
        elif tls is not None:
            issues.append(ConfigIssue(f"{key}.tls", "must be a table"))
            values.pop("tls")
        try:
            config = cls(**{k: v for k, v in values.items() if k in known})
        except ConfigError as exc:
            issues += [ConfigIssue(f"{key}.{i.key}", i.message) for i in exc.issues]
        if issues:
            raise ConfigError(issues)
        return config


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check(c: BrokerConfig) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []

    def bad(key: str, message: str) -> None:
        issues.append(ConfigIssue(key, message))

    if not isinstance(c.host, str) or not c.host:
        bad("host", "must be a non-empty host name or address")
    if not isinstance(c.port, int) or isinstance(c.port, bool) or not 1 <= c.port <= 65535:
        bad("port", f"must be an integer 1..65535, got {c.port!r}")
    if not isinstance(c.client_id, str) or "\x00" in c.client_id:
        bad("client_id", "must be a string without NUL (MQTT 5.0 §1.5.4)")
    # Keepalive 0 would switch the broker's liveness check off, and the Last Will with it.
    if not isinstance(c.keepalive, int) or isinstance(c.keepalive, bool):
        bad("keepalive", "must be an integer number of seconds")
    elif not 1 <= c.keepalive <= 65535:
        bad("keepalive", f"must be 1..65535 s (MQTT 5.0 §3.1.2.10), got {c.keepalive}")
    issues += _check_credentials(c)
    if not isinstance(c.max_inflight, int) or not 1 <= c.max_inflight <= 65535:
        bad("max_inflight", f"must be an integer 1..65535, got {c.max_inflight!r}")
    for name in ("connect_timeout_s", "ack_timeout_s", "reconnect_min_s", "reconnect_max_s"):
        value = getattr(c, name)
        if not _is_num(value) or value <= 0:
            bad(name, f"must be a positive number of seconds, got {value!r}")
    if (
        _is_num(c.reconnect_min_s)
        and _is_num(c.reconnect_max_s)
        and c.reconnect_max_s < c.reconnect_min_s
    ):
        bad("reconnect_max_s", "must be >= reconnect_min_s")
    if c.tls is not None:
        issues += _check_tls(c.tls)
    return issues


def _check_credentials(c: BrokerConfig) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    if c.username is not None and not isinstance(c.username, str):
        issues.append(ConfigIssue("username", "must be a string"))
    if c.password_file is not None and c.password_credential is not None:
        issues.append(ConfigIssue("password_credential", "give password_file or this, not both"))
    if c.password_credential is not None:
        name = c.password_credential
        if c.username is None:
            issues.append(ConfigIssue("password_credential", "needs username"))
        if not isinstance(name, str) or not name or "/" in name:
            issues.append(ConfigIssue("password_credential", "must be a credential name"))
        elif credential_path(name) is None:
            issues.append(
                ConfigIssue(
                    "password_credential",
                    f"no credential {name!r}: $CREDENTIALS_DIRECTORY is unset or lacks it "
                    "(systemd LoadCredential=)",
                )
            )
    if c.password_file is not None:
        if c.username is None:
            issues.append(ConfigIssue("password_file", "needs username"))
        if not isinstance(c.password_file, str) or not os.path.isfile(c.password_file):
            issues.append(ConfigIssue("password_file", f"no such file: {c.password_file!r}"))
    return issues


def credential_path(name: str) -> str | None:
    """``$CREDENTIALS_DIRECTORY/<name>`` if systemd provided it, else None."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    path = os.path.join(directory, name)
    return path if os.path.isfile(path) else None


def _check_tls(t: TlsConfig) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for name in ("ca_file", "cert_file", "key_file"):
        path = getattr(t, name)
        if path is not None and (not isinstance(path, str) or not os.path.isfile(path)):
            issues.append(ConfigIssue(f"tls.{name}", f"no such file: {path!r}"))
    if (t.cert_file is None) != (t.key_file is None):
        issues.append(ConfigIssue("tls.key_file", "cert_file and key_file go together"))
    if not isinstance(t.insecure, bool):
        issues.append(ConfigIssue("tls.insecure", "must be true or false"))
    return issues
