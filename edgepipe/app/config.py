"""The one TOML config file, validated at start (and on reload) into typed records.

Each section is built by its own layer's record (``WindowConfig``, ``RulesConfig``,
``AlertConfig``, ``BrokerConfig``) and every problem is reported with its dotted key path;
``load_config`` gathers the problems of all sections so ``edgepipe config check`` can list
them at once.
"""

from __future__ import annotations

__all__ = ["AppConfig", "LogConfig", "ModelsConfig", "SourceConfig", "load_config", "parse_config"]

import dataclasses
import math
import os
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from adapters import registry
from edgepipe.app.delivery_config import (
    NamedBroker,
    local_table,
    outbox_config,
    regional_brokers,
)
from edgepipe.capture import CaptureConfig
from edgepipe.core import ConfigError, ConfigIssue, SystemClock
from edgepipe.core.files import config_file_path
from edgepipe.core.tables import check, from_mapping
from edgepipe.delivery import BrokerConfig
from edgepipe.delivery.outbox_config import OutboxConfig
from edgepipe.pipeline import AlertConfig, RulesConfig, WindowConfig
from edgepipe.pipeline.health import HealthConfig

T = TypeVar("T")

#: Where `make models` writes, next to the package in a source checkout (and so where an
#: editable install finds them).
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
#: Names the models directory for a config without ``[models] dir``.
MODELS_DIR_ENV = "EDGEPIPE_MODELS_DIR"
_MANIFEST = "manifest.json"


def default_models_dir() -> Path:
    """The models directory of a config without ``[models] dir``: ``$EDGEPIPE_MODELS_DIR``
    if set, else the first of these that holds a manifest: the source checkout's
    ``models/`` (editable install, ``make demo``) and the ``models/`` beside the virtual
    environment (``P/.venv`` and ``P/models``, the layout of deploy/install.sh with
    P = /opt/edgepipe). A non-editable install puts the package in site-packages, far from
    any ``models/``, so without either the error says where it looked and what to set."""
    env = os.environ.get(MODELS_DIR_ENV, "")
    candidates = [Path(env)] if env else [DEFAULT_MODELS_DIR, Path(sys.prefix).parent / "models"]
    for candidate in candidates:
        if (candidate / _MANIFEST).is_file():
            return candidate
    looked = " or ".join(str(c / _MANIFEST) for c in dict.fromkeys(candidates))
    where = f"${MODELS_DIR_ENV} names no models directory" if env else "no models directory"
    raise ConfigError(
        f"{where}: {looked} does not exist. Set `dir` in [models] (or ${MODELS_DIR_ENV}) to "
        f"the directory holding {_MANIFEST}, the models/ folder of the edgepipe release "
        "(deploy/install.sh installs it as /opt/edgepipe/models)",
        key="models.dir",
    )


@dataclass(frozen=True, slots=True)
class LogConfig:
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"

    def __post_init__(self) -> None:
        check(self.level in ("debug", "info", "warning", "error"), "level", "unknown level")
        check(self.format in ("auto", "json", "console"), "format", "auto, json or console")


