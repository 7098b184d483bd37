"""The simulator's time grid: SOC/FRACSEC of frame k is exactly k/R (no rounding drift)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from adapters.c37118.simulator import frame_time, time_base_for


@pytest.mark.parametrize("rate", [10, 25, 30, 50, 60, 120, 240])
def test_frame_time_is_exactly_k_over_r_for_ten_hours(rate: int) -> None:
    tb = time_base_for(rate)
    assert tb % rate == 0 and tb < 1 << 24
    ks = range(1_795_000_000 * rate, 1_795_000_000 * rate + 10 * 3600 * rate, 997)
    for k in ks:
        soc, frac = frame_time(k, rate, tb)
        assert soc + Fraction(frac, tb) == Fraction(k, rate)
