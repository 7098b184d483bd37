"""`edgepipe run` loads only the libraries its config needs: a PMU-only site without
captures does not carry the OPC-UA, Modbus and Arrow libraries (about 90 MB resident)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgepipe import capture

HEAVY = ("asyncua", "pymodbus", "pyarrow")

# In a fresh interpreter: parse `run` as main() does, build the Service from the config
# (detectors, outbox, pipeline, recorder) and report which heavy libraries got imported.
PROBE = """
import json, sys
from pathlib import Path
from edgepipe.app import cli
from edgepipe.app.config import load_config
from edgepipe.app.service import Service
argv = ["run", "--config", sys.argv[1]]
args = cli._parser(cli._command(argv)).parse_args(argv)
Service(load_config(args.config), cli.SystemClock())
print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)))
"""

CONFIG = """
site = "t"
[sources.pmu1]
type = "pmu"
url = "tcp://127.0.0.1:4712"
idcode = 1
[outbox]
path = "{outbox}"
"""


def _loaded(tmp_path: Path, extra: str = "") -> list[str]:
    cfg = tmp_path / "site.toml"
    cfg.write_text(CONFIG.format(outbox=tmp_path / "outbox.db") + extra)
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), str(cfg)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def test_a_pmu_site_without_captures_loads_none_of_them(tmp_path: Path) -> None:
    assert _loaded(tmp_path) == []


def test_a_capture_loads_arrow_when_the_service_is_built(tmp_path: Path) -> None:
    extra = f'\n[capture]\ndir = "{tmp_path / "cap"}"\n'
    assert _loaded(tmp_path, extra) == ["pyarrow"]


def test_every_public_capture_name_loads_on_use() -> None:
    assert set(capture._MODULES) == set(capture.__all__)
    for name in capture.__all__:
        assert getattr(capture, name) is not None, name
    with pytest.raises(AttributeError, match="no_such_name"):
        capture.no_such_name  # noqa: B018
