from __future__ import annotations

import shutil

import pytest

from edgepipe.core import DeliveryError
from edgepipe.delivery.broker import MosquittoBroker


def test_missing_mosquitto_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda *_a, **_k: None)
    with pytest.raises(DeliveryError, match="apt-get install mosquitto"):
        MosquittoBroker()
