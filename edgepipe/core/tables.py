"""Building frozen config records from parsed TOML tables.

Every stage config is a frozen dataclass with defaults; ``from_mapping`` checks names and
types and raises ``ConfigError`` naming the dotted key, so the integrator can pass a TOML
table straight in. Range checks live in each record's ``__post_init__`` via ``check``.
"""

from __future__ import annotations

__all__ = ["check", "from_mapping"]

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any, TypeVar, get_type_hints

from edgepipe.core import ConfigError, ConfigIssue

T = TypeVar("T")


def check(ok: bool, key: str, message: str) -> None:
    """Raise ``ConfigError`` for ``key`` unless ``ok``."""
    if not ok:
        raise ConfigError(ConfigIssue(key, message))


def _coerce(value: Any, typ: Any, key: str) -> Any:
    if isinstance(typ, type) and issubclass(typ, enum.Enum):
        try:
            return typ(value)
        except ValueError:
            known = ", ".join(str(m.value) for m in typ)
            raise ConfigError(ConfigIssue(key, f"{value!r} is not one of {known}")) from None
    if typ is bool:
        check(isinstance(value, bool), key, f"expected true/false, got {value!r}")
        return value
    if typ is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        check(ok, key, f"expected an integer, got {value!r}")
        return value
    if typ is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        check(ok, key, f"expected a number, got {value!r}")
        return float(value)
    if typ is str:
        check(isinstance(value, str), key, f"expected a string, got {value!r}")
        return value
    return value


def from_mapping(cls: type[T], table: Mapping[str, Any], prefix: str = "") -> T:
    """Build ``cls`` (a dataclass of scalar fields) from ``table``; unknown keys are errors."""
    dot = f"{prefix}." if prefix else ""
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    issues = [ConfigIssue(f"{dot}{k}", "unknown key") for k in table if k not in names]
    if issues:
        raise ConfigError(issues)
    kwargs = {k: _coerce(v, hints[k], f"{dot}{k}") for k, v in table.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        # Field checks name the bare field; give back the full dotted path.
        raise ConfigError([ConfigIssue(f"{dot}{i.key}", i.message) for i in exc.issues]) from None
