"""Site context (edgepipe/pipeline/site.py): the other PMUs' view of the same moment, and
the hold that gathers a moment's windows from every PMU of the site before they are scored."""

from __future__ import annotations

import numpy as np

from edgepipe.core import SampleBatch, Window
from edgepipe.pipeline.features import FEATURE_INDEX, FEATURE_NAMES
from edgepipe.pipeline.site import CONTEXT_NAMES, SiteFeatures, moment_ns, site_context
from edgepipe.pipeline.site_hold import SiteHold
from edgepipe.pipeline.testing import T0_NS, V_BASE, pmu_batch, pmu_info
from edgepipe.pipeline.windows import WindowConfig, Windower

COL = {n: i for i, n in enumerate(CONTEXT_NAMES)}
MS = 1_000_000
NS = 1_000_000_000


def _x(*rows: tuple[float, float]) -> np.ndarray:
    """Feature rows from (v_rel_min, freq_rel_min_hz); the voltage span is the sag."""
    x = np.zeros((len(rows), len(FEATURE_NAMES)))
    for i, (vmin, fmin) in enumerate(rows):
        x[i, FEATURE_INDEX["v_rel_min"]] = vmin
        x[i, FEATURE_INDEX["freq_rel_min_hz"]] = fmin
        x[i, FEATURE_INDEX["v_pu_range"]] = 1 - vmin
    return x


def test_a_fault_sags_one_pmu_deeply_and_a_trip_all_alike() -> None:
    x = _x((0.40, -0.02), (0.90, -0.01), (0.95, 0.00), (1.00, 0.00), (0.92, -0.30), (0.93, -0.28))
    keys = np.array([30, 30, 30, 33, 90, 90])  # three moments
    ctx = site_context(x, keys)
    assert ctx.shape == (6, len(CONTEXT_NAMES))
    np.testing.assert_allclose(ctx[:3, COL["site_v_rel_min_min"]], 0.40)
    np.testing.assert_allclose(ctx[:3, COL["site_v_rel_min_median"]], 0.90)
    np.testing.assert_allclose(ctx[:3, COL["site_v_range_median"]], 0.10)
    np.testing.assert_allclose(ctx[:3, COL["v_sag_share"]], [1.0, 1 / 6, 1 / 12])
    np.testing.assert_allclose(ctx[3, COL["site_v_rel_min_min"]], 1.0)  # alone at 33
    np.testing.assert_allclose(ctx[3, COL["v_sag_share"]], 0.0)  # no sag anywhere
    np.testing.assert_allclose(ctx[4:, COL["site_freq_rel_min_median"]], -0.29)
    np.testing.assert_allclose(ctx[4:, COL["v_sag_share"]], [1.0, 0.07 / 0.08])


def test_a_window_with_a_nan_input_takes_no_part_and_an_empty_moment_is_nan() -> None:
    x = _x((0.40, -0.02), (0.90, -0.01), (0.95, 0.0), (0.80, 0.0))
    x[0, FEATURE_INDEX["freq_rel_max_hz"]] = np.nan  # the deep one is incomplete
    x[3, FEATURE_INDEX["v_rel_min"]] = np.nan  # alone at its moment
    ctx = site_context(x, np.array([1, 1, 1, 2]))
    np.testing.assert_allclose(ctx[:3, COL["site_v_rel_min_min"]], 0.90)
    np.testing.assert_allclose(ctx[:3, COL["site_v_rel_min_median"]], 0.925)
    assert np.isnan(ctx[3]).all()


def test_a_cleared_fault_shows_its_rebound_at_every_pmu_of_the_moment() -> None:
    x = _x((0.40, -0.02), (0.90, -0.01), (0.95, 0.0), (0.88, -0.3), (0.90, -0.3))
    x[:, FEATURE_INDEX["v_rebound_rel"]] = [0.45, 0.05, 0.0, 0.004, 0.006]
    ctx = site_context(x, np.array([1, 1, 1, 2, 2]))  # a fault cleared at 1, a trip at 2
    np.testing.assert_allclose(ctx[:3, COL["site_v_rebound_max"]], 0.45)
    np.testing.assert_allclose(ctx[3:, COL["site_v_rebound_max"]], 0.006)
    x[0, FEATURE_INDEX["v_rebound_rel"]] = np.nan  # the faulted PMU's window is incomplete
    ctx = site_context(x, np.array([1, 1, 1, 2, 2]))
    np.testing.assert_allclose(ctx[:3, COL["site_v_rebound_max"]], 0.05)
    np.testing.assert_allclose(ctx[:3, COL["site_v_rel_min_min"]], 0.90)  # whole or not at all


def test_a_clearing_that_is_a_pmus_largest_step_shows_as_a_rising_step() -> None:
    x = _x((0.95, 0.0), (0.97, 0.0), (0.90, -0.3), (0.91, -0.3))
    x[:, FEATURE_INDEX["v_step_rel"]] = [0.30, -0.02, -0.08, -0.07]  # the clearing; a trip
    ctx = site_context(x, np.array([1, 1, 2, 2]))
    np.testing.assert_allclose(ctx[:, COL["site_v_step_up_max"]], [0.30, 0.30, 0.0, 0.0])


def test_pdc_frames_release_each_moment_once_every_pmu_has_it() -> None:
    hold: SiteHold[str] = SiteHold(hold_ns=100 * MS, stale_ns=1000 * MS)
    for s in ("a", "b", "c"):
        hold.join(s)
    released = []
    for end in (0, 33, 67):
        for s in ("a", "b", "c"):
            hold.add(s, end * MS, f"{s}{end}")
            released.append(hold.release())
    # nothing goes out before the third PMU's window of the moment; then the moment whole
    assert released == [[], [], ["a0", "b0", "c0"], [], [], ["a33", "b33", "c33"],
                        [], [], ["a67", "b67", "c67"]]  # fmt: skip
    assert hold.released_late == 0


