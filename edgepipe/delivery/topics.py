"""MQTT topic names of edgepipe (sans-IO).

Alerts:  ``edgepipe/<site>/alerts/<asset>/<kind>`` (retained: the current state of one key)
Status:  ``edgepipe/<site>/status`` (retained: "online" birth, "offline" Last Will)
Health:  ``edgepipe/<site>/health/<kind>`` (events through the outbox, not retained)

``edgepipe replay --mqtt`` publishes the same under ``edgepipe-replay/`` (``REPLAY_ROOT``):
a replay's old alerts and its status never overwrite the live site's retained state,
and live subscribers of ``edgepipe/+/alerts/#`` do not take them for news.

Segments come from operator-chosen names (asset tags such as ``T1/HV`` or ``bay#3``), so
each is percent-encoded where MQTT gives a character a meaning: ``/`` separates levels and
``+``/``#`` are wildcards that a PUBLISH topic must not contain (MQTT 5.0 §4.7.1, §4.7.3).
``%`` itself is encoded too, which keeps the mapping reversible: two different assets can
never share one retained topic. NUL is forbidden in UTF-8 strings (§1.5.4) and other
control characters "SHOULD NOT" appear, so they are encoded as well.
"""

from __future__ import annotations

__all__ = [
    "ALERT_TOPIC_FILTER",
    "REPLAY_ROOT",
    "alert_topic",
    "health_topic",
    "sanitize_segment",
    "status_topic",
    "unsanitize_segment",
]

import re
import urllib.parse

ROOT = "edgepipe"
REPLAY_ROOT = "edgepipe-replay"
ALERT_TOPIC_FILTER = f"{ROOT}/+/alerts/#"

# Characters with a meaning in topics, the escape character itself, and C0/C1 controls.
_UNSAFE = re.compile(r"[/+#%\x00-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    return "".join(f"%{b:02X}" for b in match.group().encode("utf-8"))


def sanitize_segment(name: str) -> str:
    """One topic level from ``name``: reversible, never empty, never a wildcard."""
    if not name:
        # An empty level is legal MQTT but invisible to `+` subscribers of a dashboard.
        return "_"
    if name == "_":
        return "%5F"  # "_" stands for the empty name: an asset called "_" gets its own
    return _UNSAFE.sub(_escape, name)


def unsanitize_segment(segment: str) -> str:
    """Inverse of :func:`sanitize_segment` (``"_"`` is the empty name)."""
    return "" if segment == "_" else urllib.parse.unquote(segment)


def alert_topic(site: str, asset: str, kind: str, root: str = ROOT) -> str:
    """Topic of one alert key; its retained message is the key's current state."""
    return "/".join(
        (root, sanitize_segment(site), "alerts", sanitize_segment(asset), sanitize_segment(kind))
    )


def status_topic(site: str, root: str = ROOT) -> str:
    """Retained birth/Last-Will topic of the site's publisher."""
    return f"{root}/{sanitize_segment(site)}/status"


def health_topic(site: str, kind: str) -> str:
    """Health events of the site's service (drop reports, starts); not retained."""
    return f"{ROOT}/{sanitize_segment(site)}/health/{sanitize_segment(kind)}"
