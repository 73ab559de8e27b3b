"""Restart backoff is a pure generator: jittered start, times factor, capped."""

from __future__ import annotations

import itertools

from app.codex.pool import backoff_delays


def test_doubles_until_the_cap_without_jitter():
    delays = list(itertools.islice(backoff_delays(0.5, 4.0, jitter=0.0), 6))
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_jitter_stays_within_its_band():
    low = list(itertools.islice(backoff_delays(1.0, 8.0, jitter=0.25, rng=lambda: 0.0), 3))
    high = list(itertools.islice(backoff_delays(1.0, 8.0, jitter=0.25, rng=lambda: 1.0), 3))
    assert low == [0.75, 1.5, 3.0]
    assert high == [1.25, 2.5, 5.0]


def test_a_new_generator_is_a_reset():
    first = backoff_delays(0.5, 10.0, jitter=0.0)
    for _ in range(4):
        next(first)
    assert next(backoff_delays(0.5, 10.0, jitter=0.0)) == 0.5
