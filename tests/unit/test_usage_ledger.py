"""The usage ledger in-process: appends off the event loop, intact lines, rotation, corrupt lines, exact sums."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from pathlib import Path

import msgspec
import pytest

from app import usage as usage_module
from app.usage import DAY_MS, HOUR_MS, UsageLog, UsageRecord

NOW = 1_796_000_000_000 - 1_796_000_000_000 % DAY_MS + 15 * HOUR_MS + 1234  # 15:00:01.234 UTC on some day


def rec(i: int, ts: int, key: str = "alice", model: str = "codex-5", tokens: int = 10) -> UsageRecord:
    return UsageRecord(
        ts=ts,
        request_id=f"req-{i:06d}-" + "x" * (i % 97),
        route="/v1/chat/completions",
        model=model,
        key=key,
        stream=bool(i % 2),
        outcome="completed",
        duration_ms=i,
        input_tokens=tokens - 3,
        output_tokens=3,
        total_tokens=tokens,
    )


def lines_of(log: UsageLog) -> list[bytes]:
    return [line for path in log.files() for line in path.read_bytes().splitlines()]


async def test_concurrent_appends_leave_one_intact_line_each(tmp_path: Path) -> None:
    log = UsageLog(tmp_path / "usage.ndjson")

    async def request(i: int) -> None:
        await asyncio.sleep(random.random() / 100)
        log.append(rec(i, NOW + i, key=f"k{i % 7}"))

    await asyncio.gather(*(request(i) for i in range(200)))
    assert log.flush(10)
    decoded = [msgspec.json.decode(line, type=UsageRecord) for line in lines_of(log)]
    assert sorted(r.duration_ms for r in decoded) == list(range(200))
    log.close()


def test_append_returns_while_the_disk_is_stuck(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller (the event loop) never waits for the disk: the writer thread does."""
    released = threading.Event()
    real_write = usage_module._write_all

    def stuck_write(fd: int, data: bytes) -> None:
        released.wait(30)
        real_write(fd, data)

    monkeypatch.setattr(usage_module, "_write_all", stuck_write)
    log = UsageLog(tmp_path / "usage.ndjson")
    now = int(usage_module.time.time() * 1000)
    for i in range(50):
        log.append(rec(i, now))
    assert log.flush(0.05) is False  # nothing could be written yet, and append() returned anyway
    assert log.tokens_today("alice") == 500  # the in-memory count does not wait for the disk either
    released.set()
    assert log.flush(10) is True
    assert len(lines_of(log)) == 50
    log.close()


def test_rotation_keeps_at_most_max_files(tmp_path: Path) -> None:
    log = UsageLog(tmp_path / "usage.ndjson", max_bytes=8192, max_files=3)
    for i in range(400):
        log.append(rec(i, NOW + i))
        if i % 50 == 0:
            log.flush(10)
    log.flush(10)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["usage.ndjson", "usage.ndjson.1", "usage.ndjson.2"]
    assert all(p.stat().st_size <= 8192 for p in tmp_path.iterdir())
    kept = [msgspec.json.decode(line, type=UsageRecord).duration_ms for line in lines_of(log)]
    assert kept == list(range(400 - len(kept), 400))  # the newest, in order; the oldest were dropped
    summary = log.summary(0, NOW + 10_000, None)
    assert summary.totals.requests == len(kept)
    log.close()


def test_a_corrupt_line_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "usage.ndjson"
    good = msgspec.json.encode(rec(1, NOW))
    path.write_bytes(good + b"\n" + b'{"ts": 12, "request_id": "torn' + b"\n" + good + b"\n" + b"[1,2]\n")
    log = UsageLog(path)
    with caplog.at_level(logging.WARNING, logger="app.usage"):
        summary = log.summary(0, NOW + 1, None)
        tail = log.tail(10)
    assert summary.totals.requests == 2
    assert len(tail) == 2
    assert "skipped 2 corrupt line(s)" in caplog.text


def test_an_unfinished_last_line_is_left_for_later(tmp_path: Path) -> None:
    path = tmp_path / "usage.ndjson"
    line = msgspec.json.encode(rec(1, NOW))
    path.write_bytes(line + b"\n" + line[:20])
    log = UsageLog(path)
    assert log.summary(0, NOW + 1, None).totals.requests == 1
    with path.open("ab") as f:
        f.write(line[20:] + b"\n")
    assert log.summary(0, NOW + 1, None).totals.requests == 2  # the digest picks up where it stopped


