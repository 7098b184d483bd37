"""The asset health message: ``edgepipe/<site>/health/<asset>``, retained (sans-IO).

The retained message is the asset's current health index, so a dashboard that
subscribes late sees it at once::

    {"schema_version": "1.0", "site": "s1", "asset": "T1", "index": 87.5,
     "time": "2026-...Z", "time_ns": 1795...,
     "factors": {"hot_spot": {"condition": 0.1, "weight": 3.0, "value": 92.4}, ...}}

``index`` runs from 0 (act now) to 100 (as new); ``factors`` say what pulled it down
(``edgepipe.pipeline.health.index``). The topic shares the ``health`` level with the
service's own health events (``health_topic``); asset names and event kinds are both
operator-visible names, so keep asset tags distinct from ``service_started`` and
``outbox_drops``.
"""

from __future__ import annotations

__all__ = ["asset_health_to_json", "asset_health_topic"]

import json
from collections.abc import Mapping
from typing import Any

from edgepipe.delivery.message import SCHEMA_VERSION, format_rfc3339_ns
from edgepipe.delivery.topics import health_topic


def asset_health_topic(site: str, asset: str) -> str:
    return health_topic(site, asset)


def asset_health_to_json(site: str, asset: str, body: Mapping[str, Any]) -> bytes:
    """``body`` from ``HealthIndex.to_dict()`` plus ``time_ns``."""
    t = int(body["time_ns"])
    out = {"schema_version": SCHEMA_VERSION, "site": site, "asset": asset,
           "index": body["index"], "time": format_rfc3339_ns(t), "time_ns": t,
           "factors": body.get("factors", {})}  # fmt: skip
    return json.dumps(out, sort_keys=True, separators=(",", ":")).encode()
