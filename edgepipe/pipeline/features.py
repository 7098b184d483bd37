"""PMU window features: the one function used for training and for inference.

Magnitudes are per unit (base: the channel ``nominal`` when known, else the median of the
window's first quarter, i.e. relative to the pre-event state, so a model trained on one
network applies to another). Sequence components use the Fortescue transform
(IEC 60050-161, symmetrical components): ``X1 = (Xa + a Xb + a^2 Xc) / 3``,
``X2 = (Xa + a^2 Xb + a Xc) / 3``, ``X0 = (Xa + Xb + Xc) / 3`` with ``a = exp(j 2pi/3)``.
Rows flagged with any ``BAD_QUALITY`` bit are masked to NaN before anything is computed,
so invalid data never moves a feature; the fractions of bad rows, gap rows and NaN values
are features of their own. A feature that cannot be computed is NaN.

Windows of the same layout and length are stacked and computed in one pass, so a batch of
windows from many PMUs costs a few numpy calls, not a loop per PMU.
"""

from __future__ import annotations

__all__ = ["FEATURE_INDEX", "FEATURE_NAMES", "pmu_features", "row_signals"]

import warnings
from collections.abc import Sequence

import numpy as np

from edgepipe.core import BAD_QUALITY, Window
from edgepipe.pipeline._layout import Layout, PhasorSet, layout_of
from edgepipe.pipeline.ring import F64

FEATURE_NAMES: tuple[str, ...] = (
    "v_pu_min",
    "v_pu_max",
    "v_pu_last",
    "v_pu_std",
    "v_pu_range",
    "v1_pu",
    "v2_pu",
    "v0_pu",
    "v_unbalance_pct",
    "i_pu_max",
    "i_pu_last",
    "i_pu_std",
    "i_pu_range",
    "i1_pu",
    "i2_pu",
    "i0_pu",
    "i_unbalance_pct",
    "freq_dev_min_hz",
    "freq_dev_max_hz",
    "freq_dev_last_hz",
    "freq_std_hz",
    "freq_range_hz",
    "rocof_reported_abs_max_hz_s",
    "rocof_computed_abs_max_hz_s",
    "rocof_fit_hz_s",
    "rocof_abs_max_hz_s",
    "angle_jump_deg",
    "bad_quality_frac",
    "missing_frac",
    "nan_frac",
)
FEATURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}

_A = np.exp(2j * np.pi / 3)
_NS = 1e9


