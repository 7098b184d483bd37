"""Site context of PMU windows: what the other PMUs of the same run saw at the same moment.

A probe for leave-one-grid-out validation (``rf-12-ctx`` in ``tools/event_logo.py``), not
yet in the service (docs/scenarios.md, "Several PMUs at once"): each window gets six
columns computed over the windows of all PMUs of its run that end on the same frame (the
windows are aligned on event time, so a site's PMUs share their window ends):

- ``site_v_rel_min_min``: the deepest relative voltage of any PMU;
- ``site_v_rel_min_median``, ``site_freq_rel_min_median``, ``site_freq_rel_max_median``,
  ``site_v_range_median``: the site's typical voltage sag, frequency dip and rise and
  voltage span;
- ``v_sag_share``: this PMU's sag as a share of the deepest (1 at the PMU nearest a fault,
  about the same at every PMU for a trip).

``pmus`` keeps a random subset of each run's PMUs as the site (a box sees a few PMUs, not
a whole grid); the windows of the other PMUs get the subset's context.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from edgepipe.pipeline.features import FEATURE_INDEX

CONTEXT_NAMES = (
    "site_v_rel_min_min",
    "site_v_rel_min_median",
    "site_freq_rel_min_median",
    "site_freq_rel_max_median",
    "site_v_range_median",
    "v_sag_share",
)
_MIN_SAG = 1e-3  # the deepest sag below which the share is taken against this instead


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
    df = pl.DataFrame(
        {
            "run": run,
            "stream": stream,
            "end": end,
            "vmin": x[:, FEATURE_INDEX["v_rel_min"]],
            "fmin": x[:, FEATURE_INDEX["freq_rel_min_hz"]],
            "fmax": x[:, FEATURE_INDEX["freq_rel_max_hz"]],
            "vr": x[:, FEATURE_INDEX["v_pu_range"]],
        }
    )
    site = df
    if pmus is not None:
        streams = df.select("run", "stream").unique().sort("run", "stream")
        draw = np.random.default_rng(seed).random(streams.height)
        pick = streams.with_columns(r=pl.Series(draw)).sort("r").group_by("run").head(pmus)
        site = df.join(pick.select("run", "stream"), on=["run", "stream"])
    agg = site.group_by("run", "end").agg(
        vmin_min=pl.col("vmin").min(),
        vmin_med=pl.col("vmin").median(),
        fmin_med=pl.col("fmin").median(),
        fmax_med=pl.col("fmax").median(),
        vr_med=pl.col("vr").median(),
    )
    j = df.join(agg, on=["run", "end"], how="left", maintain_order="left")
    deepest = np.maximum(1 - j["vmin_min"].to_numpy(), _MIN_SAG)
    share = (1 - j["vmin"].to_numpy()) / deepest
    cols = [j[c].to_numpy() for c in ("vmin_min", "vmin_med", "fmin_med", "fmax_med", "vr_med")]
    return np.column_stack([*cols, share]).astype(np.float32)
