"""Records of the forwarder: its counters, a message in flight, the drop report."""

from __future__ import annotations

__all__ = ["Flight", "ForwarderStats", "drop_message"]

from dataclasses import dataclass

from edgepipe.delivery.message import health_to_json
from edgepipe.delivery.outbox_records import DropReport, NewMessage, Priority
from edgepipe.delivery.topics import health_topic


@dataclass(slots=True)
class ForwarderStats:
    """Counters of the forwarder (``resent``: rows sent again from the resend window)."""

    submitted: int = 0
    committed: int = 0
    delivered: int = 0
    sent: int = 0
    failures: int = 0
    rewinds: int = 0
    resent: int = 0
    ack_timeouts: int = 0
    dropped_unbuffered: int = 0


@dataclass(slots=True)
class Flight:
    """A message awaiting its PUBACK: where, until when, in which rewind generation."""

    dest: int
    deadline_ns: int
    gen: int
    mid: int


def drop_message(site: str, now_ns: int, report: DropReport) -> NewMessage:
    """The ``outbox_drops`` health message reporting ``report`` (docs/delivery.md)."""
    detail = {"dropped": report.dropped, "first_ns": report.first_ns, "last_ns": report.last_ns}
    payload = health_to_json(site, "outbox_drops", now_ns, detail)
    return NewMessage(health_topic(site, "outbox_drops"), payload, Priority.INFO, now_ns, False,
                      "outbox_drops")  # fmt: skip
