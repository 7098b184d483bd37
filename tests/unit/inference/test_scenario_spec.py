"""Scenario draws (tools/scenarios/spec.py): reproducible, and the weak-network variants
change the network and nothing else of what a stiff scenario's seed decides."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT / "tools")]

from scenarios.spec import KINDS, WEAK_SCALE, WEAK_SEED0, Devices, draw  # noqa: E402

DEV = Devices(
    buses=tuple(range(1, 15)),
    lines=tuple(f"L{i}" for i in range(20)),
    gens=tuple(f"G{i}" for i in range(5)),
    loads=tuple(f"P{i}" for i in range(11)),
    gen_p=(2.0, 0.4, 0.3, 0.2, 0.1),
    load_p=tuple(0.1 + 0.05 * i for i in range(11)),
)


@pytest.mark.parametrize("kind", KINDS)
def test_a_seed_draws_the_same_scenario_every_time(kind: str) -> None:
    # repr: a normal run's event time is NaN, which never compares equal
    assert repr(draw("ieee14", kind, 7, DEV)) == repr(draw("ieee14", kind, 7, DEV))
    assert draw("ieee14", kind, 7, DEV).params != draw("ieee14", kind, 8, DEV).params


@pytest.mark.parametrize("kind", KINDS)
def test_stiff_scenarios_run_on_the_case_as_shipped(kind: str) -> None:
    for seed in range(40):
        assert "net_scale" not in draw("ieee14", kind, seed, DEV).params


@pytest.mark.parametrize("kind", KINDS)
def test_weak_scenarios_scale_the_network_within_the_range(kind: str) -> None:
    scales = [
        draw("ieee14", kind, seed, DEV).params["net_scale"]
        for seed in range(WEAK_SEED0, WEAK_SEED0 + 40)
    ]
    assert all(WEAK_SCALE[0] <= s <= WEAK_SCALE[1] for s in scales)
    assert max(scales) - min(scales) > 0.4 * (WEAK_SCALE[1] - WEAK_SCALE[0])  # spread, not fixed
