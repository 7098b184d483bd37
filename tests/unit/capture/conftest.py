"""`main()` points structlog at the (captured) stderr of the test that called it; put the
defaults back so later tests do not log into a closed capture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
