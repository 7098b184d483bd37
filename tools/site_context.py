"""Site context of PMU windows for leave-one-grid-out validation (``tools/event_logo.py``).

The context itself is the service's (``edgepipe.pipeline.site.site_context``, the same
columns); this adds what a probe needs: the windows of all PMUs of a run that end on
the same frame form one moment, and ``pmus`` keeps a random subset of each run's PMUs
as the site (a box sees a few PMUs, not a whole grid), the windows of the other PMUs
getting the subset's context.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from edgepipe.pipeline.features import FEATURE_INDEX
from edgepipe.pipeline.site import CONTEXT_NAMES, MIN_SAG
from edgepipe.pipeline.site import site_context as service_context

__all__ = ["CONTEXT_NAMES", "site_context"]


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
    if pmus is None:  # every PMU is the site: exactly what the service computes
        _, runs = np.unique(run, return_inverse=True)
        keys = runs.reshape(-1).astype(np.int64) * (1 << 32) + end.astype(np.int64)
        return service_context(x, keys).astype(np.float32)
    names = ("v_rel_min", "freq_rel_min_hz", "freq_rel_max_hz", "v_pu_range", "v_rebound_rel")
    inputs = x[:, [FEATURE_INDEX[n] for n in (*names, "v_step_rel")]].astype(np.float64)
    inputs[np.isnan(inputs).any(axis=1)] = np.nan  # a window takes part whole or not at all
    inputs[:, -1] = np.maximum(inputs[:, -1], 0.0)  # the rising step (NaN stays NaN)
    cols_in = dict(zip(("vmin", "fmin", "fmax", "vr", "rb", "up"), inputs.T, strict=True))
    df = pl.DataFrame({"run": run, "stream": stream, "end": end, **cols_in}).fill_nan(None)
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
        rb_max=pl.col("rb").max(),
        up_max=pl.col("up").max(),
    )
    j = df.join(agg, on=["run", "end"], how="left", maintain_order="left")
    deepest = np.maximum(1 - j["vmin_min"].to_numpy(), MIN_SAG)
    share = (1 - x[:, FEATURE_INDEX["v_rel_min"]]) / deepest  # as the service: own sag
    cols = [j[c].to_numpy() for c in ("vmin_min", "vmin_med", "fmin_med", "fmax_med", "vr_med")]
    rises = [j[c].to_numpy() for c in ("rb_max", "up_max")]
    return np.column_stack([*cols, share, *rises]).astype(np.float32)
