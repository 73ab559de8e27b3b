"""In-process tests: the real app on scripted turn events (tests/seam.py); no codex, no sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.seam import Seam, seam


@pytest.fixture
async def s(tmp_path) -> AsyncIterator[Seam]:
    async with seam(tmp_path) as sm:
        yield sm
        assert sm.turns.left() == 0, "a scripted turn was never requested"
        assert all(t.released.is_set() for t in sm.turns.turns), "a turn was never released by the pipeline"