@dataclass(frozen=True, slots=True)
class ModelsConfig:
    """ONNX models to run beside the rules; ``dir`` holds the files and manifest.json."""

    dir: str = ""
    # the event classifier (its P(fault) raises pmu_fault) and the anomaly model; the
    # starter "pmu_fault" knows only the simulator's faults (models/cards)
    enabled: tuple[str, ...] = ("pmu_event", "pmu_anomaly")
    # ``[models.thresholds.<name>]``: the site's own (raise_at, clear_at) in place of the
    # manifest's, e.g. a lower raise for quicker fault alerts (models/cards, operations.md)
    thresholds: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        """``dir``, else ``default_models_dir()`` (raises ``ConfigError`` if none found)."""
        return Path(self.dir) if self.dir else default_models_dir()


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One ``[sources.<name>]`` table; ``options`` is checked by the adapter itself."""

    name: str
    type: str
    options: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    """``max_pending``: alerts held in memory until the outbox commits them (reached only
    when the disk stalls); ``retry_s``: pause between attempts of the replay relay."""

    max_pending: int = 100_000
    retry_s: float = 1.0

    def __post_init__(self) -> None:
        check(self.max_pending >= 1, "max_pending", "must be >= 1")
        check(self.retry_s > 0, "retry_s", "must be > 0")


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """``metrics_listen``: "host:port" of /metrics and /healthz ("" = off; keep it on
    loopback); ``stall_limit_s``: how long a due window may wait before the watchdog is
    withheld and /healthz says unhealthy; ``status_interval_s``: systemd STATUS period."""

    metrics_listen: str = ""
    stall_limit_s: float = 5.0
    status_interval_s: float = 10.0

    def __post_init__(self) -> None:
        check(self.stall_limit_s > 0, "stall_limit_s", "must be > 0")
        check(self.status_interval_s > 0, "status_interval_s", "must be > 0")
        if self.metrics_listen:
            host, _, port = self.metrics_listen.rpartition(":")
            ok = bool(host) and port.isdigit() and 0 <= int(port) <= 65535
            check(ok, "metrics_listen", 'expected "host:port", e.g. "127.0.0.1:9108"')

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        if not self.metrics_listen:
            return None
        host, _, port = self.metrics_listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True, slots=True)
class AppConfig:
    site: str
    sources: tuple[SourceConfig, ...]
    windows: WindowConfig = field(default_factory=WindowConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    mqtt: BrokerConfig | None = None
    regional: tuple[NamedBroker, ...] = ()  # [mqtt.regional.<name>], after the local one
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    logging: LogConfig = field(default_factory=LogConfig)
    capture: CaptureConfig | None = None  # [capture]: record what the sources report
    service: ServiceConfig = field(default_factory=ServiceConfig)
    health: HealthConfig = field(default_factory=HealthConfig)  # [health]: asset health
    path: str = ""


_SECTIONS = {
    "site",
    "sources",
    "windows",
    "rules",
    "alerts",
    "models",
    "mqtt",
    "delivery",
    "outbox",
    "logging",
    "capture",
    "service",
    "health",
}


def load_config(path: str | Path) -> AppConfig:
    """Read and validate ``path``; raise ``ConfigError`` listing every problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:  # TOML is UTF-8 (toml.io, "Spec")
        line = p.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{p}: not UTF-8 text: byte {exc.object[exc.start]:#04x} on line {line}"
        ) from exc
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    return parse_config(table, base_dir=p.resolve().parent, path=str(p))


def parse_config(
    table: Mapping[str, Any], base_dir: Path | None = None, path: str = ""
) -> AppConfig:
    issues: list[ConfigIssue] = [
        ConfigIssue(k, f"unknown section (known: {', '.join(sorted(_SECTIONS))})")
        for k in table
        if k not in _SECTIONS
    ]

    def section(key: str, build: Callable[[Mapping[str, Any]], T], default: T) -> T:
        sub = table.get(key)
        if sub is None:
            return default
        if not isinstance(sub, Mapping):
            issues.append(ConfigIssue(key, "expected a table"))
            return default
        try:
            return build(sub)
        except ConfigError as exc:
            issues.extend(exc.issues)
            return default

    site = table.get("site")
    if not isinstance(site, str) or not site.strip():
        issues.append(ConfigIssue("site", "required: a non-empty name for this site"))
        site = ""
    windows = section("windows", lambda t: from_mapping(WindowConfig, t, "windows"), WindowConfig())
    rules = section("rules", lambda t: RulesConfig.from_mapping(t, "rules"), RulesConfig())
    alerts = section("alerts", lambda t: from_mapping(AlertConfig, t, "alerts"), AlertConfig())
    models = section("models", lambda t: _models(t, base_dir), ModelsConfig())
    if not models.dir:  # `config check` fails, not the service, when there is no default
        try:
            default_models_dir()
        except ConfigError as exc:
            issues.extend(exc.issues)
    mqtt = section(
        "mqtt", lambda t: BrokerConfig.from_mapping(_resolve_files(local_table(t), base_dir)), None
    )
    no_regional: tuple[NamedBroker, ...] = ()
    regional = section("mqtt", lambda t: regional_brokers(t, base_dir, _resolve_files), no_regional)
    outbox = section("outbox", lambda t: outbox_config(t, base_dir), OutboxConfig())
    delivery = section(
        "delivery", lambda t: from_mapping(DeliveryConfig, t, "delivery"), DeliveryConfig()
    )
    logging = section("logging", lambda t: from_mapping(LogConfig, t, "logging"), LogConfig())
    capture = section("capture", lambda t: _capture(t, base_dir), None)
    service = section(
        "service", lambda t: from_mapping(ServiceConfig, t, "service"), ServiceConfig()
    )
    health = section("health", lambda t: HealthConfig.from_mapping(t, "health"), HealthConfig())
    sources = _sources(table.get("sources"), issues, base_dir)
    if issues:
        raise ConfigError(issues)
    return AppConfig(
        site=site, sources=sources, windows=windows, rules=rules, alerts=alerts,
        models=models, mqtt=mqtt, delivery=delivery, logging=logging, path=path,
        capture=capture, regional=regional, outbox=outbox, service=service, health=health,
    )  # fmt: skip


