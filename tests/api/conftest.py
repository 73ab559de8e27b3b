"""Fixtures shared by the API tests (the session-wide `api` and `offline_model` live in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api_harness import ApiServer, ThreadedOfflineModel


@pytest.fixture(autouse=True)
def script_guard(offline_model: ThreadedOfflineModel) -> Iterator[None]:
    """The offline model is shared by the whole run: every scripted reply must be consumed by its own test,
    and leftovers are cleared so one failing test cannot feed the next one the wrong reply."""
    offline_model.clear_script()
    yield
    assert offline_model.clear_script() == 0, "a scripted reply was never requested by codex"


@pytest.fixture
def model(offline_model: ThreadedOfflineModel) -> ThreadedOfflineModel:
    return offline_model


@pytest.fixture
def http(api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.base_url, headers=api.headers(), timeout=30) as client:
        yield client
