"""Reusable fakes for tests and benchmarks: synthetic PMU streams and the detector
conformance checks (style.md 8: one small contract, one suite over every detector).

``CONFORMANCE_DETECTORS`` lists ``(name, factory)`` of the pipeline's detectors; the suite in
``tests/unit/pipeline/test_detector_conformance.py`` also picks up
``edgepipe.inference.testing.CONFORMANCE_DETECTORS`` when that module exists, and anyone
may call ``check_detector`` on their own detector.
"""

from __future__ import annotations

__all__ = [
    "CONFORMANCE_DETECTORS",
    "check_detector",
    "conformance_windows",
    "pmu_batch",
    "pmu_info",
]

import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from edgepipe.core import ChannelInfo, ChannelKind, Quality, SampleBatch, Score, StreamInfo, Window
from edgepipe.pipeline.detectors import Detector
from edgepipe.pipeline.features import FEATURE_NAMES, pmu_features
from edgepipe.pipeline.rules import DEFAULT_RULES, DataQualityDetector, ThresholdRule
from edgepipe.pipeline.windows import WindowConfig, Windower

V_BASE = 230e3 / math.sqrt(3)  # phase-to-neutral volts of a 230 kV bus
I_BASE = 400.0
T0_NS = 1_700_000_000_000_000_000  # a round second: frame 0 of every rate


def pmu_info(
    stream: str = "pmu1",
    asset: str = "bus1",
    rate_hz: float = 60.0,
    f_nom: float = 60.0,
    v_nominal: float = 0.0,
) -> StreamInfo:
    """A PMU as the C37.118 adapter reports it: VA/VB/VC, IA/IB/IC, freq, rocof.

    CFG-2 carries no nominal voltage, so ``v_nominal`` is 0 (unknown) unless given."""
    chans: list[ChannelInfo] = []
    for q, unit, nom in (("V", "V", v_nominal), ("I", "A", 0.0)):
        for ph in "ABC":
            name = f"{q}{ph}"
            chans.append(ChannelInfo(f"{name}.mag", ChannelKind.MAGNITUDE, unit, name, ph, nom))
            chans.append(ChannelInfo(f"{name}.ang", ChannelKind.ANGLE, "rad", name, ph))
    chans.append(ChannelInfo("freq", ChannelKind.FREQUENCY, "Hz", nominal=f_nom))
    chans.append(ChannelInfo("rocof", ChannelKind.ROCOF, "Hz/s"))
    return StreamInfo(stream, "sim", asset, tuple(chans), rate_hz=rate_hz, nominal_hz=f_nom)


def pmu_batch(
    info: StreamInfo,
    n: int,
    *,
    start_frame: int = 0,
    v_pu: float | np.ndarray = 1.0,
    f_hz: float | np.ndarray | None = None,
    v2_pu: float = 0.0,
    angle_step_rad: np.ndarray | None = None,
) -> SampleBatch:
    """``n`` rows from frame ``start_frame`` after ``T0_NS``: a balanced set scaled by
    ``v_pu`` plus a negative-sequence ``v2_pu``; angles turn with ``f_hz - f_nom``;
    ``angle_step_rad`` (n,) is added to every phase angle (a phase jump)."""
    rate, f_nom = info.rate_hz, info.nominal_hz
    k = np.arange(start_frame, start_frame + n)
    t_ns = T0_NS + np.rint(k * (1e9 / rate)).astype(np.int64)
    f = np.broadcast_to(np.asarray(f_nom if f_hz is None else f_hz, dtype=np.float64), (n,))
    t_s = k / rate
    dt = 1.0 / rate
    theta = 2 * np.pi * np.cumsum(f - f_nom) * dt + 2 * np.pi * (f[0] - f_nom) * t_s[0]
    if angle_step_rad is not None:
        theta = theta + angle_step_rad
    vals = np.zeros((n, len(info.channels)))
    v = np.broadcast_to(np.asarray(v_pu, dtype=np.float64), (n,))
    for p in range(3):
        shift = -2 * np.pi * p / 3
        pos = v * np.exp(1j * (theta + shift))
        neg = v2_pu * np.exp(1j * (theta - shift))  # a^2 <-> a: negative sequence
        ph = V_BASE * (pos + neg)
        vals[:, 2 * p], vals[:, 2 * p + 1] = np.abs(ph), np.angle(ph)
        vals[:, 6 + 2 * p] = I_BASE
        vals[:, 7 + 2 * p] = np.angle(np.exp(1j * (theta + shift - 0.2)))
    vals[:, 12] = f
    vals[:, 13] = np.gradient(f, dt) if n > 1 else 0.0
    return SampleBatch(info.stream, t_ns, vals, np.zeros(n, dtype=np.uint16))


