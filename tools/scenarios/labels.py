"""Three label rules applied after windowing, to training and to every evaluation alike.

- **Collapsed runs.** A run whose voltages end far below where they started (median over
  PMUs of the last half second against the pre-event level below ``COLLAPSE_RATIO``) lost
  synchronism or collapsed after the event. About a third of the ieee14 faults do that
  in ANDES. Their windows teach "a sag that never recovers is a fault", which is what a
  large generator trip looks like on a small grid, and a collapse is none of the
  classifier's classes: the whole run is ``IGNORE``.
- **Faults a PMU cannot see.** ``visible`` (docs/scenarios.md) counts a PMU that sees a
  1 % voltage change, which is inside the noise of a 1 % TVE PMU. A PMU whose voltage
  never sags by ``FAULT_SAG`` during a fault cannot tell it from load noise, and labelling
  its windows "fault" teaches the model to call noise a fault (on a 140-bus grid, a third
  of the PMUs): its fault windows are ``IGNORE``, neither hits nor misses.
- **Event windows inside the ambient band.** An event window whose frequency spans less
  than ``AMBIENT_FREQ_RANGE_HZ`` and whose voltage spans less than ``AMBIENT_V_RANGE``
  shows nothing that the training grids' normal windows do not (99.9 % of them stay
  within 0.023 Hz and 0.020 pu; a 1 % TVE PMU alone spans 2 %): the tail of a decayed
  oscillation, a small load step on a big grid, the first frames of a remote fault.
  Labelled as events they taught the classifier to call a lively grid's ambient an
  oscillation (half of kundur's normal windows). They are ``IGNORE``, for every kind:
  kept for faults alone, they pull P(fault) up on ambient windows (false alarms at a
  raise of 0.5 in leave-one-grid-out validation). The classifier's graph applies the same
  band at inference (``tools/event_gate.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from edgepipe.pipeline.features import FEATURE_INDEX
from scenarios.dataset import IGNORE, WindowSet
from scenarios.spec import KINDS, RATE_HZ

COLLAPSE_RATIO = 0.8
FAULT_SAG = 0.97  # v_rel_min at or below this in some fault window: the PMU sees the sag
AMBIENT_FREQ_RANGE_HZ = 0.03  # an event window must span this much frequency...
AMBIENT_V_RANGE = 0.02  # ...or this much voltage (pu) to be labelled with its event


def collapsed_scenarios(paths: list[Path]) -> set[str]:
    """Scenario ids of the event runs in ``paths`` that end in a collapse."""
    out: set[str] = set()
    cols = ["scenario", "kind", "pmu", "frame", "v_mag_pu", "event_start_s"]
    for path in paths:
        df = pl.read_parquet(path, columns=cols)
        if df["kind"][0] == "normal":
            continue
        start = float(df["event_start_s"][0]) * RATE_HZ
        for (sid,), run in df.group_by(["scenario"]):
            last = int(run["frame"].max())  # type: ignore[arg-type]
            per_pmu = run.group_by("pmu").agg(
                pre=pl.col("v_mag_pu").filter(pl.col("frame") < start).median(),
                end=pl.col("v_mag_pu").filter(pl.col("frame") > last - RATE_HZ / 2).median(),
            )
            ratio = (per_pmu["end"] / per_pmu["pre"]).median()
            if ratio is not None and float(ratio) < COLLAPSE_RATIO:  # type: ignore[arg-type]
                out.add(str(sid))
    return out


def in_ambient_band(freq_range_hz: npt.NDArray[Any], v_range: npt.NDArray[Any]) -> Any:
    """Per window: spans less than the ambient band in both frequency and voltage (float32
    limits, as the exported graph compares them)."""
    return (freq_range_hz < np.float32(AMBIENT_FREQ_RANGE_HZ)) & (
        v_range < np.float32(AMBIENT_V_RANGE)
    )


def apply_label_rules(ws: WindowSet, collapsed: set[str]) -> WindowSet:
    """``ws`` with the windows of collapsed runs, of unseen faults and of events inside the
    ambient band set to ``IGNORE``."""
    y = ws.y.copy()
    y[np.isin(ws.scenario, sorted(collapsed))] = IGNORE
    fault = np.flatnonzero(y == KINDS.index("fault"))
    keys, inv = np.unique(ws.pmu_key[fault], return_inverse=True)
    deepest: npt.NDArray[np.float64] = np.full(len(keys), np.inf)
    np.minimum.at(deepest, inv, ws.x[fault, FEATURE_INDEX["v_rel_min"]].astype(np.float64))
    y[fault[~(deepest[inv] <= FAULT_SAG)]] = IGNORE
    event = y > KINDS.index("normal")
    faint = in_ambient_band(
        ws.x[:, FEATURE_INDEX["freq_range_hz"]], ws.x[:, FEATURE_INDEX["v_pu_range"]]
    )
    y[event & faint] = IGNORE
    fields = {f: getattr(ws, f) for f in WindowSet.__slots__}
    return WindowSet(**(fields | {"y": y}))
