"""What `/healthz` answers: 200 when the service does its job, else 503 with the reasons."""

from __future__ import annotations

__all__ = ["HealthReport", "check_health"]

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgepipe.app.lifecycle import Runtime

_DOWN = frozenset({"quiet", "disconnected"})


@dataclass(frozen=True, slots=True)
class HealthReport:
    ok: bool
    reasons: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        return {
            "status": "ok" if self.ok else "unhealthy",
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
        }


def check_health(runtime: Runtime, stall_limit_s: float) -> HealthReport:
    service = runtime.service
    reasons: list[str] = []
    warnings: list[str] = []
    pipeline = service.pipeline
    for stream, status in sorted(pipeline.stream_state.items()):
        if status.kind.value in _DOWN:
            reasons.append(f"stream {stream} is {status.kind.value}: {status.detail}".rstrip(": "))
    stalled = pipeline.stalled_for()
    if stalled > stall_limit_s:
        reasons.append(f"pipeline stalled: windows waiting {stalled:.1f} s")
    pending = service.relay.pending
    forwarder = getattr(service.relay, "forwarder", None)
    if (
        forwarder is not None
        and pending
        and not any(d.publisher.connected for d in forwarder.destinations)
    ):
        reasons.append(f"no broker reachable: {pending} message(s) waiting in the outbox")
    for name, crashes in sorted(service.supervisor.crashes.items()):
        warnings.append(f"source {name} restarted {crashes} time(s) after an error")
    if runtime.last_reload_error:
        warnings.append(f"last reload refused: {runtime.last_reload_error}")
    return HealthReport(not reasons, tuple(reasons), tuple(warnings))
