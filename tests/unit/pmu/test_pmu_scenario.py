"""Scenario generator: deterministic, realistic nominal values, events and file round trip."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from adapters.c37118.scenario import (
    LABEL_FAULT_SAG,
    LABEL_FREQ_EXCURSION,
    Scenario,
    fault_sag,
    frequency_excursion,
    synthesize,
)


def test_same_seed_same_trajectories_other_seed_differs() -> None:
    a = synthesize(3, 30, 2.0, seed=7)
    b = synthesize(3, 30, 2.0, seed=7)
    c = synthesize(3, 30, 2.0, seed=8)
    assert np.array_equal(a.mag, b.mag) and np.array_equal(a.ang_rad, b.ang_rad)
    assert not np.array_equal(a.mag, c.mag)


def test_nominal_values_are_balanced_230kv_three_phase() -> None:
    sc = synthesize(4, 60, 5.0, seed=1, tve_max=0.0, load_fluctuation=0.0)
    v_ln = 230e3 / math.sqrt(3)
    volts = sc.mag[:, :, :3]
    assert np.all((volts > 0.96 * v_ln) & (volts < 1.04 * v_ln))
    ph = sc.phasors()
    # Balanced: the zero sequence of the voltages is (numerically) nothing.
    v0 = np.abs(ph[:, :, :3].sum(axis=2)) / 3
    assert float(v0.max()) < 1e-6 * v_ln
    assert np.allclose(sc.freq_hz, 60.0, atol=0.02)
    assert sc.phasor_names == ("VA", "VB", "VC", "IA", "IB", "IC")
    assert sc.is_current == (False, False, False, True, True, True)


def test_noise_tve_stays_within_the_bound() -> None:
    clean = synthesize(2, 60, 3.0, seed=3, tve_max=0.0)
    noisy = synthesize(2, 60, 3.0, seed=3, tve_max=0.01)
    tve = np.abs(noisy.phasors() - clean.phasors()) / np.abs(clean.phasors())
    assert 0.005 < float(tve.max()) <= 0.01 + 1e-12


def test_fault_sag_drops_voltage_for_six_cycles_then_recovers() -> None:
    sc = synthesize(2, 60, 3.0, [fault_sag(1.0)], seed=2, tve_max=0.0, load_fluctuation=0.0)
    pre = sc.mag[50, 0, 0]
    during = sc.mag[62, 0, 0]  # t = 1.033 s, inside 6 cycles (0.1 s)
    after = sc.mag[80, 0, 0]
    assert during == pytest.approx(0.5 * pre, rel=1e-3)
    assert after == pytest.approx(pre, rel=1e-3)
    assert sc.mag[62, 0, 3] > 2.5 * sc.mag[50, 0, 3]  # fault current
    assert sc.labels[62, 0] == LABEL_FAULT_SAG and sc.labels[80, 0] == 0
    assert sc.freq_hz[70, 0] < 60.0 - 0.02  # frequency dip


def test_frequency_excursion_moves_frequency_and_angles() -> None:
    sc = synthesize(
        1,
        30,
        10.0,
        [frequency_excursion(1.0, delta_hz=-0.5, ramp_s=1.0, hold_s=2.0)],
        seed=0,
        tve_max=0.0,
    )
    assert sc.freq_hz[90, 0] == pytest.approx(59.5, abs=0.02)  # t = 3 s, holding
    assert sc.labels[90, 0] == LABEL_FREQ_EXCURSION
    # A lower frequency rotates the phasors backwards: -0.5 Hz for ~3 s is > 1 turn.
    unwrapped = np.unwrap(sc.ang_rad[:, 0, 0])
    assert unwrapped[-1] - unwrapped[0] < -2 * math.pi


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_file_round_trip_and_hand_written_csv(tmp_path: Path, suffix: str) -> None:
    sc = synthesize(2, 10, 1.0, seed=5)
    path = tmp_path / f"sc{suffix}"
    sc.write(path)
    back = Scenario.from_file(path)
    assert np.allclose(back.mag, sc.mag) and np.allclose(back.freq_hz, sc.freq_hz)


def test_hand_written_csv_interpolates_and_loops(tmp_path: Path) -> None:
    path = tmp_path / "hand.csv"
    path.write_text("t_s,va_mag,va_ang_deg,freq_hz\n0,100,170,60\n1,200,-170,61\n")
    sc = Scenario.from_file(path, loop=True)
    mid = sc.sample(np.array([0.5, 2.5]))
    assert mid.mag[:, 0, 0] == pytest.approx([150.0, 150.0])
    # Angles interpolate the short way across +-180 degrees.
    assert abs(np.rad2deg(mid.ang_rad[0, 0, 0])) == pytest.approx(180.0)
    assert mid.freq_hz[0, 0] == pytest.approx(60.5)


def test_bad_file_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("t_s,va_mag,freq_hz\n0,1,60\n")
    with pytest.raises(ValueError, match="va_ang_deg"):
        Scenario.from_file(path)
