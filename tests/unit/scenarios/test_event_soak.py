"""tools/event_soak.py: a real kundur normal run (ANDES), measured twice, through the
shipped models as the service scores them; and the rate bound the soak prints."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT / "tools")]

from event_soak import MODELS, main, soak_run, upper_95  # noqa: E402
from scenarios.spec import NORMAL_DURATION_S  # noqa: E402

pytestmark = [
    pytest.mark.timeout(300),  # the first ANDES run on a machine writes its code
    pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning"),  # andes's
]


def test_a_soak_run_scores_every_pmu_of_every_realisation_with_each_shipped_model() -> None:
    res = soak_run(("kundur", 1000, 2, ROOT / "models"))
    assert set(res) == set(MODELS)
    # kundur has 10 buses, one PMU each: 2 realisations x 10 PMUs of a 30 s run, less
    # the first window's 29 frames and the frames lost to drops
    full = 2 * 10 * NORMAL_DURATION_S / 3600
    for name, (raises, hours) in res.items():
        assert 0.9 * full < hours <= full, name
        assert raises == 0, f"{name} raised on kundur's normal operation"


def test_the_rate_bound_is_the_poisson_one_sided_95_percent_limit() -> None:
    # the tabulated limits: 2.996 for none seen, 6.296 for two, 11.842 for six
    assert upper_95(0, 3.0) == pytest.approx(2.996 / 3.0, abs=1e-3)
    assert upper_95(2, 1.0) == pytest.approx(6.296, abs=1e-3)
    assert upper_95(6, 2.0) == pytest.approx(11.842 / 2.0, abs=1e-3)


def test_bad_soak_sizes_are_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    # more than 100 measurements of a run would reuse the next run's noise seeds
    for argv in (["--runs", "0"], ["--reps", "101"], ["--reps", "0"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
        assert "--reps 1..100" in capsys.readouterr().err
