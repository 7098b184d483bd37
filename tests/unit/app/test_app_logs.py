"""Logs: JSON lines on stderr off a terminal, repeated warnings rate-limited, never lost
without a count."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import pytest
import structlog

from edgepipe.app.logs import RepeatLimiter


def test_repeats_beyond_the_burst_are_dropped_and_counted_on_the_next() -> None:
    limiter = RepeatLimiter(burst=3, period_s=60.0)
    kept = []
    for _ in range(10):
        with contextlib.suppress(structlog.DropEvent):
            kept.append(limiter(None, "warning", {"event": "pmu_bad_frame", "source": "a"}))
    assert len(kept) == 3
    # Another source is limited on its own.
    assert limiter(None, "warning", {"event": "pmu_bad_frame", "source": "b"})
    # Info lines are never limited.
    for _ in range(10):
        limiter(None, "info", {"event": "alert", "source": "a"})
    # When the period is over, the next one carries how many were dropped.
    limiter.period_s = 0.0
    after = limiter(None, "warning", {"event": "pmu_bad_frame", "source": "a"})
    assert after["suppressed"] == 7


def test_logs_are_json_lines_on_stderr_and_stdout_stays_clean() -> None:
    code = (
        "from edgepipe.app.logs import configure_logging\n"
        "import structlog\n"
        "configure_logging('info', 'auto')\n"
        "log = structlog.get_logger()\n"
        "for i in range(20):\n"
        "    log.warning('pmu_bad_frame', source='pmu1', stream='pmu1/2', reason='bad crc')\n"
        "log.info('stream_configured', source='pmu1', stream='pmu1/2', idcode=2)\n"
        "print('OUTPUT')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout == "OUTPUT\n"
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [e["event"] for e in lines].count("pmu_bad_frame") == 5
    info = lines[-1]
    assert info["event"] == "stream_configured"
    assert (info["source"], info["stream"], info["idcode"], info["level"]) == (
        "pmu1", "pmu1/2", 2, "info",
    )  # fmt: skip
    assert "timestamp" in info


@pytest.fixture(autouse=True)
def _reset_structlog() -> None:
    structlog.reset_defaults()
