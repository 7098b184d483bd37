"""With a site-context model (pmu_event_site), a moment is scored once every PMU of the site
has delivered it: the alerts do not depend on which PMU's frames arrived first, as long as
the late one is within ``[windows] site_hold_ms``; a PMU later than that is not waited for
and nothing is lost."""

from __future__ import annotations

import numpy as np
import pytest
import structlog.testing

from edgepipe.app.config import AppConfig, parse_config
from edgepipe.app.pipeline import Pipeline, build_detectors
from edgepipe.core import Alert, SampleBatch, StreamInfo
from edgepipe.delivery import alert_to_json
from edgepipe.pipeline.testing import V_BASE, pmu_batch, pmu_info

N = 360  # 6 s at 60 frames/s
FAULT_AT, FAULT_FRAMES = 150, 8


def _config(model: str, hold_ms: int = 100) -> AppConfig:
    return parse_config(
        {
            "site": "grid",
            "sources": {"pdc": {"type": "pmu", "url": "tcp://127.0.0.1:4712", "idcode": 1}},
            "windows": {"length": 30, "hop": 2, "site_hold_ms": hold_ms},
            "models": {"enabled": [model]},
        }
    )


def _streams() -> list[tuple[StreamInfo, SampleBatch]]:
    """Three PMUs: a fault next to the first (0.35 pu), felt less at the others."""
    rng = np.random.default_rng(3)
    out = []
    for p, depth in enumerate((0.35, 0.8, 0.9)):
        info = pmu_info(f"pmu{p}", f"bus{p}", v_nominal=V_BASE)
        v = 1.0 + 0.001 * rng.standard_normal(N)
        v[FAULT_AT : FAULT_AT + FAULT_FRAMES] = depth
        f = 60.0 + 0.002 * rng.standard_normal(N)
        f[FAULT_AT + FAULT_FRAMES :] += 0.05 * (1 - depth)  # rotors sped up in the fault
        out.append((info, pmu_batch(info, N, v_pu=v, f_hz=f)))
    return out


def _run(
    config: AppConfig, lag: tuple[int, ...], reload_at: int = -1
) -> tuple[list[bytes], Pipeline]:
    """Feed frame by frame, PMU ``p`` running ``lag[p]`` frames behind (a reload of the
    same config at frame ``reload_at``); the alerts."""
    alerts: list[Alert] = []
    detectors, _ = build_detectors(config)
    pipeline = Pipeline(config, detectors, alerts.append)
    streams = _streams()
    for info, _ in streams:
        pipeline.on_stream(info)
    batches = [b for _, b in streams]
    for k in range(N + max(lag)):
        if k == reload_at:
            pipeline.reconfigure(config, detectors)
        for b, d in zip(batches, lag, strict=True):
            i = k - d
            if 0 <= i < N:
                pipeline.on_batch(
                    SampleBatch(b.stream, b.times_ns[i : i + 1], b.values[i : i + 1],
                                b.quality[i : i + 1])
                )  # fmt: skip
    pipeline.finish()
    return [alert_to_json(a) for a in alerts], pipeline


def _faults(alerts: list[bytes]) -> list[bytes]:
    return [a for a in alerts if b'"kind":"pmu_fault"' in a]


def test_the_site_model_raises_the_fault_at_the_pmu_next_to_it() -> None:
    alerts, pipeline = _run(_config("pmu_event_site"), (0, 0, 0))
    faults = _faults(alerts)
    assert any(b'"asset":"bus0"' in a and b'"state":"raised"' in a for a in faults)
    assert pipeline.site_released_late == 0 and pipeline.site_held == 0


@pytest.mark.parametrize("lag", [(0, 3, 0), (5, 0, 2)])
def test_a_pmu_late_within_the_hold_changes_no_alert(lag: tuple[int, ...]) -> None:
    together, _ = _run(_config("pmu_event_site"), (0, 0, 0))
    late, pipeline = _run(_config("pmu_event_site"), lag)
    assert _faults(together)
    assert late == together  # every field: ids, times, scores and evidence
    assert pipeline.site_released_late == 0


def test_without_the_hold_a_late_pmu_changes_the_scores_and_past_it_nothing_is_lost() -> None:
    together, whole = _run(_config("pmu_event_site"), (0, 0, 0))
    alone, _ = _run(_config("pmu_event_site", hold_ms=0), (0, 3, 0))
    assert alone != together  # scored without the late PMU's view of the moment
    _, pipeline = _run(_config("pmu_event_site", hold_ms=20), (0, 6, 0))
    assert pipeline.site_released_late > 0  # 100 ms late, 20 ms hold: not waited for
    assert pipeline.stats.windows == whole.stats.windows  # but every window was scored
    assert pipeline.site_held == 0


def test_a_model_without_site_context_holds_nothing() -> None:
    alerts, pipeline = _run(_config("pmu_event"), (0, 3, 0))
    assert pipeline.site_released_late == 0 and pipeline.site_held == 0
    assert sorted(alerts) == sorted(_run(_config("pmu_event"), (0, 0, 0))[0])


def test_a_reload_keeps_the_held_moments_whole() -> None:
    plain, _ = _run(_config("pmu_event_site"), (0, 3, 0))
    reloaded, pipeline = _run(_config("pmu_event_site"), (0, 3, 0), reload_at=FAULT_AT + 2)
    assert reloaded == plain
    assert pipeline.site_released_late == 0


def test_a_site_of_few_pmus_is_warned_about_once() -> None:
    with structlog.testing.capture_logs() as logs:
        _run(_config("pmu_event_site"), (0, 0, 0))
    warned = [e for e in logs if e["event"] == "site_context_few_pmus"]
    assert len(warned) == 1 and warned[0]["pmus"] == 3
    assert "enable pmu_event instead" in warned[0]["advice"]
    with structlog.testing.capture_logs() as logs:
        _run(_config("pmu_event"), (0, 0, 0))
    assert not [e for e in logs if e["event"] == "site_context_few_pmus"]