def test_a_late_pmu_holds_the_moment_until_it_delivers_or_the_deadline_passes() -> None:
    hold: SiteHold[str] = SiteHold(hold_ns=100 * MS, stale_ns=1000 * MS)
    hold.add("a", 0, "a0")
    hold.add("b", 0, "b0")
    assert hold.release() == ["a0", "b0"]
    hold.add("a", 33 * MS, "a33")
    assert hold.release() == []  # b has not delivered 33 yet
    hold.add("a", 67 * MS, "a67")
    hold.add("b", 33 * MS, "b33")  # b catches up with 33 only
    assert hold.release() == ["a33", "b33"]
    hold.add("a", 100 * MS, "a100")
    hold.add("a", 133 * MS, "a133")
    hold.add("a", 167 * MS, "a167")  # 67 + 100 ms passed: 67 goes out without b
    assert hold.release() == ["a67"]
    assert hold.released_late == 1
    assert hold.held == 3


def test_a_silent_or_departed_pmu_is_not_waited_for() -> None:
    hold: SiteHold[str] = SiteHold(hold_ns=100 * MS, stale_ns=200 * MS)
    hold.join("dead")  # announced, never delivers
    out = []
    for k in range(12):
        hold.add("a", k * 33 * MS, f"a{k}")
        out += hold.release()
    # waited for until the deadline while new, ignored once 200 ms of data passed
    assert out == [f"a{k}" for k in range(12)]
    assert 0 < hold.released_late < 12
    hold.add("b", 400 * MS, "b400")
    assert hold.release() == []  # a has not reached 400 ms
    hold.leave("a")
    assert hold.release() == ["b400"]
    hold.add("c", 433 * MS, "c433")
    assert hold.drain() == ["c433"]
    assert hold.held == 0


def test_a_pmu_that_goes_quiet_and_resumes_is_waited_for_again_from_where_it_was() -> None:
    hold: SiteHold[str] = SiteHold(hold_ns=100 * MS, stale_ns=1000 * MS)
    for s in ("a", "b"):
        hold.add(s, 0, f"{s}0")
    hold.add("a", 33 * MS, "a33")
    hold.leave("b")  # quiet
    hold.join("b")  # resumed: it had delivered 0; later moments wait for it again
    assert hold.release() == ["a0", "b0"]
    hold.add("b", 33 * MS, "b33")
    assert hold.release() == ["a33", "b33"]
    assert hold.released_late == 0


def test_pmus_stamped_with_another_time_base_share_their_moments() -> None:
    sixtieth = moment_ns(16_666_667, 60.0)
    assert moment_ns(16_667_000, 60.0) == sixtieth  # TIME_BASE 1e6 against 3e6
    assert moment_ns(16_666_000, 60.0) == sixtieth
    assert moment_ns(33_333_333, 30.0) == moment_ns(33_333_000, 60.0)  # 30 fps meets 60
    assert moment_ns(1_700_000_000_016_667_000, 60.0) == 1_700_000_000_016_666_667


def _windows_at(stamps: list[int], depth: list[float]) -> list[Window]:
    out = []
    for p, (t, d) in enumerate(zip(stamps, depth, strict=True)):
        info = pmu_info(f"pmu{p}", f"bus{p}", v_nominal=V_BASE)
        v = np.ones(40)
        v[35:] = d
        b = pmu_batch(info, 40, v_pu=v)
        times = b.times_ns - b.times_ns[-1] + t  # this PMU's own stamps, ending at t
        w = Windower(info, WindowConfig(length=30, hop=1)).push(
            SampleBatch(b.stream, times, b.values, b.quality)
        )[-1]
        out.append(w)
    return out


def test_a_pmu_later_than_the_hold_gets_the_context_of_its_whole_moment() -> None:
    end = T0_NS + 10 * NS
    ws = _windows_at([end, end - 333, end + 333], [0.4, 0.85, 0.95])  # us-rounded stamps
    whole = SiteFeatures(keep_ns=NS)(ws)
    late = SiteFeatures(keep_ns=NS)
    first, second = late(ws[:2]), late(ws[2:])  # the third PMU came after the release
    np.testing.assert_array_equal(second[0], whole[2])
    ctx = slice(len(FEATURE_NAMES), None)
    np.testing.assert_allclose(
        whole[:, ctx][:, COL["site_v_rel_min_min"]], whole[0, FEATURE_INDEX["v_rel_min"]]
    )
    assert first.shape == (2, len(FEATURE_NAMES) + len(CONTEXT_NAMES))
    # long after, the moment is forgotten: no unbounded memory
    later = _windows_at([end + 3 * NS], [1.0])
    late(later)
    assert all(m > end for m in late._seen)


def test_a_pmu_clock_far_ahead_neither_stalls_nor_ungroups_the_others() -> None:
    hold: SiteHold[str] = SiteHold(hold_ns=100 * MS, stale_ns=1000 * MS)
    for s in ("a", "b", "glitch"):
        hold.add(s, 0, f"{s}0")
    assert hold.release() == ["a0", "b0", "glitch0"]
    hold.add("glitch", 10_000 * MS, "g")  # one frame ten seconds in the future
    assert hold.release() == ["g"]  # out at once, alone, counted
    assert hold.released_late == 1
    hold.add("a", 33 * MS, "a33")
    assert hold.release() == []  # b is still waited for: the glitch did not make it stale
    hold.add("b", 33 * MS, "b33")
    assert hold.release() == ["a33", "b33"]
