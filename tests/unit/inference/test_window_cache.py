"""The training window cache is reused only for the code, shards and features that cut it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path[:0] = [str(Path(__file__).resolve().parents[3] / "tools")]

import train_events  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "scenarios_sample.parquet"


def test_a_cache_is_reused_for_the_same_shards_and_cut_again_for_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shard = tmp_path / "kundur-fault-0.parquet"
    shard.write_bytes(SAMPLE.read_bytes())
    cache = tmp_path / "w.npz"
    first = train_events.load([shard], cache)
    assert len(first.y) > 0 and cache.exists()
    again = train_events.load([shard], cache)
    assert "recomputing" not in capsys.readouterr().out
    assert np.array_equal(again.x, first.x, equal_nan=True)

    other = tmp_path / "kundur-fault-1.parquet"  # another shard set: the cache is stale
    other.write_bytes(SAMPLE.read_bytes())
    train_events.load([shard, other], cache)
    assert "recomputing" in capsys.readouterr().out


def test_the_stamp_follows_the_model_features_and_the_hop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shard = tmp_path / "s.parquet"
    shard.write_bytes(b"x")
    before = train_events._stamp([shard], 3)
    assert train_events._stamp([shard], 2) != before  # the evaluation sets' hop
    monkeypatch.setattr(train_events, "MODEL_FEATURES", train_events.ALL_FEATURES)
    assert train_events._stamp([shard], 3) != before
