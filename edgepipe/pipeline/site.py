"""Site context: what the site's other PMUs saw in the same window.

A fault sags the voltage deeply at the PMUs near it and little far away; a generator or
line trip moves every PMU's frequency and voltage a little, about equally. One PMU alone
often cannot tell a distant fault from a near trip; the site's PMUs together can. Windows
are aligned on event time, so the site's windows of one moment share their end time; the
columns below are computed over each such group:

- ``site_v_rel_min_min``: the deepest relative voltage of any PMU in the group;
- ``site_v_rel_min_median``, ``site_freq_rel_min_median``, ``site_freq_rel_max_median``,
  ``site_v_range_median``: the group's typical voltage sag, frequency dip and rise, and
  voltage span;
- ``v_sag_share``: this PMU's sag as a share of the deepest (1 at the PMU nearest a fault,
  about the same at every PMU for a trip);
- ``site_v_rebound_max``: the largest rebound (``v_rebound_rel``, a sharp voltage rise
  after the window's main step) of any PMU in the group: a cleared fault brings the
  voltage near it back in one frame, and no trip or load step does;
- ``site_v_step_up_max``: the largest main step (``v_step_rel``) that is a rise, of any PMU
  in the group (0 when every step is a drop): where the clearing is a PMU's largest step,
  it is not a rebound after it.

A window with a NaN in one of its own inputs takes no part in its group's aggregates; a
group with no valid window gives NaN. Training (``tools/train_events.py``) and the service
(``edgepipe.app.pipeline``) call the same ``site_context``; only the group keys differ
(a scenario run and a window end there, a window end here).
"""

from __future__ import annotations

__all__ = [
    "CONTEXT_NAMES",
    "SITE_FEATURE_NAMES",
    "SiteFeatures",
    "moment_ns",
    "site_context",
    "uses_site_context",
]

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from edgepipe.core import Window
from edgepipe.pipeline.features import FEATURE_INDEX, FEATURE_NAMES, pmu_features
from edgepipe.pipeline.ring import F64, I64

CONTEXT_NAMES: tuple[str, ...] = (
    "site_v_rel_min_min",
    "site_v_rel_min_median",
    "site_freq_rel_min_median",
    "site_freq_rel_max_median",
    "site_v_range_median",
    "v_sag_share",
    "site_v_rebound_max",
    "site_v_step_up_max",
)
# The columns a PMU model may name: the window's own, then its site context.
SITE_FEATURE_NAMES: tuple[str, ...] = FEATURE_NAMES + CONTEXT_NAMES
_INPUTS = [FEATURE_INDEX[k] for k in ("v_rel_min", "freq_rel_min_hz", "freq_rel_max_hz")]
_INPUTS += [FEATURE_INDEX[k] for k in ("v_pu_range", "v_rebound_rel", "v_step_rel")]
MIN_SAG = 1e-3  # the deepest sag below which the share is taken against this instead


def _group_medians(vals: F64, inverse: I64, groups: int) -> F64:
    """NaN-ignoring median of each column of ``vals`` (n, c) per group ``inverse``."""
    out = np.full((groups, vals.shape[1]), np.nan)
    for c in range(vals.shape[1]):
        v = vals[:, c]
        ok = ~np.isnan(v)
        g, v = inverse[ok], v[ok]
        order = np.lexsort((v, g))
        g, v = g[order], v[order]
        counts = np.bincount(g, minlength=groups)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        has = counts > 0
        lo = starts + np.maximum(counts - 1, 0) // 2
        hi = starts + counts // 2
        out[has, c] = (v[lo[has]] + v[np.minimum(hi[has], len(v) - 1)]) / 2
    return out


