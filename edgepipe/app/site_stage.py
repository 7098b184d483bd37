"""The pipeline's site-context stage: PMU windows wait for the site's other PMUs.

While an enabled model reads site context (``edgepipe/pipeline/site.py``), each PMU
window waits in a ``SiteHold`` until every PMU of the site has delivered that moment, or
until ``[windows] site_hold_ms`` of event time has passed; the router's ``SiteFeatures``
remembers scored moments for a PMU later than that. A PMU that goes quiet or disconnects
is no longer waited for. A reload that switches context on or off starts a fresh hold.
"""

from __future__ import annotations

__all__ = ["MIN_SITE_PMUS", "SiteStage"]

from collections.abc import Sequence

import structlog

from edgepipe.app.routing import ROUTE_OF_KIND, Router, needs_site_context
from edgepipe.core import StreamInfo, Window
from edgepipe.pipeline import Detector, SiteFeatures, SiteHold, moment_ns

log = structlog.get_logger("edgepipe.pipeline")

_NS_PER_MS = 1_000_000
# Below this many PMUs a site-context model is warned about (tools/event_site.py: with
# sites of 10 random PMUs pmu_event_site's fault alert F1 on held-out buses was 0.915, with
# every PMU of the grid 0.975, pmu_event 0.955).
MIN_SITE_PMUS = 10
_STALE_NS = 1_000_000_000  # a PMU silent for 1 s of the site's data is not waited for


class SiteStage:
    """Holds PMU windows per moment while ``on`` (a detector's model reads context)."""

    def __init__(self, router: Router, hold_ms: int, detectors: Sequence[Detector]) -> None:
        self._router = router
        self._hold_ms = hold_ms
        self._rates: dict[str, float] = {}  # PMU stream -> reporting rate
        self.on = needs_site_context(detectors)
        self._hold = self._fresh()

    def _fresh(self) -> SiteHold[Window]:
        """A new hold with every known PMU in it, and a fresh memory of scored moments."""
        hold_ns = self._hold_ms * _NS_PER_MS
        stale_ns = max(_STALE_NS, 4 * hold_ns)
        self._router.site_features = SiteFeatures(keep_ns=stale_ns)
        self._checked = False
        hold: SiteHold[Window] = SiteHold(hold_ns=hold_ns, stale_ns=stale_ns)
        for stream in self._rates:
            hold.join(stream)
        return hold

    def join(self, info: StreamInfo) -> None:
        """A PMU stream (re)joins the site: it is waited for again."""
        if ROUTE_OF_KIND.get(info.kind) == "pmu":
            self._rates[info.stream] = info.rate_hz
            self._hold.join(info.stream)

    def leave(self, stream: str) -> None:
        """A quiet or disconnected stream: the other PMUs no longer wait for it."""
        self._hold.leave(stream)

    def takes(self, window: Window) -> bool:
        """Whether ``window`` (of a due batch) waits here rather than going out at once."""
        return self.on and ROUTE_OF_KIND.get(window.info.kind) == "pmu"

    def add(self, windows: Sequence[Window]) -> None:
        for w in windows:
            self._hold.add(w.info.stream, moment_ns(w.end_ns, w.info.rate_hz), w)

    def sync(self, detectors: Sequence[Detector]) -> list[Window]:
        """Follow a reloaded model that starts or stops reading context: a fresh hold,
        and what the old one held goes out."""
        on = needs_site_context(detectors)
        if on == self.on:
            return []
        self.on = on
        out = self._hold.drain()
        self._hold = self._fresh()
        return out

    def restart(self, hold_ms: int) -> None:
        """A new ``[windows]`` config: a fresh hold (``drain`` and score the old one first,
        so that its windows still see the moments already scored)."""
        self._hold_ms = hold_ms
        self._hold = self._fresh()

    def release(self) -> list[Window]:
        """The windows whose moment is complete or whose PMUs waited long enough."""
        if not self._hold.held:
            return []
        out = self._hold.release()
        if out and not self._checked:
            self._check_size()
        return out

    def drain(self) -> list[Window]:
        return self._hold.drain()

    def holds(self, stream: str, end_ns: int) -> bool:
        """Whether the window of ``stream`` ending at ``end_ns`` is still held."""
        rate = self._rates.get(stream, 60.0)
        return self._hold.holds(stream, moment_ns(end_ns, rate))

    @property
    def held(self) -> int:
        return self._hold.held

    @property
    def released_late(self) -> int:
        return self._hold.released_late

    def _check_size(self) -> None:
        """Once per hold, at its first moment: warn when the site is smaller than the one
        the site model was trained for (docs/operations.md)."""
        self._checked = True
        if self._hold.size < MIN_SITE_PMUS:
            log.warning(
                "site_context_few_pmus",
                pmus=self._hold.size,
                advice=f"pmu_event_site was trained with every PMU of a grid; "
                f"with fewer than {MIN_SITE_PMUS} it misses faults pmu_event detects: "
                "enable pmu_event instead",
            )
