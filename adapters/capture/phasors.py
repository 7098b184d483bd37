"""Synchrophasors from sampled waveforms: a one-cycle DFT estimator (IEEE C37.118.1-2011,
clause 4.2 and the reference model of Annex C, without its filter taps).

At each reporting time ``t`` the estimator takes the ``N`` samples of one nominal cycle
centred on ``t`` and correlates them with the cosine of nominal frequency that is
synchronised to UTC (clause 4.2: the phase angle is that of a cosine at nominal
frequency, zero at the top of each UTC second):

    X(t) = sqrt(2)/N * sum_n x(t_n) * exp(-j * 2*pi * f0 * t_n)

so ``|X|`` is the RMS magnitude. Frequency and ROCOF come from the phase angle (4.3):
``f = f0 + (d theta / dt) / (2 pi)``, ``ROCOF = df/dt``, by central differences of the
unwrapped angle of the positive-sequence voltage (or the first voltage phasor).
"""

from __future__ import annotations

__all__ = ["Phasors", "estimate", "positive_sequence"]

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

_NS = 1_000_000_000
_A = np.exp(2j * np.pi / 3)

C128 = npt.NDArray[np.complex128]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Phasors:
    times_ns: npt.NDArray[np.int64]  # reporting times, UTC
    phasors: C128  # (m, k) RMS phasors
    freq_hz: F64  # (m,)
    rocof: F64  # (m,)


def estimate(
    times_ns: npt.NDArray[np.int64],
    samples: F64,
    f0: float,
    rate_hz: float,
    reference: C128 | None = None,
) -> Phasors:
    """Phasors of each column of ``samples`` (n, k) at the reporting times ``k / rate_hz``
    (UTC) whose full cycle lies inside the record. ``reference``: the column whose angle
    gives frequency; by default the first."""
    fs = (
        (len(times_ns) - 1) * _NS / max(1, int(times_ns[-1] - times_ns[0]))
        if len(times_ns)
        else 0.0
    )
    n = round(fs / f0)
    if n < 4 or len(times_ns) < n:
        empty = np.zeros(0)
        return Phasors(
            np.zeros(0, np.int64), np.zeros((0, samples.shape[1]), complex), empty, empty
        )
    period = _NS / rate_hz
    first = int(np.ceil((times_ns[0] + (n / 2) * _NS / fs) / period))
    last = int(np.floor((times_ns[-1] - (n / 2) * _NS / fs) / period))
    report = _grid_ns(np.arange(first, last + 1, dtype=np.int64), rate_hz)
    centre = np.searchsorted(times_ns, report)
    start = np.clip(centre - n // 2, 0, len(times_ns) - n)
    idx = start[:, None] + np.arange(n)[None, :]  # (m, n)
    # The cosine is zero-phase at each UTC second: only the fraction of the second counts
    # (exact in int64; whole-second float times would lose the phase to rounding).
    kernel = np.exp(-2j * np.pi * f0 * ((times_ns % _NS) / _NS))
    x = samples[idx]  # (m, n, k)
    ph = (np.sqrt(2) / n) * np.einsum("mnk,mn->mk", x, kernel[idx])
    ref = ph[:, 0] if reference is None else reference
    freq, rocof = _freq(np.angle(ref), report, f0)
    return Phasors(report, ph, freq, rocof)


def _grid_ns(k: npt.NDArray[np.int64], rate_hz: float) -> npt.NDArray[np.int64]:
    """Times of reporting slots ``k / rate`` exactly in int64 (C37.118.2 6.3 SOC/FRACSEC)."""
    if int(rate_hz) == rate_hz:
        sec, sub = np.divmod(k, int(rate_hz))
        out: npt.NDArray[np.int64] = sec * _NS + np.rint(sub * (_NS / rate_hz)).astype(np.int64)
        return out
    approx: npt.NDArray[np.int64] = np.rint(k * (_NS / rate_hz)).astype(np.int64)
    return approx


def _freq(angle: F64, times_ns: npt.NDArray[np.int64], f0: float) -> tuple[F64, F64]:
    if len(angle) < 2:
        return np.full(len(angle), f0), np.zeros(len(angle))
    t = (times_ns - times_ns[0]) / _NS
    theta = np.unwrap(angle)
    freq = f0 + np.gradient(theta, t) / (2 * np.pi)
    rocof = np.gradient(freq, t) if len(freq) > 1 else np.zeros(len(freq))
    return freq, rocof


def positive_sequence(a: C128, b: C128, c: C128) -> C128:
    """``(Va + a Vb + a^2 Vc) / 3`` with ``a = exp(j 2 pi / 3)``."""
    out: C128 = (a + _A * b + _A * _A * c) / 3
    return out
