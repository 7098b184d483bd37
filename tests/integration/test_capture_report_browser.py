"""The HTML replay report, rendered by a real headless Chromium (issue 6, acceptance)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import structlog

from edgepipe.app.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.browser]

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "c37118"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=5000",
]  # fmt: skip


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "headless Chromium missing: run make test (tools/ensure-tool.sh installs it)"
    return found


def test_report_renders_timeline_plots_and_alert_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cap, report = tmp_path / "cap", tmp_path / "report.html"
    assert main(["import", "pcap", str(DATA / "C37.118_4in1PMU_TCP.pcap"), "--out", str(cap)]) == 0
    capsys.readouterr()
    assert main(["replay", str(cap), "--fast", "--report", str(report)]) == 0
    alerts = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    raised = [a for a in alerts if '"state":"raised"' in a]
    assert raised, "the reference capture should raise alerts with the default rules"
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [_chromium(), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    timeline = re.search(r'<img id="timeline"[^>]*>', dom)
    assert timeline and 'data-rendered="' in timeline.group(0)
    assert 'data-rendered="0"' not in dom  # every image decoded by the browser
    plots = re.findall(r'<figure class="alert-plot"><img[^>]*data-rendered="(\d+)"', dom)
    assert len(plots) == min(len(raised), 30) and all(int(w) > 100 for w in plots)
    table = dom[dom.index('<table id="alerts">') :]
    rows = re.findall(r"<tr><td>", table)
    assert len(rows) == len(alerts)
    assert "evidence" in table and "raise_threshold" in table
    structlog.reset_defaults()  # main() pointed logging at this test's captured stderr
