"""Feeding helpers: every streaming test runs whole, byte by byte and in random chunks."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.c37118.codec import NEED_DATA, Decoder, Event

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"

Feed = Callable[[Decoder, bytes], list[Event]]


def _chunks(data: bytes, mode: str, seed: int = 7) -> Iterator[bytes]:
    if mode == "whole":
        yield data
    elif mode == "bytewise":
        for i in range(len(data)):
            yield data[i : i + 1]
    else:
        rng = random.Random(seed)
        i = 0
        while i < len(data):
            n = rng.randint(1, 300)
            yield data[i : i + n]
            i += n


def drain(decoder: Decoder, data: bytes, mode: str) -> list[Event]:
    events: list[Event] = []
    for chunk in _chunks(data, mode):
        decoder.receive_data(chunk)
        while (event := decoder.next_event()) is not NEED_DATA:
            events.append(event)
    return events


@pytest.fixture(params=["whole", "bytewise", "random"])
def feed(request: pytest.FixtureRequest) -> Feed:
    """Feed bytes to a decoder in one of three chunkings; returns all events."""
    mode: str = request.param
    return lambda decoder, data: drain(decoder, data, mode)


@pytest.fixture
def data_dir() -> Path:
    assert DATA.is_dir(), f"reference data missing: {DATA}"
    return DATA
