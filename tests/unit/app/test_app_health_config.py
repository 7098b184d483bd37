"""The [health] section: validated keys, and the router using them (and re-taking them)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgepipe.app.config import load_config, parse_config
from edgepipe.app.routing import Router
from edgepipe.core import ChannelInfo, ChannelKind, ConfigError, Quality, StreamInfo, Window
from edgepipe.pipeline.health import HealthConfig

BASE = {"site": "north", "sources": {}}
GASES = ["h2", "ch4", "c2h2", "c2h4", "c2h6", "co", "co2"]


def _config(health: Mapping[str, Any]) -> HealthConfig:
    return parse_config({**BASE, "health": health}).health


def test_defaults_without_a_section() -> None:
    cfg = parse_config(BASE).health
    assert cfg == HealthConfig()
    assert cfg.publish_interval_s == 60.0 and cfg.weights["dga"] == 4.0
    assert cfg.transformer["hot_spot_limit_c"] == 140.0
    assert cfg.gas_limits.levels["c2h2"] == 20.0  # IEC 60599:2015 Table A.1 upper end


def test_keys_are_taken_and_merged_over_the_defaults() -> None:
    cfg = _config({
        "publish_interval_s": 300, "hot_spot_limit_c": 120.0, "aging_raise": 1.5,
        "weights": {"dga": 6}, "dga_typical_ppm": {"c2h2": 3},
        "dga_typical_rate_ppm_year": {"h2": 73},
    })  # fmt: skip
    assert cfg.publish_interval_s == 300.0
    assert dict(cfg.transformer) == {"hot_spot_limit_c": 120.0, "aging_raise": 1.5,
                                     "residual_raise_k": 5.0}  # fmt: skip
    assert cfg.weights["dga"] == 6.0 and cfg.weights["hot_spot"] == 3.0
    assert cfg.gas_limits.levels["c2h2"] == 3.0 and cfg.gas_limits.levels["h2"] == 150.0
    assert cfg.gas_limits.rates["h2"] == pytest.approx(0.2)  # 73 ppm/year in ppm/day


def test_every_bad_key_is_named() -> None:
    with pytest.raises(ConfigError) as err:
        _config({
            "publish_interval_s": 0, "hot_spot_limt_c": 120, "aging_raise": "2",
            "weights": {"dgaa": 1, "hot_spot": -1}, "dga_typical_ppm": {"xenon": 5},
            "dga_typical_rate_ppm_year": 7,
        })  # fmt: skip
    assert {i.key for i in err.value.issues} == {
        "health.publish_interval_s", "health.hot_spot_limt_c", "health.aging_raise",
        "health.weights.dgaa", "health.weights.hot_spot", "health.dga_typical_ppm.xenon",
        "health.dga_typical_rate_ppm_year",
    }  # fmt: skip
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, "health": 5})
    assert [i.key for i in err.value.issues] == ["health"]


def _dga_window(t0_s: int, c2h2: float) -> Window:
    """Ten rows, one a minute, steady gases (no rate), C2H2 as given."""
    channels = tuple(ChannelInfo(g, ChannelKind.ANALOG) for g in GASES)
    info = StreamInfo("dga1", "dga1", "T1", channels, rate_hz=1 / 60, kind="dga")
    row = {"h2": 40.0, "ch4": 30.0, "c2h2": c2h2, "c2h4": 20.0, "c2h6": 10.0, "co": 200.0,
           "co2": 2000.0}  # fmt: skip
    times = (t0_s + 60 * np.arange(10, dtype=np.int64)) * 1_000_000_000
    values = np.tile([row[g] for g in GASES], (10, 1))
    quality = np.full(10, int(Quality.GOOD), dtype=np.uint16)
    return Window(info, times, values, quality)


def _run(router: Router, starts: list[int], c2h2: float) -> tuple[list[str], list[Any]]:
    published: list[Any] = []
    router.on_health = lambda asset, body: published.append(body)
    active = [s.kind for t in starts for s in router.evaluate([], [_dga_window(t, c2h2)])
              if s.active]  # fmt: skip
    return active, published


def test_router_uses_the_dga_limits_weights_and_publish_interval() -> None:
    # 5 ppm C2H2 is typical by default (IEC 60599 Table A.1: 20): no diagnosis.
    active, published = _run(Router(None, HealthConfig()), [0, 600, 1200], 5.0)
    assert active == [] and len(published) == 3  # default 60 s: every window (600 s apart)
    # A stricter fleet value (3 ppm) makes the same sample a problem: the triangle speaks.
    strict = _config({"dga_typical_ppm": {"c2h2": 3}, "publish_interval_s": 1000,
                      "weights": {"dga": 9}})  # fmt: skip
    active, published = _run(Router(None, strict), [0, 600, 1200], 5.0)
    assert active and all(k.startswith("dga_") for k in active)
    assert len(published) == 2  # windows end at 540, 1140, 1740 s: 1140 is too soon
    assert published[0]["factors"]["dga"]["weight"] == 9.0


def test_a_reload_reconfigures_the_router() -> None:
    router = Router(None, HealthConfig())
    assert not _run(router, [0], 5.0)[0]
    router.configure(_config({"dga_typical_ppm": {"c2h2": 3}, "hot_spot_limit_c": 120}))
    assert _run(router, [600], 5.0)[0]
    assert router.transformer.defaults["hot_spot_limit_c"] == 120.0


def test_the_example_config_shows_the_defaults() -> None:
    example = Path(__file__).resolve().parents[3] / "deploy" / "edgepipe.example.toml"
    assert load_config(example).health == HealthConfig()
