"""Fixtures shared by the API tests (the session-wide `api` and `offline_model` live in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api_harness import ApiServer, ThreadedOfflineModel


@pytest.fixture(autouse=True)
def _scripts_consumed(script_guard: None) -> None:
    """Every API test runs under the run-wide script guard (tests/conftest.py)."""


@pytest.fixture
def model(offline_model: ThreadedOfflineModel) -> ThreadedOfflineModel:
    return offline_model


@pytest.fixture
def http(api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.base_url, headers=api.headers(), timeout=30) as client:
        yield client
