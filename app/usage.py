"""Per-request usage records: an append-only NDJSON ledger behind `/v1/usage` and the per-key token budget.

One line per generation request that passed validation (completed, failed, timed out, cancelled, or rejected
because no worker could take it) with the exact token counts Codex reported — never estimates, never prompt
or completion text. The file lives in the private Codex home by default (0600) and survives restarts.

At scale (issue 11):
- `append` never blocks the event loop: it encodes the line and queues it; one writer thread owns the file
  and writes whole batches with `O_APPEND`, so lines never interleave however many requests finish at once.
- Rotation by size: when the current file would pass `max_bytes` it becomes `usage.ndjson.1` (`.1` → `.2` …)
  and at most `max_files` files are kept, the oldest dropped.
- Aggregation streams the files in 1 MiB blocks (a block of lines is decoded as one JSON array; a block with a
  bad line falls back to line by line, skipping the corrupt line with a warning). Each file's records are
  folded once into a digest of hourly cells per (model, key) — extended incrementally as the file grows — so
  a summary re-reads only what is new, plus an exact re-scan of a file only when the range cuts an hour that
  has records on both sides of a boundary.
- The tokens each key used today (UTC) are counted in memory from every append, seeded from the ledger at
  start, for the per-key `tokens_per_day` budget.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import msgspec

from app.quota import PlanQuotaView

logger = logging.getLogger(__name__)

Group = Literal["hour", "day"]
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
BLOCK = 1 << 20
MAX_CELLS = 200_000  # per file; beyond it (absurdly sparse history) the file is simply scanned each time


class UsageRecord(msgspec.Struct, frozen=True, kw_only=True):
    ts: int  # epoch milliseconds
    request_id: str
    route: str
    model: str
    key: str
    stream: bool
    outcome: str  # completed | failed | timeout | cancelled | worker_lost | interrupted | rejected
    duration_ms: int
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0


class Totals(msgspec.Struct):
    requests: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0

    def add(self, r: UsageRecord) -> None:
        self.requests += 1
        self.input_tokens += r.input_tokens
        self.cached_input_tokens += r.cached_input_tokens
        self.output_tokens += r.output_tokens
        self.reasoning_tokens += r.reasoning_tokens
        self.total_tokens += r.total_tokens

    def add_counts(self, c: list[int]) -> None:
        self.requests += c[0]
        self.input_tokens += c[1]
        self.cached_input_tokens += c[2]
        self.output_tokens += c[3]
        self.reasoning_tokens += c[4]
        self.total_tokens += c[5]


class Bucket(msgspec.Struct):
    start: str
    totals: Totals


class UsageSummary(msgspec.Struct):
    start: int
    end: int
    totals: Totals
    by_model: dict[str, Totals]
    by_key: dict[str, Totals]
    buckets: list[Bucket] | None = None
    plan: PlanQuotaView | None = None  # the ChatGPT plan's windows (shared by every key)
    object_: Literal["usage.summary"] = msgspec.field(default="usage.summary", name="object")


class UsageEvents(msgspec.Struct):
    data: list[UsageRecord]
    object_: Literal["list"] = msgspec.field(default="list", name="object")


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(UsageRecord)
_BLOCK_DECODER = msgspec.json.Decoder(list[UsageRecord])
_STOP = object()  # queued by close(): the writer finishes the batch and exits
# The writer takes what queued up in this long before writing again: a thread wake-up (and a GIL hand-over from
# the event loop) per batch instead of per request, which was ≈ 5 % of the relay's CPU (issue 15).
WRITE_INTERVAL = 0.05

# A cell: [requests, input, cached, output, reasoning, total, min_ts, max_ts], keyed by (hour, model, key).
Cell = list[int]
CellKey = tuple[int, str, str]


def _new_cell(r: UsageRecord) -> Cell:
    return [1, r.input_tokens, r.cached_input_tokens, r.output_tokens, r.reasoning_tokens, r.total_tokens, r.ts, r.ts]


def _fold(cells: dict[CellKey, Cell], r: UsageRecord) -> None:
    k = (r.ts // HOUR_MS, r.model, r.key)
    c = cells.get(k)
    if c is None:
        cells[k] = _new_cell(r)
        return
    c[0] += 1
    c[1] += r.input_tokens
    c[2] += r.cached_input_tokens
    c[3] += r.output_tokens
    c[4] += r.reasoning_tokens
    c[5] += r.total_tokens
    if r.ts < c[6]:
        c[6] = r.ts
    if r.ts > c[7]:
        c[7] = r.ts


def decode_block(block: bytes, source: Path) -> list[UsageRecord]:
    """Complete lines → records. One array decode when every line is good, else line by line (bad ones skipped,
    counted in one warning)."""
    if not block:
        return []
    lines = block.count(b"\n")
    try:
        records = _BLOCK_DECODER.decode(b"[" + block[:-1].replace(b"\n", b",") + b"]")
        if len(records) == lines:
            return records
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    records = []
    bad = 0
    for line in block.splitlines():
        if not line.strip():
            continue
        try:
            records.append(_DECODER.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError):
            bad += 1
    if bad:
        logger.warning("usage log %s: skipped %d corrupt line(s)", source, bad)
    return records


def read_records(path: Path, offset: int = 0) -> Iterator[tuple[list[UsageRecord], int]]:
    """Stream `path` from `offset` in blocks of complete lines: (records, offset after them). A last line
    without its newline (a write in progress, or torn by a crash) is left for a later read."""
    with contextlib.suppress(FileNotFoundError), path.open("rb") as f:
        f.seek(offset)
        pending = b""
        while True:
            chunk = f.read(BLOCK)
            if not chunk:
                return
            data = pending + chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                pending = data
                continue
            pending = data[cut:]
            offset += cut
            yield decode_block(data[:cut], path), offset


def reverse_lines(path: Path) -> Iterator[bytes]:
    """The complete lines of `path`, last first, reading backwards in blocks (for the newest-N tail)."""
    with contextlib.suppress(FileNotFoundError), path.open("rb") as f:
        end = f.seek(0, os.SEEK_END)
        rest = b""
        first = True
        while end > 0:
            start = max(0, end - BLOCK)
            f.seek(start)
            data = f.read(end - start) + rest
            end = start
            lines = data.split(b"\n")
            rest = lines.pop(0) if start > 0 else b""
            if first:
                lines.pop()  # after the last newline: empty, or an unfinished line
                first = False
            for line in reversed(lines):
                if line.strip():
                    yield line
        if rest.strip():
            yield rest


class _Digest:
    """One file's records folded into hourly cells, up to `offset` bytes, plus a block index
    (start offset, end offset, min ts, max ts) so an exact count of a few hours reads only their blocks."""

    __slots__ = ("blocks", "cacheable", "cells", "offset")

    def __init__(self) -> None:
        self.offset = 0
        self.cells: dict[CellKey, Cell] = {}
        self.blocks: list[tuple[int, int, int, int]] = []
        self.cacheable = True

    def extend(self, path: Path) -> None:
        for records, offset in read_records(path, self.offset):
            if records:
                self.blocks.append((self.offset, offset, min(r.ts for r in records), max(r.ts for r in records)))
            if self.cacheable:
                for r in records:
                    _fold(self.cells, r)
                if len(self.cells) > MAX_CELLS:
                    self.cacheable = False
                    self.cells = {}
            self.offset = offset


def read_range(path: Path, start: int, end: int) -> list[UsageRecord]:
    """The records in bytes [start, end) of `path` (a block boundary recorded by a digest)."""
    with contextlib.suppress(FileNotFoundError), path.open("rb") as f:
        f.seek(start)
        return decode_block(f.read(end - start), path)
    return []


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _utc_day(ts_ms: int) -> int:
    return ts_ms // DAY_MS


class UsageLog:
    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        max_files: int = 8,
        on_append: Callable[[UsageRecord], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.clock = clock  # wall clock (seconds) deciding which UTC day "today" is
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.on_append = on_append
        self._queue: queue.SimpleQueue[bytes | object] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._cv = threading.Condition()
        self._queued = 0
        self._written = 0
        self._fd: int | None = None
        self._fd_inode: int | None = None
        self._digests: dict[tuple[int, int], _Digest] = {}
        self._read_lock = threading.Lock()
        self._today = _utc_day(int(clock() * 1000))
        self._today_tokens: dict[str, int] = {}

    # ---- writing -------------------------------------------------------------------------------------------

    def append(self, record: UsageRecord) -> None:
        """Queue one record for the writer thread (never blocks on the disk); a failing disk never fails a
        request (the writer logs it)."""
        line = _ENCODER.encode(record) + b"\n"
        day = _utc_day(record.ts)
        if day > self._today:
            self._today, self._today_tokens = day, {}
        if day == self._today and record.total_tokens:
            self._today_tokens[record.key] = self._today_tokens.get(record.key, 0) + record.total_tokens
        if self.on_append is not None:
            self.on_append(record)
        self._ensure_writer()
        with self._cv:
            self._queued += 1
        self._queue.put(line)

    def tokens_today(self, key: str) -> int:
        """Total tokens `key` used since 00:00 UTC (exact, from the records)."""
        if _utc_day(int(self.clock() * 1000)) != self._today:
            return 0
        return self._today_tokens.get(key, 0)

    def load_today(self) -> None:
        """Seed the per-key token counters from the ledger (at start-up, before serving)."""
        started = time.monotonic()
        now = int(self.clock() * 1000)
        day_start = _utc_day(now) * DAY_MS
        summary = self.summary(day_start, day_start + DAY_MS, None)
        self._today = _utc_day(now)
        self._today_tokens = {k: t.total_tokens for k, t in summary.by_key.items() if t.total_tokens}
        with self._read_lock:
            size = sum(d.offset for d in self._digests.values())
        logger.info("usage ledger %s: %d MB read in %.1f s", self.path, size // 2**20, time.monotonic() - started)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is on disk (or handed to a failing disk); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cv:
            target = self._queued
            while self._written < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cv.wait(remaining)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued and stop the writer thread (the app's lifespan calls it on shutdown)."""
        writer = self._writer
        if writer is None:
            return
        self._queue.put(_STOP)
        writer.join(timeout)
        self._writer = None

    def _ensure_writer(self) -> None:
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(target=self._run, name="usage-writer", daemon=True)
            self._writer.start()

    def _run(self) -> None:
        stop = False
        while not stop:
            batch = [self._queue.get()]
            with contextlib.suppress(queue.Empty):
                while len(batch) < 4096:
                    batch.append(self._queue.get_nowait())
            lines = [line for line in batch if isinstance(line, bytes)]
            stop = len(lines) != len(batch)
            if lines:
                try:
                    self._write(lines)
                except Exception:  # a bug here must not stop the writer (flush() would then always time out)
                    logger.exception("usage log %s: %d record(s) lost", self.path, len(lines))
            with self._cv:
                self._written += len(lines)
                self._cv.notify_all()
            if not stop and len(batch) < 4096:
                time.sleep(WRITE_INTERVAL)
        self._close_fd()

    def _write(self, lines: list[bytes]) -> None:
        """Append whole lines, rotating first whenever the next line would take the file past `max_bytes`."""
        try:
            fd = self._open()
            size = os.fstat(fd).st_size
            chunk: list[bytes] = []
            chunk_bytes = 0
            for line in lines:
                if size + chunk_bytes + len(line) > self.max_bytes and (size or chunk):
                    _write_all(fd, b"".join(chunk))
                    chunk, chunk_bytes = [], 0
                    self._rotate()
                    fd = self._open()
                    size = 0
                chunk.append(line)
                chunk_bytes += len(line)
            _write_all(fd, b"".join(chunk))
        except OSError as exc:
            logger.error("usage log %s not writable: %s", self.path, exc)
            self._close_fd()

    def _open(self) -> int:
        """The fd of the current file, reopened when the path now names another file (rotated or removed)."""
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            inode = None
        if self._fd is not None and inode == self._fd_inode:
            return self._fd
        self._close_fd()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._fd_inode = os.fstat(self._fd).st_ino
        return self._fd

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = self._fd_inode = None

    def _rotate(self) -> None:
        """usage.ndjson → .1 → .2 …; at most `max_files` files in all (the oldest is removed)."""
        self._close_fd()
        names = [self.path] + [self._rotated(i) for i in range(1, self.max_files)]
        with contextlib.suppress(FileNotFoundError):
            (self._rotated(self.max_files - 1) if self.max_files > 1 else self.path).unlink()
        for older, newer in zip(reversed(names[1:]), reversed(names[:-1]), strict=True):
            with contextlib.suppress(FileNotFoundError):
                newer.rename(older)
        logger.info("usage log %s rotated (keeping at most %d files)", self.path, self.max_files)

    def _rotated(self, index: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{index}")

    def files(self) -> list[Path]:
        """The ledger's files, oldest first."""
        rotated = [self._rotated(i) for i in range(self.max_files - 1, 0, -1)]
        return [p for p in [*rotated, self.path] if p.exists()]

    # ---- reading -------------------------------------------------------------------------------------------

    def records(self) -> Iterator[UsageRecord]:
        """Every record, oldest first, streamed."""
        self.flush(1.0)
        for path in self.files():
            for records, _ in read_records(path):
                yield from records

    def summary(self, start: int, end: int, group: Group | None, key: str | None = None) -> UsageSummary:
        """Totals of the records with `start <= ts < end` (only `key`'s when given), by model and key, optionally
        in UTC hour/day buckets."""
        self.flush(1.0)
        totals = Totals()
        by_model: dict[str, Totals] = {}
        by_key: dict[str, Totals] = {}
        buckets: dict[int, Totals] = {}
        bucket_ms = DAY_MS if group == "day" else HOUR_MS

        def add_cell(model: str, rkey: str, ts: int, counts: list[int]) -> None:
            totals.add_counts(counts)
            by_model.setdefault(model, Totals()).add_counts(counts)
            by_key.setdefault(rkey, Totals()).add_counts(counts)
            if group is not None:
                buckets.setdefault(ts // bucket_ms, Totals()).add_counts(counts)

        with self._read_lock:
            files = self.files()
            self._drop_stale_digests(files)
            for path in files:
                digest = self._digest(path)
                if digest is None:
                    continue
                if not digest.cacheable:
                    self._scan_exact(path, start, end, key, add_cell)
                    continue
                straddling: set[CellKey] = set()
                for cell_key, c in digest.cells.items():
                    hour, model, rkey = cell_key
                    if (key is not None and rkey != key) or c[7] < start or c[6] >= end:
                        continue
                    if start <= c[6] and c[7] < end:
                        add_cell(model, rkey, hour * HOUR_MS, c)
                    else:
                        straddling.add(cell_key)  # records on both sides of a boundary: count them one by one
                if straddling:
                    self._count_cells(path, digest, straddling, start, end, add_cell)
        return UsageSummary(
            start=start,
            end=end,
            totals=totals,
            by_model=by_model,
            by_key=by_key,
            buckets=[Bucket(start=_iso(k * bucket_ms), totals=v) for k, v in sorted(buckets.items())]
            if group
            else None,
        )

    @staticmethod
    def _scan_exact(
        path: Path, start: int, end: int, key: str | None, add_cell: Callable[[str, str, int, list[int]], None]
    ) -> None:
        """Fold the records in range into temporary cells (same arithmetic as the digest), then add them."""
        cells: dict[CellKey, Cell] = {}
        for records, _ in read_records(path):
            for r in records:
                if start <= r.ts < end and (key is None or r.key == key):
                    _fold(cells, r)
        for (hour, model, rkey), c in cells.items():
            add_cell(model, rkey, hour * HOUR_MS, c)

    @staticmethod
    def _count_cells(
        path: Path,
        digest: _Digest,
        wanted: set[CellKey],
        start: int,
        end: int,
        add_cell: Callable[[str, str, int, list[int]], None],
    ) -> None:
        """Exact counts of the in-range records of the `wanted` cells, reading only the blocks their hours touch."""
        hours = {h for h, _, _ in wanted}
        cells: dict[CellKey, Cell] = {}
        for first, last, lo, hi in digest.blocks:
            if not any(lo < (h + 1) * HOUR_MS and hi >= h * HOUR_MS for h in hours):
                continue
            for r in read_range(path, first, last):
                if start <= r.ts < end and (r.ts // HOUR_MS, r.model, r.key) in wanted:
                    _fold(cells, r)
        for (hour, model, rkey), c in cells.items():
            add_cell(model, rkey, hour * HOUR_MS, c)

    def _digest(self, path: Path) -> _Digest | None:
        """The file's digest, extended to its current end; digests of files that are gone are dropped."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        ident = (st.st_dev, st.st_ino)
        digest = self._digests.get(ident)
        if digest is None or st.st_size < digest.offset:
            digest = self._digests[ident] = _Digest()
        if st.st_size > digest.offset:
            digest.extend(path)
        return digest

    def _drop_stale_digests(self, files: list[Path]) -> None:
        live = set()
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                st = path.stat()
                live.add((st.st_dev, st.st_ino))
        for stale in set(self._digests) - live:
            del self._digests[stale]

    def tail(self, limit: int, key: str | None = None) -> list[UsageRecord]:
        """The newest `limit` records (only `key`'s when given), oldest first; reads backwards from the end."""
        self.flush(1.0)
        out: list[UsageRecord] = []
        bad = 0
        for path in reversed(self.files()):
            for line in reverse_lines(path):
                try:
                    record = _DECODER.decode(line)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    bad += 1
                    continue
                if key is None or record.key == key:
                    out.append(record)
                    if len(out) >= limit:
                        break
            if len(out) >= limit:
                break
        if bad:
            logger.warning("usage log %s: skipped %d corrupt line(s)", self.path, bad)
        out.reverse()
        return out


def _iso(ts_ms: int) -> str:
    t = dt.datetime.fromtimestamp(ts_ms / 1000, tz=dt.UTC)
    return t.isoformat().replace("+00:00", "Z")


def bucket_start(ts_ms: int, group: Group) -> str:
    """UTC floor of the timestamp to the hour or day, ISO 8601."""
    return _iso(ts_ms - ts_ms % (DAY_MS if group == "day" else HOUR_MS))


def parse_time(value: str | None, default: int) -> int:
    """Epoch milliseconds (digits) or ISO 8601; None → default. Raises ValueError on anything else."""
    if value is None or value == "":
        return default
    if value.isdigit():
        return int(value)
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)
