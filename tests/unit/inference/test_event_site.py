"""train_events.with_context's random sites (tools/event_site.py): every PMU of a run in
exactly one site of k, and the context of a window computed over its site only (the
numbers in docs/scenarios.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgepipe.pipeline.features import FEATURE_INDEX, FEATURE_NAMES
from edgepipe.pipeline.site import CONTEXT_NAMES, SITE_FEATURE_NAMES

sys.path[:0] = [str(Path(__file__).resolve().parents[3] / "tools")]

from scenarios.dataset import WindowSet  # noqa: E402
from train_events import with_context  # noqa: E402

DEEPEST = SITE_FEATURE_NAMES.index("site_v_rel_min_min")


def _set(pmus: int, runs: int = 2) -> WindowSet:
    """``runs`` runs of ``pmus`` PMUs, one window each at frame 30; PMU p sags to 1 - p/100."""
    n = pmus * runs
    x = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    p = np.tile(np.arange(pmus), runs)
    x[:, FEATURE_INDEX["v_rel_min"]] = 1 - p / 100
    x[:, FEATURE_INDEX["v_pu_range"]] = p / 100
    scenario = np.repeat([f"case-fault-{r}" for r in range(runs)], pmus)
    return WindowSet(
        x=x,
        y=np.zeros(n, dtype=np.int64),
        scenario=scenario,
        case=np.full(n, "case"),
        bus=p.astype(np.int64),
        pmu_key=np.array([f"{s}/{b}" for s, b in zip(scenario, p, strict=True)]),
        end_frame=np.full(n, 30, dtype=np.int64),
        start_frame=np.full(n, -1, dtype=np.int64),
        kind=np.zeros(n, dtype=np.int64),
    )


def test_sites_of_k_split_each_run_and_give_context_from_the_site_only() -> None:
    ws = _set(pmus=7)
    whole = with_context(ws, 0)
    assert whole.x.shape[1] == len(FEATURE_NAMES) + len(CONTEXT_NAMES)
    np.testing.assert_allclose(whole.x[:, DEEPEST], 0.94)  # the deepest of all 7
    sites = with_context(ws, 3)
    for run in np.unique(ws.scenario):
        mine = ws.scenario == run
        deepest = sites.x[mine, DEEPEST]
        # 7 PMUs in sites of 3, 3 and 1: three distinct views, each the minimum of its own site
        assert len(np.unique(deepest)) == 3
        for d in np.unique(deepest):
            members = ws.x[mine][deepest == d, FEATURE_INDEX["v_rel_min"]]
            assert len(members) in (1, 3)
            np.testing.assert_allclose(members.min(), d, rtol=1e-6)
    alone = with_context(ws, 1)
    np.testing.assert_allclose(alone.x[:, DEEPEST], ws.x[:, FEATURE_INDEX["v_rel_min"]], rtol=1e-6)