def _models(table: Mapping[str, Any], base_dir: Path | None) -> ModelsConfig:
    values = dict(table)
    if isinstance(values.get("enabled"), list):
        values["enabled"] = tuple(values["enabled"])
    enabled = values.get("enabled", ())
    check(
        isinstance(enabled, tuple) and all(isinstance(x, str) for x in enabled),
        "models.enabled",
        "expected a list of model names",
    )
    plain = {k: v for k, v in values.items() if k not in ("enabled", "thresholds")}
    cfg = from_mapping(ModelsConfig, plain, "models")
    directory = cfg.dir
    if directory and base_dir is not None and not Path(directory).is_absolute():
        directory = str(base_dir / directory)
    enabled = enabled or cfg.enabled
    thresholds = _thresholds(values.get("thresholds", {}), enabled)
    return ModelsConfig(dir=directory, enabled=enabled, thresholds=thresholds)


def _thresholds(table: Any, enabled: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    """``[models.thresholds.<name>]`` tables of ``raise_at`` and ``clear_at``."""
    check(isinstance(table, Mapping), "models.thresholds", "expected a table per model")
    out: dict[str, tuple[float, float]] = {}
    for name, entry in table.items():
        key = f"models.thresholds.{name}"
        check(name in enabled, key, f"not an enabled model (enabled: {', '.join(enabled)})")
        check(isinstance(entry, Mapping), key, "expected a table with raise_at and clear_at")
        for extra in sorted(set(entry) - {"raise_at", "clear_at"}):
            check(False, f"{key}.{extra}", "unknown key")
        pair = []
        for field_name in ("raise_at", "clear_at"):
            v = entry.get(field_name)
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            check(ok, f"{key}.{field_name}", "expected a finite number")
            pair.append(float(v))
        check(pair[1] < pair[0], f"{key}.clear_at", "must be below raise_at (hysteresis)")
        out[name] = (pair[0], pair[1])
    return out


def _capture(table: Mapping[str, Any], base_dir: Path | None) -> CaptureConfig | None:
    """``[capture]``; a relative ``dir`` is relative to the config file."""
    cfg = from_mapping(CaptureConfig, table, "capture")
    if not cfg.enabled:
        return None
    if base_dir is not None and not Path(cfg.dir).is_absolute():
        return dataclasses.replace(cfg, dir=str(base_dir / cfg.dir))
    return cfg


def _resolve_files(table: Mapping[str, Any], base_dir: Path | None) -> Mapping[str, Any]:
    """Relative file names in the mqtt table are relative to the config file."""
    if base_dir is None:
        return table

    def fix(t: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
        out = dict(t)
        for k in keys:
            v = out.get(k)
            if isinstance(v, str) and v:
                out[k] = config_file_path(v, base_dir)  # or credential:NAME
        return out

    out = fix(table, ("password_file",))
    if isinstance(out.get("tls"), Mapping):
        out["tls"] = fix(out["tls"], ("ca_file", "cert_file", "key_file"))
    return out


def _sources(
    table: Any, issues: list[ConfigIssue], base_dir: Path | None
) -> tuple[SourceConfig, ...]:
    """``[sources.<name>]``; each adapter names its file options (registry
    ``resolve_files``), and relative ones are made relative to the config file."""
    if table is None:
        issues.append(ConfigIssue("sources", "required: at least one [sources.<name>] table"))
        return ()
    if not isinstance(table, Mapping):
        issues.append(ConfigIssue("sources", "expected tables [sources.<name>]"))
        return ()
    out = []
    for name, sub in table.items():
        key = f"sources.{name}"
        if not isinstance(sub, Mapping):
            issues.append(ConfigIssue(key, "expected a table"))
            continue
        kind = sub.get("type")
        if not isinstance(kind, str):
            issues.append(ConfigIssue(f"{key}.type", f"required, one of {registry.available()}"))
            continue
        options = {k: v for k, v in sub.items() if k != "type"}
        if base_dir is not None:
            options = dict(registry.resolve_files(kind, options, base_dir))
        try:
            # Building the adapter validates its options; nothing connects until run().
            registry.create(kind, name, options, SystemClock())
        except ConfigError as exc:
            issues.extend(exc.issues)
            continue
        out.append(SourceConfig(name=name, type=kind, options=options))
    return tuple(out)
