"""Where a config without ``[models] dir`` finds the models, in a source checkout and in a
non-editable install (deploy/install.sh: package in site-packages, models in P/models)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgepipe.app import config as config_module
from edgepipe.app.config import MODELS_DIR_ENV, default_models_dir, parse_config
from edgepipe.core import ConfigError

ROOT = Path(__file__).resolve().parents[3]
SOURCES = {"feeder": {"type": "pmu", "url": "tcp://127.0.0.1:4712", "idcode": 7}}


def _models(where: Path) -> Path:
    where.mkdir(parents=True)
    (where / "manifest.json").write_text("{}", encoding="utf-8")
    return where


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The package as pip installs it: next to it a site-packages/models that does not
    exist; the interpreter is P/.venv. Returns P."""
    prefix = tmp_path / "opt" / "edgepipe"
    site = prefix / ".venv" / "lib" / "python3.11" / "site-packages"
    monkeypatch.setattr(config_module, "DEFAULT_MODELS_DIR", site / "models")
    monkeypatch.setattr(sys, "prefix", str(prefix / ".venv"))
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    return prefix


def test_source_checkout_uses_its_models_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODELS_DIR_ENV, raising=False)
    assert default_models_dir() == ROOT / "models"
    assert parse_config({"site": "s", "sources": SOURCES}).models.path == ROOT / "models"


def test_installed_package_finds_the_models_beside_its_venv(installed: Path) -> None:
    models = _models(installed / "models")
    assert default_models_dir() == models
    assert parse_config({"site": "s", "sources": SOURCES}).models.path == models


def test_environment_variable_comes_first(
    installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _models(installed / "models")
    elsewhere = _models(tmp_path / "elsewhere")
    monkeypatch.setenv(MODELS_DIR_ENV, str(elsewhere))
    assert default_models_dir() == elsewhere


def test_no_models_is_a_config_error_that_says_what_to_set(installed: Path) -> None:
    """Before, `config check` said ok and `run` failed on site-packages/models."""
    with pytest.raises(ConfigError) as caught:
        parse_config({"site": "s", "sources": SOURCES})
    (issue,) = caught.value.issues
    assert issue.key == "models.dir"
    assert str(installed / "models" / "manifest.json") in issue.message
    assert "Set `dir` in [models]" in issue.message and MODELS_DIR_ENV in issue.message
    with pytest.raises(ConfigError, match="no models directory"):
        config_module.ModelsConfig().path  # noqa: B018 - the demo and replay paths


def test_a_wrong_environment_variable_is_named(
    installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _models(installed / "models")
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=f"\\${MODELS_DIR_ENV} names no models directory"):
        default_models_dir()


def test_an_explicit_dir_is_used_as_given(installed: Path) -> None:
    cfg = parse_config({"site": "s", "sources": SOURCES, "models": {"dir": "/srv/models"}})
    assert cfg.models.path == Path("/srv/models")
