"""Site context of PMU windows for leave-one-grid-out validation (``tools/event_logo.py``).

The context is the service's (``edgepipe.pipeline.site.site_context``): this only makes
the group keys of a probe. The windows of all PMUs of a run that end on the same frame
form one moment, and ``pmus`` keeps a random subset of each run's PMUs as the site (a box
sees a few PMUs, not a whole grid): the windows of the other PMUs get the subset's
context, with their own sag as the share of its deepest.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from edgepipe.pipeline.features import FEATURE_INDEX
from edgepipe.pipeline.site import CONTEXT_NAMES, MIN_SAG
from edgepipe.pipeline.site import site_context as service_context

__all__ = ["CONTEXT_NAMES", "site_context"]

_SHARE = CONTEXT_NAMES.index("v_sag_share")
_DEEPEST = CONTEXT_NAMES.index("site_v_rel_min_min")


def _ids(a: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    return np.unique(a, return_inverse=True)[1].reshape(-1).astype(np.int64)


def _site_rows(
    run: npt.NDArray[np.int64], stream: npt.NDArray[np.int64], pmus: int, seed: int
) -> npt.NDArray[np.bool_]:
    """The rows of ``pmus`` streams drawn at random in each run (all if it has fewer)."""
    pairs, pair_of = np.unique(np.column_stack((run, stream)), axis=0, return_inverse=True)
    draw = np.random.default_rng(seed).random(len(pairs))
    order = np.lexsort((draw, pairs[:, 0]))  # by run, then by the draw
    starts = np.flatnonzero(np.r_[True, np.diff(pairs[order, 0]) != 0])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    chosen = np.zeros(len(pairs), dtype=bool)
    chosen[order[rank < pmus]] = True
    return chosen[pair_of.reshape(-1)]


def site_context(
    x: npt.NDArray[Any],
    run: npt.NDArray[Any],
    stream: npt.NDArray[Any],
    end: npt.NDArray[Any],
    *,
    pmus: int | None = None,
    seed: int = 0,
) -> npt.NDArray[np.float32]:
    """``(n, len(CONTEXT_NAMES))`` for feature rows ``x`` (columns of ``FEATURE_NAMES``)
    of the windows of stream ``stream`` of run ``run`` ending on frame ``end``. A window
    whose moment no site PMU reported gets NaN."""
    runs = _ids(run)
    keys = runs * (1 << 32) + end.astype(np.int64)
    if pmus is None:  # every PMU is the site: exactly what the service computes
        return service_context(x, keys).astype(np.float32)
    site = _site_rows(runs, _ids(stream), pmus, seed)
    sub = service_context(x[site], keys[site])
    moments, first = np.unique(keys[site], return_index=True)
    out = np.full((len(keys), len(CONTEXT_NAMES)), np.nan)
    if len(moments):
        pos = np.minimum(np.searchsorted(moments, keys), len(moments) - 1)
        found = moments[pos] == keys
        out[found] = sub[first[pos[found]]]
    with np.errstate(invalid="ignore"):  # each window's own sag against the site's deepest
        out[:, _SHARE] = (1 - x[:, FEATURE_INDEX["v_rel_min"]]) / np.maximum(
            1 - out[:, _DEEPEST], MIN_SAG
        )
    return out.astype(np.float32)
