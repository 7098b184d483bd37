"""Build frozen dataclasses from TOML tables, collecting every problem with its key path.

The stage configs (pipeline, rules, alerts, delivery) are plain dataclasses owned by their
layers; this module fills them from a mapping without those layers knowing about TOML.
"""

from __future__ import annotations

__all__ = ["IssueList", "build", "check_unknown"]

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from edgepipe.core import ConfigError, ConfigIssue

T = TypeVar("T")
IssueList = list[ConfigIssue]


def check_unknown(table: Mapping[str, Any], known: set[str], path: str, issues: IssueList) -> None:
    for key in table:
        if key not in known:
            where = f"{path}.{key}" if path else key
            issues.append(ConfigIssue(where, f"unknown key (known: {', '.join(sorted(known))})"))


def build(cls: type[T], table: Any, path: str, issues: IssueList) -> T | None:
    """Build ``cls`` from ``table``; on any problem add issues and return None."""
    if not isinstance(table, Mapping):
        issues.append(ConfigIssue(path, f"expected a table, got {type(table).__name__}"))
        return None
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    check_unknown(table, set(fields), path, issues)
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    before = len(issues)
    for name, value in table.items():
        if name in fields:
            kwargs[name] = _coerce(hints[name], value, f"{path}.{name}", issues)
    if len(issues) > before:
        return None
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        for issue in exc.issues:
            key = issue.key if issue.key.startswith(path) else f"{path}.{issue.key}"
            issues.append(ConfigIssue(key, issue.message))
    except (TypeError, ValueError) as exc:
        issues.append(ConfigIssue(path, str(exc)))
    return None


def _coerce(hint: Any, value: Any, path: str, issues: IssueList) -> Any:
    """Check ``value`` against a type hint; convert lists to tuples and ints to floats."""
    origin = typing.get_origin(hint)
    handler = _BY_ORIGIN.get(origin) if origin is not None else None
    if handler is not None:
        return handler(hint, value, path, issues)
    if hint is Any:
        return value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _coerce_enum(hint, value, path, issues)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build(hint, value, path, issues)
    return _coerce_scalar(hint, value, path, issues)


def _coerce_union(hint: Any, value: Any, path: str, issues: IssueList) -> Any:
    args = typing.get_args(hint)
    if value is None and type(None) in args:
        return None
    trial: IssueList = []
    for arg in args:
        if arg is type(None):
            continue
        trial = []
        result = _coerce(arg, value, path, trial)
        if not trial:
            return result
    issues.extend(trial)
    return value


def _coerce_tuple(hint: Any, value: Any, path: str, issues: IssueList) -> Any:
    if not isinstance(value, list | tuple):
        issues.append(ConfigIssue(path, f"expected a list, got {_name(value)}"))
        return value
    args = typing.get_args(hint)
    item = args[0] if args else Any
    return tuple(_coerce(item, v, f"{path}[{i}]", issues) for i, v in enumerate(value))


def _coerce_mapping(hint: Any, value: Any, path: str, issues: IssueList) -> Any:
    if not isinstance(value, Mapping):
        issues.append(ConfigIssue(path, f"expected a table, got {_name(value)}"))
        return value
    return dict(value)


def _coerce_literal(hint: Any, value: Any, path: str, issues: IssueList) -> Any:
    args = typing.get_args(hint)
    if value not in args:
        issues.append(ConfigIssue(path, f"must be one of {', '.join(map(repr, args))}"))
    return value


def _coerce_enum(hint: type[enum.Enum], value: Any, path: str, issues: IssueList) -> Any:
    try:
        return hint(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in hint)
        issues.append(ConfigIssue(path, f"must be one of {allowed}"))
        return value


def _coerce_scalar(hint: Any, value: Any, path: str, issues: IssueList) -> Any:
    is_bool = isinstance(value, bool)
    if hint is float and isinstance(value, int | float) and not is_bool:
        return float(value)
    if hint in (int, str) and isinstance(value, hint) and not is_bool:
        return value
    if hint is bool and is_bool:
        return value
    if hint in (float, int, str, bool):
        expected = {float: "a number", int: "an integer", str: "a string", bool: "a boolean"}
        issues.append(ConfigIssue(path, f"expected {expected[hint]}, got {_name(value)}"))
    return value


_BY_ORIGIN: dict[Any, Any] = {
    typing.Union: _coerce_union,
    types.UnionType: _coerce_union,
    tuple: _coerce_tuple,
    dict: _coerce_mapping,
    Mapping: _coerce_mapping,
    typing.Literal: _coerce_literal,
}


def _name(value: Any) -> str:
    return {
        bool: "a boolean",
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)
