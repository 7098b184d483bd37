"""`--report OUT`: a self-contained HTML report of a replay for a field engineer.

One file, no external resources (plots are PNGs inlined as data URIs): the timeline of
alerts, plots of the relevant channels around each raised alert (matplotlib, the
``report`` extra), and a table of every alert with its evidence.
"""

from __future__ import annotations

__all__ = ["write_report"]

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe import __version__
from edgepipe.capture import Capture, Part
from edgepipe.core import Alert, AlertState, ChannelKind, EdgepipeError
from edgepipe.delivery import format_rfc3339_ns

_NS = 1_000_000_000
MAX_PLOTS = 30  # alerts plotted; the table lists every alert
_BEFORE_NS, _AFTER_NS = 2 * _NS, 3 * _NS


def _pyplot() -> Any:
    try:
        import matplotlib  # noqa: PLC0415 - optional extra, only for reports

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError as exc:
        raise EdgepipeError("--report needs matplotlib: pip install 'edgepipe[report]'") from exc
    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    fig.clf()
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _timeline(plt: Any, alerts: list[Alert], t0: int, t1: int) -> str:
    keys = sorted({(a.asset, a.kind) for a in alerts}) or [("", "")]
    fig, ax = plt.subplots(figsize=(10, 0.4 * len(keys) + 1.5))
    row = {k: i for i, k in enumerate(keys)}
    for a in alerts:
        color = "tab:red" if a.state is AlertState.RAISED else "tab:green"
        marker = "^" if a.state is AlertState.RAISED else "v"
        ax.plot((a.event_time_ns - t0) / _NS, row[(a.asset, a.kind)], marker, color=color)
    ax.set_yticks(range(len(keys)), [f"{a} {k}" for a, k in keys])
    ax.set_xlim(0, max(1e-3, (t1 - t0) / _NS))
    ax.set_xlabel(f"seconds after {format_rfc3339_ns(t0)}")
    ax.set_title("alerts (raised ^, cleared v)")
    ax.grid(True, alpha=0.3)
    return _png(fig)


def _around(plt: Any, alert: Alert, parts: list[Part]) -> str:
    lo, hi = alert.window_start_ns - _BEFORE_NS, alert.window_end_ns + _AFTER_NS
    fig, (mag, freq) = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    for part in parts:
        keep = (part.times_ns >= lo) & (part.times_ns <= hi)
        t = (part.times_ns[keep] - alert.event_time_ns) / _NS
        for i, ch in enumerate(part.info.channels):
            y = part.values[keep, i]
            if ch.kind in (ChannelKind.MAGNITUDE, ChannelKind.ANALOG):
                base = ch.nominal or 1.0
                mag.plot(t, y / base, label=f"{ch.name}{' (pu)' if ch.nominal else ''}")
            elif ch.kind is ChannelKind.FREQUENCY:
                freq.plot(t, y, label=ch.name)
    for ax in (mag, freq):
        w0 = (alert.window_start_ns - alert.event_time_ns) / _NS
        w1 = (alert.window_end_ns - alert.event_time_ns) / _NS
        ax.axvspan(w0, w1, color="orange", alpha=0.2)  # the window the detector saw
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(loc="upper right", fontsize=7, ncol=3)
    mag.set_title(f"{alert.asset} {alert.kind} ({alert.stream})")
    freq.set_xlabel("seconds from the alert")
    freq.set_ylabel("Hz")
    return _png(fig)


def _row(a: Alert) -> str:
    cells = [a.id, a.state.value, a.kind, a.severity.value, a.asset, a.stream,
             format_rfc3339_ns(a.event_time_ns), f"{a.score:.4g}", a.model,
             json.dumps(a.evidence, sort_keys=True, default=str)]  # fmt: skip
    return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"


def write_report(
    path: str | Path, capture: Capture, alerts: list[Alert], span: tuple[int, int]
) -> None:
    """Write the report of ``alerts`` replayed from ``capture`` over ``span`` (ns)."""
    plt = _pyplot()
    t0, t1 = span
    plots = []
    for a in [a for a in alerts if a.state is AlertState.RAISED][:MAX_PLOTS]:
        parts = [p for p in capture.parts if p.info.stream == a.stream]
        img = _around(plt, a, parts)
        plots.append(f'<figure class="alert-plot"><img alt="{html.escape(a.kind)}" '
                     f'src="data:image/png;base64,{img}"><figcaption>{html.escape(a.asset)} '
                     f"{html.escape(a.kind)} at {format_rfc3339_ns(a.event_time_ns)}"
                     "</figcaption></figure>")  # fmt: skip
    timeline = _timeline(plt, alerts, t0, t1)
    plt.close("all")
    head = ["id", "state", "kind", "severity", "asset", "stream", "event time", "score",
            "model", "evidence"]  # fmt: skip
    rows = "\n".join(_row(a) for a in alerts)
    streams = ", ".join(html.escape(s) for s in capture.streams)
    Path(path).write_text(_PAGE.format(
        title=html.escape(f"edgepipe replay of {capture.path.name}"),
        meta=html.escape(f"{format_rfc3339_ns(t0)} to {format_rfc3339_ns(t1)}; "
                         f"{len(alerts)} alert(s); edgepipe {__version__}"),
        streams=streams, timeline=timeline, plots="\n".join(plots) or "<p>No alert raised.</p>",
        head="".join(f"<th>{h}</th>" for h in head), rows=rows,
        count=int(np.sum([a.state is AlertState.RAISED for a in alerts])),
    ), encoding="utf-8")  # fmt: skip


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #bbb;padding:3px 6px;vertical-align:top}} th{{background:#eee}}
figure{{margin:1em 0}} img{{max-width:100%}}</style></head>
<body><h1>{title}</h1><p id="meta">{meta}</p><p>Streams: {streams}</p>
<h2>Timeline</h2><img id="timeline" alt="timeline of alerts" src="data:image/png;base64,{timeline}">
<h2>Around each raised alert ({count})</h2>{plots}
<h2>Alerts</h2><table id="alerts"><thead><tr>{head}</tr></thead><tbody>
{rows}
</tbody></table>
<script>/* marks each plot the browser could decode: a check for tests and a hint to readers */
window.addEventListener("load", () => document.querySelectorAll("img").forEach(
  (i) => i.setAttribute("data-rendered", String(i.naturalWidth))));</script>
</body></html>
"""