def site_context(features: F64, keys: npt.NDArray[np.int64]) -> F64:
    """``(n, len(CONTEXT_NAMES))`` for the pipeline's feature rows ``features`` (columns
    of ``FEATURE_NAMES``), grouped by ``keys`` (one integer per row: the window end)."""
    n = features.shape[0]
    if n == 0:
        return np.empty((0, len(CONTEXT_NAMES)))
    _, inverse = np.unique(keys, return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int64)
    groups = int(inverse.max()) + 1
    vals = features[:, _INPUTS].astype(np.float64)
    vals[np.isnan(vals).any(axis=1)] = np.nan  # a window takes part whole or not at all
    vmin = np.full(groups, np.inf)
    np.fmin.at(vmin, inverse, vals[:, 0])
    vmin[np.isinf(vmin)] = np.nan
    rises = np.full((groups, 2), -np.inf)  # the largest rebound and rising step
    np.fmax.at(rises, inverse, np.column_stack((vals[:, 4], np.maximum(vals[:, 5], 0.0))))
    rises[np.isinf(rises)] = np.nan
    med = _group_medians(vals[:, :4], inverse, groups)
    out = np.empty((n, len(CONTEXT_NAMES)))
    deepest = vmin[inverse]
    out[:, 0] = deepest
    out[:, 1:5] = med[inverse]
    with np.errstate(invalid="ignore"):
        out[:, 5] = (1 - features[:, _INPUTS[0]]) / np.maximum(1 - deepest, MIN_SAG)
    out[:, 6:8] = rises[inverse]
    return out


def uses_site_context(features: Iterable[str]) -> bool:
    """Whether a model with these input features needs the site context columns."""
    return not set(CONTEXT_NAMES).isdisjoint(features)


_NS = 1_000_000_000


def moment_ns(end_ns: int, rate_hz: float) -> int:
    """The nominal time of the frame a window ends on (C37.118.2 6.3: frames sit on the
    reporting-rate grid): the key of a site moment. PMUs whose time stamps differ by a
    TIME_BASE rounding, and gap windows, share it; a 30 frames/s PMU meets a 60 frames/s
    site on every other moment."""
    rate = int(rate_hz)
    if rate == rate_hz:
        sec, sub = divmod(end_ns, _NS)
        frame = sec * rate + round(sub * (rate / _NS))
        sec, k = divmod(frame, rate)
        return sec * _NS + round(k * (_NS / rate))
    return round(round(end_ns * (rate_hz / _NS)) * (_NS / rate_hz))


class SiteFeatures:
    """``pmu_features`` followed by the site context columns (``SITE_FEATURE_NAMES``).

    The windows of one moment (``moment_ns``) form a group. The feature rows of the
    windows already scored are kept for ``keep_ns`` of data time, so a window that comes
    after its moment was scored (its PMU was later than the site hold) still gets the
    context of the whole moment, not of itself alone.
    """

    def __init__(self, keep_ns: int) -> None:
        self.keep_ns = keep_ns
        self._seen: dict[int, list[F64]] = {}  # moment -> feature rows already scored
        self._newest = 0

    def __call__(self, windows: Sequence[Window]) -> F64:
        x = pmu_features(windows)
        moments = [moment_ns(w.end_ns, w.info.rate_hz) for w in windows]
        earlier = [(m, r) for m in dict.fromkeys(moments) for r in self._seen.get(m, ())]
        rows = np.vstack([x, *(r for _, r in earlier)]) if earlier else x
        keys = moments + [m for m, r in earlier for _ in range(r.shape[0])]
        ctx = site_context(rows, np.asarray(keys, dtype=np.int64))[: len(windows)]
        self._remember(moments, x)
        return np.hstack((x, ctx))

    def _remember(self, moments: list[int], x: F64) -> None:
        if not moments:
            return
        order = np.argsort(moments, kind="stable")
        sorted_m = np.asarray(moments)[order]
        cuts = np.flatnonzero(sorted_m[1:] != sorted_m[:-1]) + 1
        for idx in np.split(order, cuts):
            self._seen.setdefault(moments[int(idx[0])], []).append(x[idx])
        self._newest = max(self._newest, int(sorted_m[-1]))
        floor = self._newest - self.keep_ns
        for m in [m for m in self._seen if m < floor]:
            del self._seen[m]
