"""Options of an ``"opcua"`` source, validated into ``OpcuaConfig``.

```toml
[sources.dga1]
type = "opcua"
url = "opc.tcp://10.0.0.7:4840"
kind = "dga"                      # routes windows to the DGA detector
asset = "T1"
security = "SignAndEncrypt"       # None | Sign | SignAndEncrypt
policy = "Basic256Sha256"         # or Aes128Sha256RsaOaep, Aes256Sha256RsaPss
certificate = "/etc/edgepipe/opcua/client.der"
private_key = "/etc/edgepipe/opcua/client.pem"
trust_dir = "/etc/edgepipe/opcua/trusted"   # server certificates trusted
trust_server = false              # true: accept any server certificate (explicit choice)
username = "edgepipe"             # optional, with password_file
password_file = "/etc/edgepipe/opcua/password"
publishing_interval_ms = 1000
sampling_interval_ms = 1000
queue_size = 10
deadband = 0.0                    # 0: every change; see deadband_type
deadband_type = "absolute"        # absolute: engineering units; percent: % of EURange
stale_after_s = 0.0               # 0: five publishing intervals
reconnect_min_s = 0.5
reconnect_max_s = 30.0

[sources.dga1.nodes]              # channel name -> NodeId or browse path
h2 = "ns=2;s=DGA.H2"
c2h2 = "nsu=urn:vendor:dga;s=DGA.C2H2"  # by namespace URI: found again if the index moves
ch4 = "/Objects/2:DGA/2:CH4"      # a browse path: /-separated "<ns>:<BrowseName>"

[sources.dga1.params]             # constants handed to the detectors
time_scale = 1.0
```
"""

from __future__ import annotations

__all__ = ["OpcuaConfig", "parse_options"]

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.ua.uaerrors import UaError

from adapters.opcua.security import POLICIES
from edgepipe.core import ConfigError, ConfigIssue

_MODES = ("None", "Sign", "SignAndEncrypt")
_KNOWN = {
    "type", "url", "kind", "asset", "security", "policy", "certificate", "private_key",
    "trust_dir", "trust_server", "username", "password_file", "publishing_interval_ms",
    "sampling_interval_ms", "queue_size", "deadband", "stale_after_s", "reconnect_min_s",
    "reconnect_max_s", "nodes", "params", "timeout_s", "deadband_type",
}  # fmt: skip
_DEADBAND_TYPES = ("absolute", "percent")


@dataclass(frozen=True, slots=True)
class OpcuaConfig:
    name: str
    url: str
    nodes: tuple[tuple[str, str], ...]  # (channel, NodeId string or /browse/path)
    kind: str = ""
    asset: str = ""
    security: str = "None"
    policy: str = "Basic256Sha256"
    certificate: str = ""
    private_key: str = ""
    trust_dir: str = ""
    trust_server: bool = False
    username: str = ""
    password: str = ""
    publishing_interval_ms: float = 1000.0
    sampling_interval_ms: float = 1000.0
    queue_size: int = 10
    deadband: float = 0.0
    deadband_type: str = "absolute"
    stale_after_s: float = 0.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    timeout_s: float = 4.0
    params: tuple[tuple[str, float], ...] = ()

    @property
    def stream(self) -> str:
        return self.name

    @property
    def stale_ns(self) -> int:
        return round((self.stale_after_s or 5 * self.publishing_interval_ms / 1000) * 1e9)


def _str(opts: Mapping[str, Any], key: str, issues: list[ConfigIssue], base: str) -> str:
    v = opts.get(key, "")
    if not isinstance(v, str):
        issues.append(ConfigIssue(f"{base}.{key}", f"expected a string, got {v!r}"))
        return ""
    return v


def _num(  # noqa: PLR0917 - private helper
    opts: Mapping[str, Any], key: str, default: float, lo: float,
         issues: list[ConfigIssue], base: str) -> float:  # fmt: skip
    v = opts.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or v < lo:
        issues.append(ConfigIssue(f"{base}.{key}", f"expected a number >= {lo:g}, got {v!r}"))
        return default
    return float(v)


