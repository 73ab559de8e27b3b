"""The benchmark report's arithmetic: percentiles, medians with ranges, verdicts, py-spy profile summaries."""

# ruff: noqa: RUF001 - the report's own typography (en dash ranges, multiplication sign)

from __future__ import annotations

import math

from bench.common import Stat, percentile
from bench.profile import summarise
from bench.report import Target


def test_percentile_is_nearest_rank() -> None:
    data = [float(v) for v in range(1, 101)]
    assert (percentile(data, 50), percentile(data, 99), percentile(data, 100)) == (50.0, 99.0, 100.0)
    assert percentile([3.0], 99) == 3.0
    assert math.isnan(percentile([], 50))


def test_stat_is_the_median_and_range_of_the_repetitions() -> None:
    s = Stat.of([3.0, 1.0, 2.0, float("nan")])
    assert (s.median, s.min, s.max, s.n) == (2.0, 1.0, 3.0, 3)
    assert s.fmt(1, " ms") == "2.0 ms (1.0–3.0)"
    assert Stat.of([]).fmt() == "–"


def test_verdicts_say_by_how_much_a_target_is_missed() -> None:
    assert Target("2", "cpu", 1.5, 0.5, "ms").verdict() == "missed: 3.00× the target"
    assert Target("5", "req/s", 23_500, 47_000, "req/s", direction="ge").verdict() == "missed: 50 % of the target"
    assert Target("3", "rss", 70, 80, "MiB").verdict() == "met"
    assert Target("3", "rss", float("nan"), 80, "MiB").verdict() == "not measured"


def test_profile_summary_drops_idle_samples_and_ranks_frames() -> None:
    raw = "\n".join(
        [
            "process 1;thread (0x1);main (app/__main__.py:5);handle (app/api/pipeline.py:10);enc (x/msgspec/y.py:1) 6",
            "process 1;thread (0x1);main (app/__main__.py:5);handle (app/api/pipeline.py:10) 2",
            "process 1;thread (0x1);run_forever (asyncio/base_events.py:600);select (selectors.py:468) 40",
        ]
    )
    p = summarise(raw, top=5)
    assert (p.samples, p.idle_samples) == (8, 40)
    assert [(f.frame, f.share) for f in p.self_top] == [
        ("enc (x/msgspec/y.py:1)", 0.75),
        ("handle (app/api/pipeline.py:10)", 0.25),
    ]
    assert ("handle (app/api/pipeline.py:10)", 1.0) in [(f.frame, f.share) for f in p.inclusive_top]
    assert all("__main__" not in f.frame for f in p.inclusive_top)  # start-up scaffolding is left out
    assert [(f.frame, f.share) for f in p.by_component] == [
        ("msgspec", 0.75),
        ("app/api (middleware, routes, pipeline)", 0.25),
    ]
