"""Registers the ``"pmu"`` source: config options -> ``PmuClient``.

Options (``[sources.<name>]`` with ``type = "pmu"``):

- ``url``: ``"tcp://host:port"`` (commands and data on one connection) or
  ``"udp://host:port"``: the PMU's address when commands go over UDP, the local address
  to listen on when ``spontaneous`` or when ``command_url`` is given;
- ``idcode`` (1..65535): the stream's IDCODE (the PDC's when it sends several PMUs);
- ``command_url``: ``"tcp://host:port"`` to command a PMU whose data comes over UDP;
- ``spontaneous`` (bool): the PMU sends without commands, never send one;
- ``config_frame``: ``"cfg2"`` (default) or ``"cfg3"``;
- ``timeout_s`` (2.0): answer timeout before a command is sent again;
- ``quiet_periods`` (10): reporting periods without data before QUIET;
- ``nominal_voltage``: a number (every voltage phasor) or a table keyed by
  ``"<station>/<phasor>"``, ``"<phasor>"``, ``"<station>"`` or ``"*"``;
- ``reconnect_max_s`` (30.0): ceiling of the reconnect backoff.
"""

from __future__ import annotations

__all__ = ["parse_options", "parse_url"]

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from adapters import registry
from adapters.c37118.client import PmuClient, PmuClientConfig
from edgepipe.core import Clock, ConfigError, ConfigIssue, Source

_KNOWN = {
    "type",
    "url",
    "idcode",
    "command_url",
    "spontaneous",
    "config_frame",
    "timeout_s",
    "quiet_periods",
    "nominal_voltage",
    "reconnect_max_s",
}


def parse_url(url: object, schemes: tuple[str, ...]) -> tuple[str, str, int]:
    """``scheme://host:port`` -> (scheme, host, port); ValueError with a readable reason."""
    if not isinstance(url, str):
        raise ValueError(f"must be a string like {schemes[0]}://host:port")
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise ValueError(f"scheme must be one of {', '.join(schemes)}, got {url!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port in {url!r}") from exc
    if not parts.hostname or port is None:
        raise ValueError(f"needs host and port, got {url!r}")
    return parts.scheme, parts.hostname, port


def _number(opts: Mapping[str, Any], key: str, default: float, lo: float) -> float:
    value = opts.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < lo:
        raise ValueError(f"{key}: must be a number >= {lo}, got {value!r}")
    return float(value)


def parse_options(name: str, opts: Mapping[str, Any]) -> PmuClientConfig:
    """Validate ``opts``; every problem becomes a ``ConfigIssue`` at
    ``sources.<name>.<key>``, all reported together."""
    issues: list[ConfigIssue] = []
    base = f"sources.{name}"

    def issue(key: str, msg: str) -> None:
        issues.append(ConfigIssue(f"{base}.{key}", msg))

    for key in sorted(set(opts) - _KNOWN):
        issue(key, "unknown option")
    scheme, host, port, cmd_host, cmd_port = _endpoints(opts, issue)
    idcode = opts.get("idcode")
    if isinstance(idcode, bool) or not isinstance(idcode, int) or not 1 <= idcode <= 0xFFFF:
        issue("idcode", f"required, an integer 1..65535, got {idcode!r}")
        idcode = 0
    spontaneous = opts.get("spontaneous", False)
    if not isinstance(spontaneous, bool):
        issue("spontaneous", f"must be true or false, got {spontaneous!r}")
        spontaneous = False
    if spontaneous and scheme != "udp":
        issue("spontaneous", "only with a udp:// url")
    config_frame = opts.get("config_frame", "cfg2")
    if config_frame not in ("cfg2", "cfg3"):
        issue("config_frame", f'must be "cfg2" or "cfg3", got {config_frame!r}')
        config_frame = "cfg2"
    numbers: dict[str, float] = {}
    for key, default, lo in (("timeout_s", 2.0, 0.01), ("quiet_periods", 10.0, 1.0),
                             ("reconnect_max_s", 30.0, 0.01)):  # fmt: skip
        try:
            numbers[key] = _number(opts, key, default, lo)
        except ValueError as exc:
            issue(key, str(exc).split(": ", 1)[1])
            numbers[key] = default
    nominal = _nominal(opts.get("nominal_voltage"), issue)
    if issues:
        raise ConfigError(issues)
    return PmuClientConfig(
        name=name,
        transport="udp" if scheme == "udp" else "tcp",
        host=host,
        port=port,
        idcode=int(idcode),
        command_host=cmd_host,
        command_port=cmd_port,
        spontaneous=spontaneous,
        config_frame="cfg3" if config_frame == "cfg3" else "cfg2",
        timeout_s=numbers["timeout_s"],
        quiet_periods=numbers["quiet_periods"],
        nominal_voltage=nominal,
        reconnect_min_s=min(0.5, numbers["reconnect_max_s"]),
        reconnect_max_s=numbers["reconnect_max_s"],
    )


def _endpoints(opts: Mapping[str, Any], issue: Any) -> tuple[str, str, int, str | None, int | None]:
    """``url`` and ``command_url`` -> (scheme, host, port, command host, command port)."""
    scheme, host, port = "tcp", "", 0
    if "url" not in opts:
        issue("url", "required (tcp://host:port or udp://host:port)")
    else:
        try:
            scheme, host, port = parse_url(opts["url"], ("tcp", "udp"))
        except ValueError as exc:
            issue("url", str(exc))
    cmd_host: str | None = None
    cmd_port: int | None = None
    if "command_url" in opts:
        try:
            _, cmd_host, cmd_port = parse_url(opts["command_url"], ("tcp",))
        except ValueError as exc:
            issue("command_url", str(exc))
        if scheme != "udp":
            issue("command_url", "only with a udp:// url (TCP carries its own commands)")
    return scheme, host, port, cmd_host, cmd_port


def _nominal(value: object, issue: Any) -> dict[str, float] | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return {"*": float(value)}
    if isinstance(value, Mapping):
        out: dict[str, float] = {}
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                issue(f"nominal_voltage.{k}", f"must be a positive number of volts, got {v!r}")
            else:
                out[str(k)] = float(v)
        return out
    issue("nominal_voltage", f"must be a number or a table of numbers, got {value!r}")
    return None


def create_source(name: str, options: Mapping[str, Any], clock: Clock) -> Source:
    """The registry factory of ``"pmu"``."""
    return PmuClient(parse_options(name, options), clock)


registry.register("pmu", create_source)
