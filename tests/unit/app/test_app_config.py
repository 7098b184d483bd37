"""Config: parsed once into typed records; a bad file names every bad key."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from edgepipe.app.config import load_config, parse_config
from edgepipe.core import ConfigError

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "deploy" / "edgepipe.example.toml"

GOOD = """
site = "north"
[sources.feeder]
type = "pmu"
url = "tcp://127.0.0.1:4712"
idcode = 7
nominal_voltage = 132790.6
[windows]
length = 20
hop = 2
[rules.undervoltage]
raise_threshold = 0.85
clear_threshold = 0.92
[mqtt]
port = 1884
[mqtt.tls]
ca_file = "certs/ca.pem"
"""

BAD = """
site = ""
colour = "blue"
[sources.feeder]
type = "pmu"
url = "http://127.0.0.1:4712"
[sources.other]
type = "dnp3"
[windows]
length = 1
[rules.undervoltage]
raise_threshold = "low"
[alerts]
raise_after = 0
[mqtt]
port = 70000
"""


def _good(tmp_path: Path) -> Path:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("not checked until connect\n")
    path = tmp_path / "edgepipe.toml"
    path.write_text(GOOD)
    return path


def test_good_file_becomes_typed_records(tmp_path: Path) -> None:
    path = _good(tmp_path)
    config = load_config(path)
    assert config.site == "north"
    assert [(s.name, s.type) for s in config.sources] == [("feeder", "pmu")]
    assert config.sources[0].options["idcode"] == 7
    assert (config.windows.length, config.windows.hop) == (20, 2)
    under = {r.kind: r for r in config.rules.rules}["undervoltage"]
    assert (under.raise_threshold, under.clear_threshold) == (0.85, 0.92)
    assert under.feature == "v_pu_min"  # the default's other fields are kept
    assert config.mqtt is not None and config.mqtt.port == 1884
    # Relative file names resolve against the config file's folder.
    assert config.mqtt.tls is not None
    assert config.mqtt.tls.ca_file == str(tmp_path / "certs" / "ca.pem")


def test_bad_file_lists_every_problem_with_its_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    keys = {issue.key for issue in info.value.issues}
    assert {
        "site",
        "colour",
        "sources.feeder.url",
        "sources.feeder.idcode",
        "sources.other.type",
        "windows.length",
        "rules.undervoltage.raise_threshold",
        "alerts.raise_after",
        "mqtt.port",
    } <= keys


def test_not_toml_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("site = [unclosed\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_a_file_that_is_not_utf8_names_the_byte_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'site = "x"\n# Umspannwerk S\xfcd\n')  # saved as Latin-1
    with pytest.raises(ConfigError, match=r"not UTF-8 text: byte 0xfc on line 2"):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_sources_are_required() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"site": "x"})
    assert [i.key for i in info.value.issues] == ["sources"]


def test_example_production_config_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert config.sources[0].options["nominal_voltage"] == pytest.approx(230e3 / math.sqrt(3))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgepipe.app.cli", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_config_check_exits_nonzero_and_names_keys(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    result = _cli("config", "check", str(path))
    assert result.returncode == 2
    assert result.stdout == ""  # errors go to stderr, stdout stays clean for pipes
    assert "windows.length: must be >= 2" in result.stderr
    assert "sources.other.type" in result.stderr


def test_config_check_ok_prints_a_summary(tmp_path: Path) -> None:
    result = _cli("config", "check", str(_good(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout and "north" in result.stdout


@pytest.mark.parametrize(
    ("enabled", "says"),
    [
        ('["pmu_evnt"]', "pmu_evnt"),  # a typo: run would refuse it
        ('["pmu_event", "pmu_fault"]', "both raise pmu_fault; enable one"),
    ],
)
def test_config_check_loads_the_enabled_models_as_run_does(
    tmp_path: Path, enabled: str, says: str
) -> None:
    path = _good(tmp_path)
    path.write_text(path.read_text() + f"\n[models]\nenabled = {enabled}\n")
    result = _cli("config", "check", str(path))
    assert result.returncode == 2 and result.stdout == ""
    assert "models:" in result.stderr and says in result.stderr


def test_run_with_bad_config_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BAD)
    result = _cli("run", "--config", str(path))
    assert result.returncode == 2
    assert "mqtt.port" in result.stderr