def _mean(x: F64) -> F64:
    count = np.count_nonzero(~np.isnan(x), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(x, axis=1) / count  # type: ignore[no-any-return]


def _std(x: F64) -> F64:
    dev = x - _mean(x)[:, None]
    return np.sqrt(_mean(dev * dev))


def _last(x: F64) -> F64:
    """The last non-NaN value of each row (NaN when there is none)."""
    finite = ~np.isnan(x[:, ::-1])
    idx = x.shape[1] - 1 - np.argmax(finite, axis=1)
    return x[np.arange(x.shape[0]), idx]  # type: ignore[no-any-return]


def _base(mag: F64, nominal: float) -> F64:
    """Per-unit base per window: the nominal, else the median of the first quarter."""
    if nominal > 0:
        return np.full(mag.shape[0], nominal)
    quarter = max(1, mag.shape[1] // 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN quarter -> NaN base
        base = np.nanmedian(mag[:, :quarter], axis=1)
    return np.where(base > 0, base, np.nan)  # type: ignore[no-any-return]


def _quantity(vals: F64, ps: PhasorSet | None, out: dict[str, F64], prefix: str) -> None:
    """Per-row per-unit magnitude, angle, sequence components and unbalance of one set."""
    n, length = vals.shape[:2]
    nan = np.full((n, length), np.nan)
    mag: F64 = nan
    angle: F64 = nan
    seq = (nan, nan, nan)
    if ps is not None:
        mags = vals[:, :, list(ps.mags)]
        if ps.mode == "abc" and ps.has_angles:
            ph = mags * np.exp(1j * vals[:, :, list(ps.angles)])
            a, b, c = ph[..., 0], ph[..., 1], ph[..., 2]
            x1 = (a + _A * b + _A * _A * c) / 3
            x2 = (a + _A * _A * b + _A * c) / 3
            x0 = (a + b + c) / 3
            base = _base(np.abs(x1), ps.nominal)[:, None]
            seq = (np.abs(x1) / base, np.abs(x2) / base, np.abs(x0) / base)
            mag, angle = seq[0], np.angle(x1)
        else:
            raw = mags[..., 0] if mags.shape[2] == 1 else _mean_axis2(mags)
            mag = raw / _base(raw, ps.nominal)[:, None]
            if ps.angles and ps.angles[0] >= 0:
                angle = vals[:, :, ps.angles[0]]
    out[f"{prefix}_pu"] = mag
    out[f"{prefix}1_pu"], out[f"{prefix}2_pu"], out[f"{prefix}0_pu"] = seq
    with np.errstate(invalid="ignore", divide="ignore"):
        out[f"{prefix}_unbalance_pct"] = 100.0 * seq[1] / seq[0]
    out[f"{prefix}_angle"] = angle


def _mean_axis2(x: F64) -> F64:
    count = np.count_nonzero(~np.isnan(x), axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(x, axis=2) / count  # type: ignore[no-any-return]


def _signals(vals: F64, quality: np.ndarray, times: np.ndarray, lay: Layout) -> dict[str, F64]:
    """Per-row signals (n, L) of stacked windows: the basis of features and event times."""
    n, length = vals.shape[:2]
    missing = np.isnan(vals).all(axis=2)
    bad = (quality & np.uint16(BAD_QUALITY)) != 0
    vals = np.where(bad[..., None], np.nan, vals)
    out: dict[str, F64] = {"bad": bad.astype(np.float64), "missing": missing.astype(np.float64)}
    out["nan"] = np.isnan(vals).mean(axis=2) if vals.shape[2] else np.zeros((n, length))
    _quantity(vals, lay.voltage, out, "v")
    _quantity(vals, lay.current, out, "i")
    nan = np.full((n, length), np.nan)
    f = vals[:, :, lay.freq] if lay.freq >= 0 else nan
    f_nom = lay.f_nominal if lay.f_nominal > 0 else np.nan
    out["freq_dev_hz"] = f - f_nom
    t = (times - times[:, :1]).astype(np.float64) / _NS
    dt = np.diff(t, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        computed = np.concatenate((nan[:, :1], np.diff(f, axis=1) / dt), axis=1)
    reported = vals[:, :, lay.rocof] if lay.rocof >= 0 else nan
    out["rocof_computed_hz_s"] = computed
    out["rocof_reported_hz_s"] = reported
    out["rocof_hz_s"] = np.where(np.isnan(reported), computed, reported)
    out["t_s"] = t
    # Angle step against the rotation the measured frequency implies (C37.118.1-2011
    # 4.2: a phasor reported at f != f0 turns by 2 pi (f - f0) per second).
    f_mid = (f[:, 1:] + f[:, :-1]) / 2
    dev = np.nan_to_num(f_mid - f_nom) if lay.f_nominal > 0 else np.zeros_like(f_mid)
    rot = 2 * np.pi * dev * dt
    step = np.angle(np.exp(1j * (np.diff(out["v_angle"], axis=1) - rot)))
    out["angle_jump_deg"] = np.concatenate((nan[:, :1], np.degrees(np.abs(step))), axis=1)
    return out


def _slope(t: F64, y: F64) -> F64:
    ok = ~np.isnan(y)
    cnt = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tm = np.where(ok, t, 0).sum(axis=1) / cnt
        ym = np.where(ok, y, 0).sum(axis=1) / cnt
        dt = np.where(ok, t - tm[:, None], 0)
        num = (dt * np.where(ok, y - ym[:, None], 0)).sum(axis=1)
        den = (dt * dt).sum(axis=1)
        return np.where(cnt >= 2, num / den, np.nan)  # type: ignore[no-any-return]


def _reduce(s: dict[str, F64]) -> F64:
    v, i, fd = s["v_pu"], s["i_pu"], s["freq_dev_hz"]
    vmin, vmax = np.fmin.reduce(v, axis=1), np.fmax.reduce(v, axis=1)
    imin, imax = np.fmin.reduce(i, axis=1), np.fmax.reduce(i, axis=1)
    fmin, fmax = np.fmin.reduce(fd, axis=1), np.fmax.reduce(fd, axis=1)
    cols = (
        vmin, vmax, _last(v), _std(v), vmax - vmin,
        _mean(s["v1_pu"]), _mean(s["v2_pu"]), _mean(s["v0_pu"]),
        np.fmax.reduce(s["v_unbalance_pct"], axis=1),
        imax, _last(i), _std(i), imax - imin,
        _mean(s["i1_pu"]), _mean(s["i2_pu"]), _mean(s["i0_pu"]),
        np.fmax.reduce(s["i_unbalance_pct"], axis=1),
        fmin, fmax, _last(fd), _std(fd), fmax - fmin,
        np.fmax.reduce(np.abs(s["rocof_reported_hz_s"]), axis=1),
        np.fmax.reduce(np.abs(s["rocof_computed_hz_s"]), axis=1),
        _slope(s["t_s"], fd),
        np.fmax.reduce(np.abs(s["rocof_hz_s"]), axis=1),
        np.fmax.reduce(s["angle_jump_deg"], axis=1),
        s["bad"].mean(axis=1), s["missing"].mean(axis=1), s["nan"].mean(axis=1),
    )  # fmt: skip
    return np.stack(cols, axis=1)


def _stack(windows: Sequence[Window]) -> tuple[F64, np.ndarray, np.ndarray]:
    if len(windows) == 1:
        w = windows[0]
        return w.values[None], w.quality[None], w.times_ns[None]
    return (
        np.stack([w.values for w in windows]),
        np.stack([w.quality for w in windows]),
        np.stack([w.times_ns for w in windows]),
    )


def pmu_features(windows: Sequence[Window]) -> F64:
    """Features of each window, shape ``(len(windows), len(FEATURE_NAMES))``, float64."""
    out = np.full((len(windows), len(FEATURE_NAMES)), np.nan)
    groups: dict[tuple[Layout, int], list[int]] = {}
    for k, w in enumerate(windows):
        groups.setdefault((layout_of(w.info), len(w)), []).append(k)
    for (lay, length), idx in groups.items():
        if length < 2:
            continue  # a one-row window has no steps, no spread: all NaN
        vals, qual, times = _stack([windows[k] for k in idx])
        out[idx] = _reduce(_signals(vals, qual, times, lay))
    return out


def row_signals(window: Window) -> dict[str, F64]:
    """Per-row signals of one window (shape (L,)), for locating threshold crossings.

    Keys: ``v_pu``, ``i_pu``, ``v_unbalance_pct``, ``freq_dev_hz``, ``rocof_hz_s``,
    ``angle_jump_deg`` (step into this row), ``bad``, ``missing``, ``nan`` and more.
    """
    s = _signals(window.values[None], window.quality[None], window.times_ns[None], layout_of(window.info))
    return {k: v[0] for k, v in s.items()}
