"""Registers the ``"modbus"`` source: config options -> ``ModbusPoller``.

Options (``[sources.<name>]`` with ``type = "modbus"``):

- ``url``: ``"tcp://host:port"`` (Modbus TCP) or ``"rtu+tcp://host:port"`` (Modbus RTU
  frames through a transparent serial gateway);
- ``profile``, ``unit_id``, ``asset``: one device (the shorthand), or
- ``devices``: a list of tables with the same three keys, for several unit ids behind
  one gateway (``[[sources.<name>.devices]]``); each becomes stream ``<name>/<unit_id>``;
- ``reconnect_min_s`` (0.5) and ``reconnect_max_s`` (30): the reconnect backoff.

``profile`` is a device profile file (``adapters.modbus.profile``); in the service config
a relative path is relative to the config file's directory (``resolve_files``, applied by
the config loader; options built by hand are taken as given). ``unit_id`` overrides the
profile's; ``asset`` defaults to the source name (one device) or ``<name>/<unit_id>``.
"""

from __future__ import annotations

__all__ = ["parse_options", "resolve_files"]

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from adapters import registry
from adapters.modbus.device import DeviceConfig
from adapters.modbus.poller import ModbusPoller, ModbusSourceConfig
from adapters.modbus.profile import load_profile
from edgepipe.core import Clock, ConfigError, ConfigIssue, Source

_KNOWN = {"type", "url", "profile", "unit_id", "asset", "devices", "reconnect_min_s",
          "reconnect_max_s"}  # fmt: skip
_SCHEMES = {"tcp": "socket", "modbus": "socket", "rtu+tcp": "rtu"}


def parse_url(url: object) -> tuple[str, str, int]:
    """``tcp://h:p`` or ``rtu+tcp://h:p`` -> (framer, host, port); ValueError otherwise."""
    if not isinstance(url, str):
        raise ValueError("must be a string like tcp://host:port")
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ValueError(f"scheme must be tcp:// or rtu+tcp://, got {url!r}")
    try:
        port = parts.port if parts.port is not None else 502
    except ValueError as exc:
        raise ValueError(f"bad port in {url!r}") from exc
    if not parts.hostname:
        raise ValueError(f"needs a host, got {url!r}")
    return _SCHEMES[parts.scheme], parts.hostname, port


def parse_options(name: str, opts: Mapping[str, Any]) -> ModbusSourceConfig:
    """Validate ``opts``; every problem is reported at ``sources.<name>.<key>``."""
    base = f"sources.{name}"
    issues = [ConfigIssue(f"{base}.{k}", "unknown option") for k in sorted(set(opts) - _KNOWN)]
    framer, host, port = "socket", "", 0
    try:
        framer, host, port = parse_url(opts.get("url"))
    except ValueError as exc:
        issues.append(ConfigIssue(f"{base}.url", f"required; {exc}"))
    if "devices" in opts:
        raw = opts["devices"]
        if not isinstance(raw, list) or not raw or "profile" in opts:
            issues.append(ConfigIssue(f"{base}.devices", "a non-empty list of tables "
                                      "(and no top-level profile)"))  # fmt: skip
            raw = []
        entries = [(f"{base}.devices[{i}]", d) for i, d in enumerate(raw)]
    else:
        entries = [(base, opts)]
    devices: list[DeviceConfig] = []
    for key, entry in entries:
        try:
            devices.append(_device(name, key, entry, single=len(entries) == 1))
        except ConfigError as exc:
            issues.extend(exc.issues)
    units = [d.unit_id for d in devices]
    if len(set(units)) != len(units):
        issues.append(ConfigIssue(f"{base}.devices", "two devices share one unit_id"))
    backoff = []
    for key, default in (("reconnect_min_s", 0.5), ("reconnect_max_s", 30.0)):
        v = opts.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
            issues.append(ConfigIssue(f"{base}.{key}", f"must be a number > 0, got {v!r}"))
            v = default
        backoff.append(float(v))
    if issues:
        raise ConfigError(issues)
    return ModbusSourceConfig(
        name=name, host=host, port=port, devices=tuple(devices),
        framer="rtu" if framer == "rtu" else "socket",
        reconnect_min_s=backoff[0], reconnect_max_s=max(backoff),
    )  # fmt: skip


def _device(name: str, key: str, entry: object, single: bool) -> DeviceConfig:
    if not isinstance(entry, Mapping):
        raise ConfigError("expected a table", key=key)
    if not single:
        extra = sorted(set(entry) - {"profile", "unit_id", "asset"})
        if extra:
            raise ConfigError([ConfigIssue(f"{key}.{k}", "unknown option") for k in extra])
    path = entry.get("profile")
    if not isinstance(path, str) or not path:
        raise ConfigError("required: the device profile file", key=f"{key}.profile")
    profile = load_profile(path, f"{key}.profile")
    unit = entry.get("unit_id", profile.unit_id)
    if isinstance(unit, bool) or not isinstance(unit, int) or not 0 <= unit <= 255:
        raise ConfigError(f"an integer 0..255, got {unit!r}", key=f"{key}.unit_id")
    asset = entry.get("asset", name if single else f"{name}/{unit}")
    if not isinstance(asset, str) or not asset:
        raise ConfigError("a non-empty string", key=f"{key}.asset")
    return DeviceConfig(profile=profile, unit_id=unit, asset=asset, stream=f"{name}/{unit}")


def create_source(name: str, options: Mapping[str, Any], clock: Clock) -> Source:
    """The registry factory of ``"modbus"``."""
    return ModbusPoller(parse_options(name, options), clock)


def resolve_files(opts: Mapping[str, Any], fix: Callable[[str], str]) -> Mapping[str, Any]:
    """The registry's file resolver: ``profile``, top level or in each of ``devices``.
    Values of the wrong type are left for ``parse_options`` to report."""

    def entry(d: Any) -> Any:
        if isinstance(d, Mapping) and isinstance(d.get("profile"), str):
            return {**d, "profile": fix(d["profile"])}
        return d

    out = entry(opts)
    if isinstance(opts.get("devices"), list):
        out = {**out, "devices": [entry(d) for d in opts["devices"]]}
    return dict(out)


registry.register("modbus", create_source, resolve_files)
