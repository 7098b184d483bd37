"""Known answers of the asset-health models: IEEE C57.91 aging and thermal step response,
Duval Triangle 1 zones, and the detectors on simulated plants."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgepipe.core import ChannelInfo, ChannelKind, Quality, StreamInfo, Window
from edgepipe.pipeline.health import (
    DgaDetector,
    DgaPlant,
    ThermalParams,
    TransformerDetector,
    TransformerPlant,
    Zone,
    aging_factor,
    dga_features,
    duval_triangle_1,
    health_index,
)
from edgepipe.pipeline.health.thermal import (
    CoolingMode,
    ThermalState,
    loss_of_life_pct,
    steady_state,
    step,
)


@pytest.mark.parametrize(("hot_spot", "f_aa"), [(110.0, 1.00), (116.0, 1.83), (120.0, 2.71)])
def test_aging_factor_known_answers(hot_spot: float, f_aa: float) -> None:
    # IEEE C57.91-2011 clause 5.2 eq. 2; the known answers, to two decimals.
    assert round(aging_factor(hot_spot), 2) == f_aa


def test_loss_of_life_at_reference_hot_spot() -> None:
    # 24 h at F_EQA = 1: 24 * 100 / 180 000 h = 0.01333 % (eq. 4, Table 2)
    assert loss_of_life_pct(1.0, 24.0) == pytest.approx(0.013333, rel=1e-4)


SIMPLE = ThermalParams(r=4.0, modes=(CoolingMode("ONAF", 1.0, 50.0, 30.0, 1.0, 1.0, 60.0, 5.0),))


def test_thermal_step_response_matches_hand_computation() -> None:
    # From no load (dTO = 50 * (1/(4+1)) = 10 K, dH = 0) to rated load (dTO_U 50, dH_U 30):
    # after 60 min, dTO = 50 - 40 e^-1 = 35.285 K; dH = 30 - 30 e^-12 = 29.9998 K.
    s0 = steady_state(SIMPLE, 0.0, 0)
    assert (s0.dto, s0.dh) == (pytest.approx(10.0), 0.0)
    s1 = step(SIMPLE, s0, 1.0, 0, 3600.0)
    assert s1.dto == pytest.approx(50 - 40 * math.exp(-1), abs=1e-9)
    assert s1.dh == pytest.approx(30 - 30 * math.exp(-12), abs=1e-9)
    assert s1.hot_spot(30.0) == pytest.approx(95.285, abs=1e-3)
    # Piecewise-constant input: 3600 one-second steps give the one-hour step exactly.
    s = s0
    for _ in range(3600):
        s = step(SIMPLE, s, 1.0, 0, 1.0)
    assert (s.dto, s.dh) == (pytest.approx(s1.dto, abs=1e-9), pytest.approx(s1.dh, abs=1e-9))


def test_overload_exponents_follow_the_cooling_mode() -> None:
    p = ThermalParams.from_params({})
    onan, ofaf = steady_state(p, 0.6, 0), steady_state(p, 1.0, 2)
    assert onan.dto == pytest.approx(55.0) and ofaf.dto == pytest.approx(55.0)
    # 1.2 pu in OFAF: dTO = 55 ((1.44*4.5+1)/5.5)^0.9, dH = 25 * 1.2^1.6
    hot = steady_state(p, 1.2, 2)
    assert hot.dto == pytest.approx(55 * ((1.44 * 4.5 + 1) / 5.5) ** 0.9)
    assert hot.dh == pytest.approx(25 * 1.2**1.6)
    assert ThermalState(10, 5).hot_spot(20) == 35


# Cases placed inside each zone of IEC 60599 Figure B.1 (percent CH4, C2H4, C2H2).
@pytest.mark.parametrize(
    ("ch4", "c2h4", "c2h2", "zone"),
    [
        (99.0, 0.5, 0.5, Zone.PD),
        (90.0, 8.0, 2.0, Zone.T1),
        (60.0, 38.0, 2.0, Zone.T2),
        (30.0, 65.0, 5.0, Zone.T3),
        (50.0, 10.0, 40.0, Zone.D1),
        (20.0, 30.0, 50.0, Zone.D2),
        (50.0, 30.0, 20.0, Zone.D2),
        (60.0, 30.0, 10.0, Zone.DT),
        (35.0, 45.0, 20.0, Zone.DT),
        (0.0, 0.0, 0.0, Zone.NONE),
    ],
)
def test_duval_triangle_1_zones(ch4: float, c2h4: float, c2h2: float, zone: Zone) -> None:
    assert duval_triangle_1(ch4, c2h4, c2h2) is zone
    if zone is not Zone.NONE:  # ppm or percent: only the proportions matter
        assert duval_triangle_1(7 * ch4, 7 * c2h4, 7 * c2h2) is zone


@pytest.mark.parametrize(
    ("point", "zone"),
    [((98.0, 1.0, 1.0), Zone.PD), ((77.0, 0.0, 23.0), Zone.D1), ((57.0, 23.0, 20.0), Zone.D2),
     ((80.0, 20.0, 0.0), Zone.T2), ((50.0, 50.0, 0.0), Zone.T3), ((0.0, 71.0, 29.0), Zone.D2)],
)  # fmt: skip
def test_duval_boundaries_belong_to_the_documented_side(
    point: tuple[float, float, float], zone: Zone
) -> None:
    assert duval_triangle_1(*point) is zone


def _window(  # noqa: PLR0917
kind: str, names: list[str], rows: list[dict[str, float]], t0: int, dt_ns: int,
            params: tuple[tuple[str, float], ...]) -> Window:  # fmt: skip
    info = StreamInfo("s/1", "s", "T1", tuple(ChannelInfo(n, ChannelKind.ANALOG) for n in names),
                      rate_hz=1e9 / dt_ns, kind=kind, params=params)  # fmt: skip
    times = t0 + dt_ns * np.arange(len(rows), dtype=np.int64)
    values = np.array([[r.get(n, np.nan) for n in names] for r in rows])
    quality = np.full(len(rows), int(Quality.RECEIPT_TIME), dtype=np.uint16)
    return Window(info, times, values, quality)


TX = ["load_a", "load_b", "load_c", "ambient_c", "top_oil_c", "winding_c", "cooling_stage"]


def _transformer_run(scenario: str, seconds: int = 600) -> list[list[str]]:
    """Feed a plant's readings (time_scale 60: one hour per minute) through the detector
    in 30-row windows; return the active kinds of each window."""
    params = (("rated_current_a", 1000.0), ("time_scale", 60.0))
    plant = TransformerPlant(ThermalParams.from_params(dict(params)), 1000.0, scenario, 60.0,
                             event_at_s=3 * 3600.0)  # fmt: skip
    rows = [plant.values(float(t)) for t in range(seconds)]
    det = TransformerDetector()
    active = []
    for lo in range(0, seconds - 30 + 1, 10):
        w = _window("transformer", TX, rows[lo : lo + 30], lo * 10**9, 10**9, params)
        active.append([s.kind for s in det.evaluate([w], np.empty((1, 0))) if s.active])
    return active


def test_cooling_failure_is_detected_and_normal_is_quiet() -> None:
    normal = _transformer_run("normal")
    assert not any(normal), "a healthy plant must raise nothing"
    failed = _transformer_run("cooling_failure")
    before = failed[: (3 * 60 - 30) // 10]  # windows before the fans fail (minute 3)
    assert not any(before)
    assert any("cooling_failure" in a for a in failed), failed[-5:]


def test_overload_raises_aging_rate_then_hot_spot() -> None:
    kinds = {k for a in _transformer_run("overload", 900) for k in a}
    assert {"aging_rate", "hot_spot"} <= kinds


def _dga_window(scenario: str) -> Window:
    plant = DgaPlant(scenario, time_scale=3600.0)  # one hour per second
    names = ["h2", "ch4", "c2h2", "c2h4", "c2h6", "co", "co2", "moisture"]
    rows = [plant.values(float(t)) for t in range(60, 90)]
    return _window("dga", names, rows, 60 * 10**9, 10**9, (("time_scale", 3600.0),))


@pytest.mark.parametrize(("scenario", "zones"), [("arcing", {"dga_d1", "dga_d2"}),
                                                  ("thermal", {"dga_t2", "dga_t3"})])  # fmt: skip
def test_dga_scenarios_diagnose_their_fault(scenario: str, zones: set[str]) -> None:
    w = _dga_window(scenario)
    scores = DgaDetector().evaluate([w], dga_features([w]))
    active = {s.kind for s in scores if s.active}
    assert active & zones and "dga_rate" in active
    assert len(active & {"dga_pd", "dga_t1", "dga_t2", "dga_t3", "dga_d1", "dga_d2", "dga_dt"}) == 1


def test_dga_normal_raises_nothing() -> None:
    w = _dga_window("normal")
    assert not [s for s in DgaDetector().evaluate([w], dga_features([w])) if s.active]


def test_health_index_from_factors() -> None:
    good = {
        "hot_spot_c": 80.0, "hot_spot_limit_c": 140.0, "f_aa": 0.1, "f_eqa": 0.1,
        "loss_of_life_pct": 0.0, "top_oil_residual_k": 0.0, "residual_raise_k": 5.0,
    }  # fmt: skip
    hi = health_index("T1", 0, thermal=good)
    assert hi is not None and hi.index == 100.0
    arcing = health_index("T1", 0, thermal=good, dga={"zone": "D2", "worst_ratio": 3.0})
    assert arcing is not None and arcing.index < 75.0
    assert set(arcing.to_dict()["factors"]) == {  # type: ignore[arg-type]
        "hot_spot",
        "aging",
        "loss_of_life",
        "cooling",
        "dga",
    }
    assert health_index("T1", 0) is None
