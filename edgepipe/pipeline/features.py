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

__all__ = [
    "FEATURE_INDEX",
    "FEATURE_NAMES",
    "pmu_features",
    "row_signals",
    "window_assets",
]

from collections.abc import Callable, Sequence

import numpy as np

from edgepipe.core import BAD_QUALITY, Window
from edgepipe.pipeline._layout import Layout, PhasorSet, layout_of
from edgepipe.pipeline._rows import Rows, shared_rows, stacked
from edgepipe.pipeline.event_shape import SHAPE_NAMES, shape_features
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
    # Relative to the pre-event state (median of the window's first quarter) whatever the
    # per-unit base: the same value on any grid, with or without a configured nominal.
    "v_rel_min",
    "v_rel_max",
    "v_rel_last",
    "freq_rel_min_hz",
    "freq_rel_max_hz",
    "freq_rel_last_hz",
    # Around the window's largest voltage step (event_shape.py): the event's shape.
    *SHAPE_NAMES,
)
FEATURE_INDEX: dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}

_TWO_PI = 2 * np.pi
_NS = 1e9


def _mean(x: F64) -> F64:
    """NaN-ignoring mean over the last axis (NaN when nothing is left), no warnings."""
    ok = ~np.isnan(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.add.reduce(np.where(ok, x, 0.0), axis=-1) / np.add.reduce(ok, axis=-1)  # type: ignore[no-any-return]


def _std(x: F64) -> F64:
    dev = x - _mean(x)[..., None]
    return np.sqrt(_mean(dev * dev))


def _last(x: F64) -> F64:
    """The last non-NaN value along the last axis (NaN when there is none)."""
    idx = x.shape[-1] - 1 - np.argmax(~np.isnan(x[..., ::-1]), axis=-1)
    return np.take_along_axis(x, idx[..., None], axis=-1)[..., 0]


def _pre(x: F64) -> F64:
    """The pre-event state per row of ``x`` (..., L): the median of the first quarter."""
    quarter = max(1, x.shape[-1] // 4)
    # np.nanmedian goes through masked arrays (~0.5 ms a call): sort instead, NaN last.
    srt = np.sort(x[..., :quarter], axis=-1)
    cnt = np.count_nonzero(~np.isnan(srt), axis=-1)
    lo, hi = np.maximum(cnt - 1, 0) // 2, np.maximum(cnt, 1) // 2
    mid = np.take_along_axis(srt, lo[..., None], -1) + np.take_along_axis(srt, hi[..., None], -1)
    return np.where(cnt > 0, mid[..., 0] / 2, np.nan)


def _base(mag: F64, nominal: float) -> F64:
    """Per-unit base per window: the nominal, else the median of the first quarter."""
    if nominal > 0:
        return np.full(mag.shape[0], nominal)
    base = _pre(mag)
    return np.where(base > 0, base, np.nan)


_S = np.sqrt(3) / 2  # sin 120 deg: the operator a = -1/2 + j sqrt(3)/2


def _fortescue(ph: F64) -> tuple[F64, F64, F64, F64]:
    """|X1|, |X2|, |X0| and the angle of X1 per row, with real arithmetic (complex exp is
    several times slower here)."""
    re, im = ph[0], ph[1]  # (2, ..., 3) -> each (..., 3)
    ar, br, cr = re[..., 0], re[..., 1], re[..., 2]
    ai, bi, ci = im[..., 0], im[..., 1], im[..., 2]
    x1r = (ar - 0.5 * (br + cr) - _S * (bi - ci)) / 3
    x1i = (ai - 0.5 * (bi + ci) + _S * (br - cr)) / 3
    x2r = (ar - 0.5 * (br + cr) + _S * (bi - ci)) / 3
    x2i = (ai - 0.5 * (bi + ci) - _S * (br - cr)) / 3
    # sqrt(x*x + y*y), not np.hypot: hypot's overflow care costs 10x here.
    x1 = np.sqrt(x1r * x1r + x1i * x1i)
    x2 = np.sqrt(x2r * x2r + x2i * x2i)
    x0r, x0i = ar + br + cr, ai + bi + ci
    x0 = np.sqrt(x0r * x0r + x0i * x0i) / 3
    return x1, x2, x0, np.arctan2(x1i, x1r)


Gather = Callable[[np.ndarray], np.ndarray]
Shape = tuple[int, int]


def _quantity(
    vals: F64, ps: PhasorSet | None, out: dict[str, F64], prefix: str, *, g: Gather, shape: Shape
) -> None:
    """Per-row per-unit magnitude, angle, sequence components and unbalance of one set:
    row-wise arithmetic on ``vals`` rows, the per-window base after ``g`` (``Rows.gather``)."""
    nan = np.full(shape, np.nan)
    mag: F64 = nan
    angle: F64 = nan
    seq = (nan, nan, nan)
    if ps is not None:
        mags = vals[..., list(ps.mags)]
        if ps.mode == "abc" and ps.has_angles:
            ang = vals[..., list(ps.angles)]
            x1, x2, x0, angle = (g(a) for a in _fortescue(
                np.stack((mags * np.cos(ang), mags * np.sin(ang)))
            ))  # fmt: skip
            base = _base(x1, ps.nominal)[:, None]
            seq = (x1 / base, x2 / base, x0 / base)
            mag = seq[0]
        else:
            raw = g(mags[..., 0] if mags.shape[-1] == 1 else _mean(mags))
            mag = raw / _base(raw, ps.nominal)[:, None]
            if ps.angles and ps.angles[0] >= 0:
                angle = g(vals[..., ps.angles[0]])
    out[f"{prefix}_pu"] = mag
    out[f"{prefix}1_pu"], out[f"{prefix}2_pu"], out[f"{prefix}0_pu"] = seq
    with np.errstate(invalid="ignore", divide="ignore"):
        out[f"{prefix}_unbalance_pct"] = 100.0 * seq[1] / seq[0]
    out[f"{prefix}_angle"] = angle


def _signals(rows: Rows, lay: Layout) -> dict[str, F64]:
    """Per-row signals (n, L) of stacked windows: the basis of features and event times.

    What depends on one row only is computed once per row of ``rows`` (windows overlap),
    then gathered into windows; what depends on the window (per-unit base, steps, time
    since the window start) is computed on the gathered (n, L) arrays.
    """
    vals, quality, g = rows.values, rows.quality, rows.gather
    times = rows.window_times
    shape = (times.shape[0], times.shape[1])
    isn = np.isnan(vals)
    bad = (quality & np.uint16(BAD_QUALITY)) != 0
    c = max(vals.shape[-1], 1)
    nan_frac: F64 = np.add.reduce(isn, axis=-1) / c
    out: dict[str, F64] = {
        "bad": g(bad.astype(np.float64)),
        "missing": g(np.asarray(isn.all(axis=-1), dtype=np.float64)),
    }
    if bad.any():  # the common case has no bad row: skip a full-size copy
        vals = np.where(bad[..., None], np.nan, vals)
        nan_frac = np.where(bad, 1.0, nan_frac).astype(np.float64)
    out["nan"] = g(nan_frac)
    _quantity(vals, lay.voltage, out, "v", g=g, shape=shape)
    _quantity(vals, lay.current, out, "i", g=g, shape=shape)
    nan = np.full(shape, np.nan)
    f = g(vals[..., lay.freq]) if lay.freq >= 0 else nan
    f_nom = lay.f_nominal if lay.f_nominal > 0 else np.nan
    out["freq_dev_hz"] = f - f_nom
    t = (times - times[:, :1]).astype(np.float64) / _NS
    dt = np.diff(t, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        computed = np.concatenate((nan[:, :1], np.diff(f, axis=1) / dt), axis=1)
    reported = g(vals[..., lay.rocof]) if lay.rocof >= 0 else nan
    out["rocof_computed_hz_s"] = computed
    out["rocof_reported_hz_s"] = reported
    out["rocof_hz_s"] = np.where(np.isnan(reported), computed, reported)
    out["t_s"] = t
    # Angle step against the rotation the measured frequency implies (C37.118.1-2011
    # 4.2: a phasor reported at f != f0 turns by 2 pi (f - f0) per second).
    f_mid = (f[:, 1:] + f[:, :-1]) / 2
    dev = np.nan_to_num(f_mid - f_nom) if lay.f_nominal > 0 else np.zeros_like(f_mid)
    rot = 2 * np.pi * dev * dt
    step = np.diff(out["v_angle"], axis=1) - rot
    step -= _TWO_PI * np.rint(step / _TWO_PI)  # wrap into [-pi, pi]
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
        return np.where(cnt >= 2, num / den, np.nan)


_SPREAD = ("v_pu", "i_pu", "freq_dev_hz")
_MEANS = ("v1_pu", "v2_pu", "v0_pu", "i1_pu", "i2_pu", "i0_pu")
_PEAKS = (
    "v_unbalance_pct",
    "i_unbalance_pct",
    "rocof_reported_hz_s",
    "rocof_computed_hz_s",
    "rocof_hz_s",
    "angle_jump_deg",
)
_FRACS = ("bad", "missing", "nan")
_COLS = {
    "min": [FEATURE_INDEX[k] for k in ("v_pu_min", "freq_dev_min_hz")],
    "max": [FEATURE_INDEX[k] for k in ("v_pu_max", "i_pu_max", "freq_dev_max_hz")],
    "last": [FEATURE_INDEX[k] for k in ("v_pu_last", "i_pu_last", "freq_dev_last_hz")],
    "std": [FEATURE_INDEX[k] for k in ("v_pu_std", "i_pu_std", "freq_std_hz")],
    "range": [FEATURE_INDEX[k] for k in ("v_pu_range", "i_pu_range", "freq_range_hz")],
    "means": [FEATURE_INDEX[k] for k in ("v1_pu", "v2_pu", "v0_pu", "i1_pu", "i2_pu", "i0_pu")],
    "peaks": [
        FEATURE_INDEX[k]
        for k in (
            "v_unbalance_pct",
            "i_unbalance_pct",
            "rocof_reported_abs_max_hz_s",
            "rocof_computed_abs_max_hz_s",
            "rocof_abs_max_hz_s",
            "angle_jump_deg",
        )
    ],
    "fracs": [FEATURE_INDEX[k] for k in ("bad_quality_frac", "missing_frac", "nan_frac")],
    "v_rel": [FEATURE_INDEX[k] for k in ("v_rel_min", "v_rel_max", "v_rel_last")],
    "f_rel": [FEATURE_INDEX[k] for k in ("freq_rel_min_hz", "freq_rel_max_hz", "freq_rel_last_hz")],
}
_SHAPE = slice(FEATURE_INDEX[SHAPE_NAMES[0]], FEATURE_INDEX[SHAPE_NAMES[-1]] + 1)
_V_STATS = [FEATURE_INDEX[k] for k in ("v_pu_min", "v_pu_max", "v_pu_last")]
_F_STATS = [FEATURE_INDEX[k] for k in ("freq_dev_min_hz", "freq_dev_max_hz", "freq_dev_last_hz")]


def _reduce(s: dict[str, F64]) -> F64:
    """Window features from per-row signals: few numpy calls over stacked signals, since
    call overhead, not arithmetic, dominates at a window's size."""
    n = s["v_pu"].shape[0]
    out = np.empty((n, len(FEATURE_NAMES)))
    spread = np.stack([s[k] for k in _SPREAD])  # (3, n, L)
    lo, hi = np.fmin.reduce(spread, axis=2), np.fmax.reduce(spread, axis=2)
    out[:, _COLS["min"]] = lo[[0, 2]].T
    out[:, _COLS["max"]] = hi.T
    out[:, _COLS["last"]] = _last(spread).T
    out[:, _COLS["std"]] = _std(spread).T
    out[:, _COLS["range"]] = (hi - lo).T
    out[:, _COLS["means"]] = _mean(np.stack([s[k] for k in _MEANS])).T
    out[:, _COLS["peaks"]] = np.fmax.reduce(np.abs(np.stack([s[k] for k in _PEAKS])), axis=2).T
    out[:, _COLS["fracs"]] = (
        np.add.reduce(np.stack([s[k] for k in _FRACS]), axis=2).T / s["bad"].shape[1]
    )
    out[:, FEATURE_INDEX["rocof_fit_hz_s"]] = _slope(s["t_s"], s["freq_dev_hz"])
    pre = _pre(spread[[0, 2]])  # (2, n): voltage and frequency before the event
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, _COLS["v_rel"]] = out[:, _V_STATS] / pre[0][:, None]
    out[:, _COLS["f_rel"]] = out[:, _F_STATS] - pre[1][:, None]
    out[:, _SHAPE] = shape_features(s["v_pu"], s["freq_dev_hz"])
    return out


# The per-row signals of the last ``pmu_features`` call, by window identity, so that a
# rule locating a threshold crossing in the same windows does not recompute them.
_MEMO: list[tuple[list[Window], dict[str, F64]]] = []
_MEMO_INDEX: dict[int, tuple[Window, dict[str, F64], int]] = {}
_ASSETS: list[tuple[Sequence[Window], list[str]]] = []


def window_assets(windows: Sequence[Window]) -> list[str]:
    """``[w.info.asset ...]``, free when ``windows`` is the very sequence given to the last
    ``pmu_features`` call (every detector asks for it)."""
    if _ASSETS and _ASSETS[0][0] is windows:
        return _ASSETS[0][1]
    return [w.info.asset for w in windows]


def pmu_features(windows: Sequence[Window]) -> F64:
    """Features of each window, shape ``(len(windows), len(FEATURE_NAMES))``, float64."""
    out = np.full((len(windows), len(FEATURE_NAMES)), np.nan)
    groups: dict[tuple[int, int], list[int]] = {}
    layouts: dict[int, Layout] = {}
    assets: list[str] = []
    streams: dict[int, tuple[str, int]] = {}  # id(info) -> (asset, id(layout))
    for k, w in enumerate(windows):
        seen = streams.get(id(w.info))
        if seen is None:
            lay = layout_of(w.info)  # interned: equal layouts are one object
            layouts[id(lay)] = lay
            seen = streams[id(w.info)] = (w.info.asset, id(lay))
        assets.append(seen[0])
        groups.setdefault((seen[1], w.times_ns.shape[0]), []).append(k)
    _MEMO.clear()
    _MEMO_INDEX.clear()
    _ASSETS.clear()
    for (lay_id, length), idx in groups.items():
        if length < 2:
            continue  # no steps, no spread (or not a valid window): all NaN
        group = [windows[k] for k in idx]
        sig = _signals(shared_rows(group), layouts[lay_id])
        out[idx] = _reduce(sig)
        _MEMO.append((group, sig))
    _ASSETS.append((windows, assets))
    return out


def row_signals(window: Window) -> dict[str, F64]:
    """Per-row signals of one window (shape (L,)), for locating threshold crossings.

    Keys: ``v_pu``, ``i_pu``, ``v_unbalance_pct``, ``freq_dev_hz``, ``rocof_hz_s``,
    ``angle_jump_deg`` (step into this row), ``bad``, ``missing``, ``nan`` and more.
    Served from the last ``pmu_features`` call when it covered ``window``.
    """
    if _MEMO and not _MEMO_INDEX:  # built on first use: most flushes never ask
        for group, sig in _MEMO:
            for row, w in enumerate(group):
                _MEMO_INDEX[id(w)] = (w, sig, row)
    hit = _MEMO_INDEX.get(id(window))
    if hit is not None and hit[0] is window:
        sig, row = hit[1], hit[2]
        return {k: v[row] for k, v in sig.items()}
    lay = layout_of(window.info)
    s = _signals(stacked([window]), lay)
    return {k: v[0] for k, v in s.items()}
