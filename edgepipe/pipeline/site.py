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
  about the same at every PMU for a trip).

A window with a NaN in one of its own inputs takes no part in its group's aggregates; a
group with no valid window gives NaN. Training (``tools/train_events.py``) and the service
(``edgepipe.app.pipeline``) call the same ``site_context``; only the group keys differ
(a scenario run and a window end there, a window end here).
"""

from __future__ import annotations

__all__ = [
    "CONTEXT_NAMES",
    "SITE_FEATURE_NAMES",
    "SiteHold",
    "pmu_site_features",
    "site_context",
    "uses_site_context",
]

import math
from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

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
)
# The columns a PMU model may name: the window's own, then its site context.
SITE_FEATURE_NAMES: tuple[str, ...] = FEATURE_NAMES + CONTEXT_NAMES
_INPUTS = [FEATURE_INDEX[k] for k in ("v_rel_min", "freq_rel_min_hz", "freq_rel_max_hz")]
_INPUTS.append(FEATURE_INDEX["v_pu_range"])
T = TypeVar("T")
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
    med = _group_medians(vals, inverse, groups)
    out = np.empty((n, len(CONTEXT_NAMES)))
    deepest = vmin[inverse]
    out[:, 0] = deepest
    out[:, 1:5] = med[inverse]
    with np.errstate(invalid="ignore"):
        out[:, 5] = (1 - features[:, _INPUTS[0]]) / np.maximum(1 - deepest, MIN_SAG)
    return out


def uses_site_context(features: Iterable[str]) -> bool:
    """Whether a model with these input features needs the site context columns."""
    return not set(CONTEXT_NAMES).isdisjoint(features)


def pmu_site_features(windows: Sequence[Window]) -> F64:
    """``pmu_features`` followed by the site context columns (``SITE_FEATURE_NAMES``),
    the windows that end together forming one moment of the site."""
    x = pmu_features(windows)
    keys = np.fromiter((w.end_ns for w in windows), np.int64, len(windows))
    return np.hstack((x, site_context(x, keys)))


class SiteHold(Generic[T]):
    """Holds each window end until every stream of the site has delivered it.

    The site's streams are those announced (``join``) and not reported gone (``leave``:
    quiet or disconnected). A stream is waited for while its newest window end is within
    ``stale_ns`` of the site's newest, or, if it has delivered nothing yet, while it
    joined less than ``stale_ns`` of data time ago. An end ``e`` is released when every
    waited-for stream's newest end is at or after ``e`` (a stream's windows come in
    order: it has nothing more for ``e``), or when the site's newest end has passed
    ``e + hold_ns`` (counted in ``released_late``): a late PMU delays the others by at
    most ``hold_ns``. Both are data time, so a replay groups exactly as the live run did.
    """

    def __init__(self, hold_ns: int, stale_ns: int) -> None:
        self.hold_ns = hold_ns
        self.stale_ns = stale_ns
        self._newest: dict[str, int | None] = {}
        self._joined_at: dict[str, int | None] = {}  # the site's newest end at join
        self._gone: dict[str, int | None] = {}  # newest end of a stream that left
        self._top: int | None = None
        self._waiting: dict[int, list[tuple[str, T]]] = {}
        self.released_late = 0

    def join(self, stream: str) -> None:
        """``stream`` is (again) one of the site's; a returning stream has delivered what
        it delivered before it left, and is waited for from there on."""
        if stream not in self._newest:
            self._newest[stream] = self._gone.pop(stream, None)
            self._joined_at[stream] = self._top

    def leave(self, stream: str) -> None:
        if stream in self._newest:
            self._gone[stream] = self._newest.pop(stream)
            self._joined_at.pop(stream, None)

    @property
    def held(self) -> int:
        return sum(len(v) for v in self._waiting.values())

    def holds(self, stream: str, end_ns: int) -> bool:
        """Whether the window of ``stream`` ending at ``end_ns`` is held."""
        return any(s == stream for s, _ in self._waiting.get(end_ns, ()))

    def add(self, stream: str, end_ns: int, item: T) -> None:
        """Hold ``item``, the window of ``stream`` ending at ``end_ns``."""
        self.join(stream)
        seen = self._newest[stream]
        if seen is None or end_ns > seen:
            self._newest[stream] = end_ns
        if self._top is None:  # the first window: streams announced before it join now
            self._joined_at = dict.fromkeys(self._joined_at, end_ns)
        if self._top is None or end_ns > self._top:
            self._top = end_ns
        self._waiting.setdefault(end_ns, []).append((stream, item))

    def _complete(self, top: int) -> float:
        """The newest end every waited-for stream has delivered."""
        floor = top - self.stale_ns
        complete: float = top
        for stream, seen in self._newest.items():
            if seen is None:
                joined = self._joined_at[stream]
                if joined is not None and joined >= floor:
                    return -math.inf  # a new stream, nothing from it yet: wait for it
            elif seen >= floor:
                complete = min(complete, seen)
        return complete

    def release(self) -> list[T]:
        """Items of the window ends now complete, oldest end first."""
        if not self._waiting or self._top is None:
            return []
        top = self._top
        complete = self._complete(top)
        out: list[T] = []
        for end in sorted(self._waiting):
            if end <= complete:
                out.extend(item for _, item in self._waiting.pop(end))
            elif end + self.hold_ns <= top:
                out.extend(item for _, item in self._waiting.pop(end))
                self.released_late += 1
            else:
                break
        return out

    def drain(self) -> list[T]:
        """Everything held, oldest end first (the service stops or reconfigures)."""
        out = [item for end in sorted(self._waiting) for _, item in self._waiting[end]]
        self._waiting.clear()
        return out
