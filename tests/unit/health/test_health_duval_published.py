"""Duval Triangle 1 against its published zone limits and a published worked example.

The zone limits are those of IEEE C57.104-2019 Table 6 (the same triangle as IEC
60599:2015 Annex B, Figure B.1, and Duval, IEEE Electrical Insulation Magazine 18(3),
2002), in percent of CH4 + C2H4 + C2H2. They are written below as a table of
half-open intervals, independently of the if-chain in ``edgepipe.pipeline.health.dga``,
and the two are compared over a 0.5 % grid of the whole triangle: any difference in a
limit, in which side of a limit a boundary point belongs to (lower limits inclusive, as
in Table 6), or in the order the zones are tried, shows up as a mismatching point.
"""

from __future__ import annotations

import math

import pytest

from edgepipe.pipeline.health.dga import Zone, duval_triangle_1

INF = math.inf

# zone -> alternatives; each alternative is ranges (lo <= x < hi) of (CH4, C2H4, C2H2) %.
TABLE_6: dict[Zone, list[tuple[tuple[float, float], tuple[float, float], tuple[float, float]]]] = {
    Zone.PD: [((98, INF), (0, INF), (0, INF))],
    Zone.T1: [((0, 98), (0, 20), (0, 4))],
    Zone.T2: [((0, INF), (20, 50), (0, 4))],
    Zone.T3: [((0, INF), (50, INF), (0, 15))],
    Zone.D1: [((0, INF), (0, 23), (13, INF))],
    Zone.D2: [((0, INF), (23, INF), (29, INF)), ((0, INF), (23, 40), (13, 29))],
    Zone.DT: [
        ((0, INF), (0, 50), (4, 13)),
        ((0, INF), (40, 50), (13, 29)),
        ((0, INF), (50, INF), (15, 29)),
    ],
}  # fmt: skip


def _table_zone(ch4: float, c2h4: float, c2h2: float) -> list[Zone]:
    point = (ch4, c2h4, c2h2)
    return [
        zone
        for zone, alternatives in TABLE_6.items()
        for ranges in alternatives
        if all(lo <= x < hi for x, (lo, hi) in zip(point, ranges, strict=True))
    ]


def _grid(step: float = 0.5) -> list[tuple[float, float, float]]:
    n = round(100 / step)
    return [(100 - (i + j) * step, i * step, j * step)
            for i in range(n + 1) for j in range(n + 1 - i)]  # fmt: skip


def test_published_zone_limits_partition_the_triangle() -> None:
    """Every point of the grid is in exactly one zone of the table (the table is right)."""
    for point in _grid(1.0):
        assert len(_table_zone(*point)) == 1, point


def test_zones_match_ieee_c57_104_table_6_everywhere() -> None:
    wrong = [(p, duval_triangle_1(*p), _table_zone(*p)) for p in _grid()
             if [duval_triangle_1(*p)] != _table_zone(*p)]  # fmt: skip
    assert not wrong, wrong[:5]


@pytest.mark.parametrize(
    ("ch4", "c2h4", "c2h2", "zone"),
    [
        # Delta-X Research, "The Duval Triangle DGA Diagnostic Method" (M. Dukarm; the
        # triangle as in IEC 60599:1999 Annex B): recent increases of 45 ppm CH4, 90 ppm
        # C2H4 and 15 ppm C2H2, i.e. 30 % / 60 % / 10 %: C2H4 >= 50 with C2H2 < 15.
        (45.0, 90.0, 15.0, Zone.T3),
    ],
)
def test_published_worked_example(ch4: float, c2h4: float, c2h2: float, zone: Zone) -> None:
    assert duval_triangle_1(ch4, c2h4, c2h2) is zone
