"""Shared fixtures: a real mosquitto broker on a free loopback port.

If mosquitto is not installed the fixtures FAIL with the install command: a test that
needs a broker must never pass by being skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edgepipe.core import DeliveryError
from edgepipe.delivery.broker import MosquittoBroker


def _start_broker(persistence: bool = False) -> MosquittoBroker:
    try:
        return MosquittoBroker(persistence=persistence).start()
    except DeliveryError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def mosquitto() -> Iterator[MosquittoBroker]:
    """A broker of this test alone: kill, freeze and restart it freely."""
    broker = _start_broker(persistence=True)
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture(scope="session")
def mosquitto_session() -> Iterator[MosquittoBroker]:
    """One broker shared by the session; do not stop it. Use unique topics or sites."""
    broker = _start_broker()
    try:
        yield broker
    finally:
        broker.close()
