"""Machine dynamics for ANDES's ``wscc9`` case, which ships as a power flow only.

The WSCC 3-machine, 9-bus system (P. M. Anderson and A. A. Fouad, *Power System Control
and Stability*, 2nd ed., 2003, table 2.1 and example 2.6): a hydro unit at bus 1 and two
steam units at buses 2 and 3, all data on the 100 MVA system base. The textbook gives
the two-axis model; the subtransient reactances and time constants that ``GENROU`` also
needs are typical values (x'' about 0.75 x', T''d0 30 ms, T''q0 50 ms), and so are the
exciters (IEEE type DC1 with the textbook's example gains) and governors (``TGOV1``,
5 % droop). A second small grid beside ieee14: few machines, so one trip moves the whole
grid, as on the held-out kundur (whose data is deliberately not used here).
"""

from __future__ import annotations

from typing import Any

# gen idx (the case's PV/Slack idx, = bus), H (s), xd, xq, x'd, x'q, xl, T'd0, T'q0 (s)
_MACHINES = (
    (1, 23.64, 0.1460, 0.0969, 0.0608, 0.0920, 0.0336, 8.96, 0.31),  # hydro: x'q ~ xq
    (2, 6.40, 0.8958, 0.8645, 0.1198, 0.1969, 0.0521, 6.00, 0.535),
    (3, 3.01, 1.3125, 1.2578, 0.1813, 0.2500, 0.0742, 5.89, 0.600),
)
# Governor valve limit, pu of 100 MVA: the unit's rating (247.5, 192, 128 MVA).
_RATING = {1: 2.475, 2: 1.92, 3: 1.28}
_KV = {1: 16.5, 2: 18.0, 3: 13.8}  # the machine's bus: ANDES rebases impedances by Vn


def dynamics() -> list[tuple[str, dict[str, Any]]]:
    """``(model, params)`` pairs to ``ss.add`` before ``setup``."""
    out: list[tuple[str, dict[str, Any]]] = []
    for gen, h, xd, xq, xd1, xq1, xl, td10, tq10 in _MACHINES:
        x2 = max(0.75 * xd1, xl + 0.01)
        syn = f"GENROU_{gen}"
        out.append(("GENROU", {
            "idx": syn, "bus": gen, "gen": gen, "Sn": 100.0, "Vn": _KV[gen], "fn": 60.0, "M": 2 * h,
            "D": 0.0, "ra": 0.0, "xl": xl, "xd": xd, "xq": xq, "xd1": xd1, "xq1": xq1,
            "xd2": x2, "xq2": x2, "Td10": td10, "Tq10": tq10, "Td20": 0.03, "Tq20": 0.05,
            "S10": 0.09, "S12": 0.38,
        }))  # fmt: skip
        out.append(("IEEEX1", {
            "syn": syn, "TR": 0.01, "KA": 20.0, "TA": 0.2, "TB": 1.0, "TC": 1.0,
            "VRMAX": 5.0, "VRMIN": -5.0, "KE": 1.0, "TE": 0.314, "KF1": 0.063, "TF1": 0.35,
            "E1": 0.0, "SE1": 0.0, "E2": 1.0, "SE2": 0.0,
        }))  # fmt: skip
        out.append(("TGOV1", {
            "syn": syn, "R": 0.05, "VMAX": _RATING[gen], "VMIN": 0.0, "T1": 0.1,
            "T2": 1.0, "T3": 2.1, "Dt": 0.0, "Sg": 100.0,
        }))  # fmt: skip
    return out