def parse_options(name: str, opts: Mapping[str, Any]) -> OpcuaConfig:
    """Validate ``opts``; every problem is reported at ``sources.<name>.<key>``."""
    base = f"sources.{name}"
    issues = [ConfigIssue(f"{base}.{k}", "unknown option") for k in sorted(set(opts) - _KNOWN)]
    s = {k: _str(opts, k, issues, base) for k in (
        "url", "kind", "asset", "certificate", "private_key", "trust_dir", "username",
        "password_file")}  # fmt: skip
    if not s["url"].startswith("opc.tcp://"):
        issues.append(ConfigIssue(f"{base}.url", "required: opc.tcp://host:port[/path]"))
    security = opts.get("security", "None")
    if security not in _MODES:
        issues.append(ConfigIssue(f"{base}.security", f"one of {', '.join(_MODES)}"))
    policy = opts.get("policy", "Basic256Sha256")
    if policy not in POLICIES:
        issues.append(ConfigIssue(f"{base}.policy", f"one of {', '.join(POLICIES)}"))
    if security != "None":
        for key in ("certificate", "private_key"):
            if not s[key]:
                issues.append(ConfigIssue(f"{base}.{key}", f"required with security {security}"))
    issues += _security_files(s, base)
    trust_server = opts.get("trust_server", False)
    if not isinstance(trust_server, bool):
        issues.append(ConfigIssue(f"{base}.trust_server", "expected true or false"))
    password = _password(s["password_file"], s["username"], issues, base)
    nodes = _nodes(opts.get("nodes"), issues, base)
    params = _params(opts.get("params", {}), issues, base)
    numbers = (
        ("publishing_interval_ms", 1000.0, 1.0), ("sampling_interval_ms", 1000.0, 0.0),
        ("queue_size", 10, 0), ("deadband", 0.0, 0.0), ("stale_after_s", 0.0, 0.0),
        ("reconnect_min_s", 0.5, 0.01), ("reconnect_max_s", 30.0, 0.01), ("timeout_s", 4.0, 0.1),
    )  # fmt: skip
    n = {k: _num(opts, k, d, lo, issues, base) for k, d, lo in numbers}
    deadband_type = opts.get("deadband_type", "absolute")
    if deadband_type not in _DEADBAND_TYPES:
        issues.append(ConfigIssue(f"{base}.deadband_type", f"one of {', '.join(_DEADBAND_TYPES)}"))
    elif deadband_type == "percent" and n["deadband"] > 100:
        # OPC 10000-8 clause 7.2 (v1.05): a PercentDeadband outside 0..100 is invalid.
        issues.append(ConfigIssue(f"{base}.deadband", "a percent deadband is 0 to 100"))
    if issues:
        raise ConfigError(issues)
    return OpcuaConfig(
        name=name, url=s["url"], nodes=nodes, kind=s["kind"], asset=s["asset"] or name,
        security=str(security), policy=str(policy), certificate=s["certificate"],
        private_key=s["private_key"], trust_dir=s["trust_dir"], trust_server=bool(trust_server),
        username=s["username"], password=password,
        publishing_interval_ms=n["publishing_interval_ms"],
        sampling_interval_ms=n["sampling_interval_ms"], queue_size=int(n["queue_size"]),
        deadband=n["deadband"], deadband_type=str(deadband_type), stale_after_s=n["stale_after_s"],
        reconnect_min_s=n["reconnect_min_s"],
        reconnect_max_s=max(n["reconnect_max_s"], n["reconnect_min_s"]),
        timeout_s=n["timeout_s"], params=params,
    )  # fmt: skip


def _security_files(s: Mapping[str, str], base: str) -> list[ConfigIssue]:
    """The certificate and key are read at every connect, the trust list at every
    handshake: a wrong path is a config error now, not a warning per reconnect."""
    issues = [
        ConfigIssue(f"{base}.{key}", f"cannot read {s[key]}")
        for key in ("certificate", "private_key")
        if s[key] and not os.access(s[key], os.R_OK)
    ]
    if s["trust_dir"] and not Path(s["trust_dir"]).is_dir():
        issues.append(ConfigIssue(f"{base}.trust_dir", f"not a directory: {s['trust_dir']}"))
    return issues


def _password(path: str, username: str, issues: list[ConfigIssue], base: str) -> str:
    if not path:
        if username:
            issues.append(ConfigIssue(f"{base}.password_file", "required with username"))
        return ""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        issues.append(ConfigIssue(f"{base}.password_file", f"cannot read: {exc.strerror}"))
        return ""


def _nodes(raw: object, issues: list[ConfigIssue], base: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, Mapping) or not raw:
        issues.append(ConfigIssue(f"{base}.nodes", "required: a table channel = NodeId or path"))
        return ()
    out = []
    for k, v in raw.items():
        if not isinstance(v, str) or not (v.startswith("/") or _node_id(v)):
            msg = (f'a NodeId ("ns=2;s=X", "nsu=urn:vendor:model;s=X") or a browse path'
                   f' ("/Objects/2:X"), got {v!r}')  # fmt: skip
            issues.append(ConfigIssue(f"{base}.nodes.{k}", msg))
        else:
            out.append((str(k), v))
    return tuple(out)


def _node_id(text: str) -> bool:
    """Whether ``text`` is a NodeId in OPC 10000-6 clause 5.3.1.10's string form."""
    try:
        ua.NodeId.from_string(text)
    except UaError:
        return False
    return True


def _params(raw: object, issues: list[ConfigIssue], base: str) -> tuple[tuple[str, float], ...]:
    if not isinstance(raw, Mapping):
        issues.append(ConfigIssue(f"{base}.params", "expected a table of numbers"))
        return ()
    out = []
    for k, v in raw.items():
        if isinstance(v, bool) or not isinstance(v, int | float):
            issues.append(ConfigIssue(f"{base}.params.{k}", f"expected a number, got {v!r}"))
        else:
            out.append((str(k), float(v)))
    return tuple(out)