def _brute(records: list[UsageRecord], start: int, end: int, key: str | None, group: str | None) -> dict:
    chosen = [r for r in records if start <= r.ts < end and (key is None or r.key == key)]
    by_key: dict[str, int] = {}
    by_model: dict[str, int] = {}
    buckets: dict[int, int] = {}
    size = DAY_MS if group == "day" else HOUR_MS
    for r in chosen:
        by_key[r.key] = by_key.get(r.key, 0) + r.total_tokens
        by_model[r.model] = by_model.get(r.model, 0) + r.total_tokens
        buckets[r.ts // size * size] = buckets.get(r.ts // size * size, 0) + 1
    return {
        "requests": len(chosen),
        "tokens": sum(r.total_tokens for r in chosen),
        "by_key": by_key,
        "by_model": by_model,
        "buckets": sorted(buckets.values()) if group else None,
    }


def test_summary_equals_a_brute_force_count(tmp_path: Path) -> None:
    """Random ranges (cutting hours and days), keys and groupings, with appends and rotations in between:
    the digest-backed summary must be exact."""
    rng = random.Random(7)
    log = UsageLog(tmp_path / "usage.ndjson", max_bytes=64 * 1024, max_files=1000)
    records: list[UsageRecord] = []
    ts = NOW - 3 * DAY_MS
    for round_ in range(6):
        for _ in range(400):
            ts += rng.randrange(0, 2 * 60_000)
            r = rec(
                len(records),
                ts,
                key=rng.choice(["alice", "bob", "carol"]),
                model=rng.choice(["codex-5", "codex-5-high"]),
                tokens=rng.randrange(1, 5000),
            )
            records.append(r)
            log.append(r)
        log.flush(10)
        for _ in range(15):
            start = rng.randrange(records[0].ts - HOUR_MS, ts + HOUR_MS)
            end = rng.randrange(start, ts + 2 * HOUR_MS)
            if rng.random() < 0.3:  # whole hours: served from the digests alone
                start, end = start - start % HOUR_MS, end - end % HOUR_MS
            key = rng.choice([None, "alice", "bob"])
            group = rng.choice([None, "hour", "day"])
            got = log.summary(start, end, group, key=key)
            want = _brute(records, start, end, key, group)
            assert got.totals.requests == want["requests"], (round_, start, end, key)
            assert got.totals.total_tokens == want["tokens"]
            assert {k: t.total_tokens for k, t in got.by_key.items()} == want["by_key"]
            assert {m: t.total_tokens for m, t in got.by_model.items()} == want["by_model"]
            if group:
                assert got.buckets is not None
                assert sorted(b.totals.requests for b in got.buckets) == want["buckets"]
    assert len(log.files()) > 3  # the history spans several rotated files
    log.close()


def test_tail_is_the_newest_records_oldest_first_and_per_key(tmp_path: Path) -> None:
    log = UsageLog(tmp_path / "usage.ndjson", max_bytes=4096, max_files=50)
    for i in range(300):
        log.append(rec(i, NOW + i, key="alice" if i % 3 else "bob"))
    assert [r.duration_ms for r in log.tail(5)] == [295, 296, 297, 298, 299]
    assert [r.duration_ms for r in log.tail(3, key="bob")] == [291, 294, 297]
    assert len(log.tail(10_000)) == 300
    log.close()


def test_tokens_today_counts_appends_and_is_seeded_from_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "usage.ndjson"
    first = UsageLog(path)
    now = usage_module.time.time() * 1000
    first.append(rec(1, int(now), key="alice", tokens=40))
    first.append(rec(2, int(now) - 2 * DAY_MS, key="alice", tokens=1000))  # another day: not counted
    first.append(rec(3, int(now), key="bob", tokens=7))
    assert (first.tokens_today("alice"), first.tokens_today("bob"), first.tokens_today("carol")) == (40, 7, 0)
    first.close()
    second = UsageLog(path)
    second.load_today()
    assert (second.tokens_today("alice"), second.tokens_today("bob")) == (40, 7)
