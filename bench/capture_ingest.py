"""Capture and ingest throughput.

capture: `Client.capture` in one thread against the standard library's `logging` writing the same
         event as one JSON line to a file (`logger.info(json.dumps(event))`, a FileHandler), and against
         `os.write` of pre-serialised lines (the floor), in alternating rounds; each side's rate is its
         median over the rounds.
ingest:  `ingest_spool` of SDK-written segments against DuckDB's own `read_json` load of the same files.
Events are the sample events cycled without their `event_id`, so the SDK gives each a fresh one.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from functools import partial
from itertools import cycle, islice
from pathlib import Path
from statistics import median
from typing import Iterable

import duckdb
import orjson

from bench import result
from feedback import Client, ingest_spool, init_workspace
from feedback.capture.spool import DONE, sealed_segments

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
CAPTURE_EVENTS = 200_000
CAPTURE_TARGET = 2.0  # times the rate of logging the same event as a JSON line
CAPTURE_ROUNDS = 7
INGEST_EVENTS = 1_000_000
INGEST_TARGET = 0.5  # of DuckDB's own load rate


def run(scale: float) -> list[dict]:
    lines = (SAMPLE / "events.jsonl").read_bytes().splitlines(keepends=True)
    events = [{k: v for k, v in orjson.loads(line).items() if k != "event_id"} for line in lines]
    labels = json.loads((SAMPLE / "taxonomy.json").read_text())
    with tempfile.TemporaryDirectory(prefix="feedback-bench-") as tmp:
        tmp = Path(tmp)
        return [
            *capture_rate(tmp, events, lines, labels, max(1, round(CAPTURE_EVENTS * scale))),
            *ingest_rate(tmp, events, labels, max(1, round(INGEST_EVENTS * scale))),
        ]


def capture_rate(tmp: Path, events: list[dict], lines: list[bytes], labels: list[str], n: int) -> list[dict]:
    """Median rates over rounds that alternate the three writers, so that load changes hit all alike."""
    client = Client(init_workspace(tmp / "capture", dataset="bench", labels=labels))
    logger = json_line_logger(tmp / "logging.jsonl")
    fd = os.open(tmp / "raw.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    per_round = max(1, n // CAPTURE_ROUNDS)
    event_stream, line_stream = cycle(events), cycle(lines)
    raw, logged, sdk = [], [], []
    for _ in range(CAPTURE_ROUNDS):
        raw.append(per_round / timed(partial(os.write, fd), islice(line_stream, per_round)))
        logged.append(per_round / timed(lambda event: logger.info(json.dumps(event)), islice(event_stream, per_round)))
        sdk.append(per_round / timed(client.capture, islice(event_stream, per_round)))
    os.close(fd)
    logger.handlers[0].close()
    client.close()
    expected = per_round * CAPTURE_ROUNDS
    if client.stats != {"accepted": expected, "rejected": 0, "dropped": 0}:
        raise RuntimeError(f"the SDK accepted {client.stats['accepted']:,} of {expected:,} events: {client.stats}")
    rate, what = median(sdk), f"Client.capture, 1 thread, {expected:,} events (median of {CAPTURE_ROUNDS} rounds)"
    return [
        result("capture", f"{what} vs logging a JSON line", rate, "events/s", baseline=median(logged),
               target=f">= {CAPTURE_TARGET:g}x logging", ok=rate >= CAPTURE_TARGET * median(logged)),
        result("capture", f"{what} vs os.write of ready lines (the floor)", rate, "events/s", baseline=median(raw),
               target="informational", ok=True),
    ]


def json_line_logger(path: Path) -> logging.Logger:
    """What a service does without the SDK: the standard library's logging, one JSON line per event, to a file."""
    logger = logging.getLogger("bench.capture.baseline")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers = [handler]
    return logger


def timed(call, items: Iterable) -> float:
    """Seconds that `call` takes over `items` (materialised first, so that only the calls are timed)."""
    items = list(items)
    start = time.perf_counter()
    for item in items:
        call(item)
    return time.perf_counter() - start


def ingest_rate(tmp: Path, events: list[dict], labels: list[str], n: int) -> list[dict]:
    ws = init_workspace(tmp / "ingest", dataset="bench", labels=labels)
    spool_events(ws, events, n)
    files = [str(path) for path in sealed_segments(ws.path("spool"))]

    # DuckDB loads the files before and after our ingest (which moves them to spool/done/), and the
    # baseline is the mean of the two rates, so that a change in machine load during the run evens out.
    before = n / duckdb_load(files, tmp / "before.duckdb")
    start = time.perf_counter()
    report = ingest_spool(ws)
    ours = n / (time.perf_counter() - start)
    done = ws.path("spool") / DONE
    after = n / duckdb_load([str(done / Path(f).name) for f in files], tmp / "after.duckdb")
    duck = (before + after) / 2

    counts = ws.store().rows("SELECT count(*) AS stored, count(DISTINCT event_id) AS ids FROM events")[0]
    stored, distinct = counts["stored"], counts["ids"]
    exact = stored == distinct == report.events == n and not report.quarantined
    return [
        result("ingest", f"ingest_spool, {n:,} events in {len(files)} segments", ours, "events/s", baseline=duck,
               target=f">= {INGEST_TARGET}x DuckDB read_json", ok=ours >= INGEST_TARGET * duck),
        result("ingest", f"stored after ingest: {stored:,} rows, {distinct:,} distinct event_id", stored, "events",
               target=f"exactly {n:,}", ok=exact),
    ]


def duckdb_load(files: list[str], database: Path) -> float:
    """Seconds DuckDB takes to load JSONL files into a new database file, connect and close included."""
    start = time.perf_counter()
    con = duckdb.connect(str(database))
    con.execute("CREATE TABLE t AS SELECT * FROM read_json(?, format = 'newline_delimited')", [files])
    con.close()
    return time.perf_counter() - start


def spool_events(ws, events: list[dict], n: int) -> None:
    """Capture `n` events (cycling `events`) with one client and seal them."""
    client = Client(ws)
    timed(client.capture, islice(cycle(events), n))
    client.close()
    if client.stats["accepted"] != n:
        raise RuntimeError(f"the SDK accepted {client.stats['accepted']:,} of {n:,} events: {client.stats}")