def conformance_windows(count: int = 8, length: int = 30) -> list[Window]:
    """Windows from several PMUs: healthy, sagging, off-frequency, with bad rows."""
    out: list[Window] = []
    cfg = WindowConfig(length=length, hop=length)
    for p in range(count):
        info = pmu_info(f"pmu{p}", f"bus{p}")
        v = np.where(np.arange(2 * length + 1) > length + p, 1.0 - 0.05 * p, 1.0)
        b = pmu_batch(info, 2 * length + 1, v_pu=v, f_hz=60.0 + 0.3 * (p % 3))
        if p % 4 == 3:
            b.quality[length : length + length // 2] = int(Quality.SYNC_LOST)
        out.append(Windower(info, cfg).push(b)[-1])
    return out


def _nan_windows(windows: Sequence[Window]) -> list[Window]:
    return [Window(w.info, w.times_ns, np.full_like(w.values, np.nan), w.quality) for w in windows]


def check_detector(factory: Callable[[], Detector], windows: Sequence[Window]) -> float:
    """Assert the detector contract; return the mean cost per window in microseconds."""
    det = factory()
    assert isinstance(det.name, str) and det.name
    feats = pmu_features(windows)
    assert feats.shape == (len(windows), len(FEATURE_NAMES)) and feats.dtype == np.float64
    assert det.evaluate([], np.empty((0, len(FEATURE_NAMES)))) == []
    scores = det.evaluate(windows, feats)
    _check_scores(scores, windows)
    again = factory().evaluate(windows, feats)
    assert [_key(s) for s in again] == [_key(s) for s in scores], "not deterministic"
    nan_windows = _nan_windows(windows)
    nan_scores = det.evaluate(nan_windows, pmu_features(nan_windows))
    _check_scores(nan_scores, nan_windows)
    assert not any(s.active and s.kind != "data_quality" for s in nan_scores), "fault on NaN"
    start = time.perf_counter()
    for _ in range(5):
        det.evaluate(windows, feats)
    return (time.perf_counter() - start) / (5 * len(windows)) * 1e6


def _key(s: Score) -> tuple[object, ...]:
    return (s.stream, s.kind, s.active, s.clear, s.event_time_ns, repr(s.score), repr(s.evidence))


def _check_scores(scores: Sequence[Score], windows: Sequence[Window]) -> None:
    by_stream = {w.info.stream: w for w in windows}
    for s in scores:
        assert isinstance(s, Score) and s.stream in by_stream
        assert isinstance(s.score, float) and math.isfinite(s.score), "score must be finite"
        assert isinstance(s.active, bool) and isinstance(s.clear, bool)
        assert not (s.active and s.clear), "active and clear at once"
        assert s.window_start_ns <= s.event_time_ns <= s.window_end_ns
        assert s.kind and s.model and isinstance(s.evidence, dict)


def _rule(index: int) -> Callable[[], Detector]:
    return lambda: ThresholdRule(DEFAULT_RULES[index])


CONFORMANCE_DETECTORS: list[tuple[str, Callable[[], Detector]]] = [
    *((r.kind, _rule(i)) for i, r in enumerate(DEFAULT_RULES)),
    ("data_quality", DataQualityDetector),
]
