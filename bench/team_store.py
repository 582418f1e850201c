"""The team store: reviewers side by side, the queue, ingest and migration, on PostgreSQL against its peers.

One PostgreSQL server (`LocalServer`, durable: fsync on) runs for the whole bench; every baseline runs on it
in the same run.

reviewers: a queue of about 20,000 items (BANKING77 sample events spooled with fresh item ids and ingested,
           so the queue is what the queue rules make of them) in a file workspace; a copy of the file serves
           the DuckDB reviewers and `move_store` of the workspace the PostgreSQL ones. 1 and 4 reviewer
           processes, each with its own workspace folder and config pointing at the store (as separate
           machines would), loop `next_item` + `decide(check_stale=True)` for a fixed time. Baseline: as many
           processes running raw psycopg transactions on the same server, each a claim (`SELECT ... FOR
           UPDATE SKIP LOCKED` + UPDATE) and an INSERT of the decision.
queue page: `review.queue_page` on a PostgreSQL store of 1,000,000 items (the migrated workspace below), with
           the reviewer filters of bench/review.py, median of several calls, against the same SELECT run with
           psycopg on an open connection. Target under 100 ms.
ingest:    `ingest_spool` of 1,000,000 spooled events (sample events, fresh item ids per pass) into a PostgreSQL
           workspace, against COPY of the same rows (as CSV, exported from the stored events) into a plain
           table with the events table's columns.
           Target at least 0.5x COPY's rate. Beside it, the floor: COPY into a table with the events' keys
           and indexes too (event id, item, seq), which any store that finds events by them must keep.
migrate:   `workspace.move_store` (what `feedback store migrate --to URL` runs) of a file workspace of 1,000,000
           items written with SQL (bench/review.py's generator), against COPY of the same rows of every table
           into plain tables of the same columns.

`python -m bench.team_store reviewer|raw ...` runs one reviewer process (used by `run` itself).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path

import orjson

from bench import result

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"
QUEUE = 20_000  # items in the reviewers' queue
QUEUED_SHARE = 0.15  # of ingested items the queue rules queue (corrections, errors, low confidence)
REVIEW_SECONDS = 15.0  # each reviewer configuration runs this long at scale 1
REVIEWERS = (1, 4)
PAGE_ITEMS = 1_000_000
INGEST_EVENTS = 1_000_000
RUNS = 7  # timed calls per queue page, after one untimed warm-up
PAGE_TARGET_MS = 100
INGEST_TARGET = 0.5  # of COPY's rate
P99_TARGET_MS = 1_000  # the soak's target for a reviewer's decision
COPY_CHUNK = 1 << 20


def run(scale: float) -> list[dict]:
    from feedback.store.local_server import LocalServer

    labels = json.loads((SAMPLE / "taxonomy.json").read_text())
    events = [{k: v for k, v in orjson.loads(line).items() if k != "event_id"}
              for line in (SAMPLE / "events.jsonl").read_bytes().splitlines()]
    folder = tempfile.mkdtemp(prefix="feedback-bench-pg-")  # directly under /tmp: the postgres user reaches it
    server = LocalServer(folder, durable=True).start()
    try:
        with tempfile.TemporaryDirectory(prefix="feedback-bench-") as tmp:
            tmp = Path(tmp)
            return [*reviewers(tmp, server, events, labels, scale),
                    *migrate_and_page(tmp, server, labels, max(1_000, round(PAGE_ITEMS * scale))),
                    *ingest(tmp, server, events, labels, max(1_000, round(INGEST_EVENTS * scale)))]
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


# --- reviewers side by side ---------------------------------------------------------------------------------

def reviewers(tmp: Path, server, events: list[dict], labels: list[str], scale: float) -> list[dict]:
    from feedback import ingest_spool, init_workspace
    from feedback.workspace import move_store

    seconds = max(3.0, REVIEW_SECONDS * scale)
    n_events = max(2_000, round(QUEUE * scale / QUEUED_SHARE))
    ws = init_workspace(tmp / "queue", dataset="bench", labels=labels)
    start = time.perf_counter()
    spool_items(ws, events, n_events)
    ingest_spool(ws)
    queued = ws.store().value("SELECT count(*) FROM items WHERE len(reasons) > 0")
    built = time.perf_counter() - start
    duck_file = tmp / "shared.duckdb"
    shutil.copyfile(ws.path("store"), duck_file)
    move_store(ws, server.create_database("review"))
    raw_url = server.create_database("raw")
    raw_setup(raw_url, queued)
    rows = [result("team store", f"setup: {n_events:,} events spooled and ingested, {queued:,} items queued, "
                   "then migrated to PostgreSQL", built, "s", target="informational", ok=True)]
    targets = {"raw": raw_url, "duckdb": str(reviewer_config(tmp, ws, duck_file)),
               "postgres": str(reviewer_config(tmp, ws, None))}
    runs = {(kind, count): processes(tmp, "raw" if kind == "raw" else "reviewer", target, count, seconds)
            for count in REVIEWERS for kind, target in targets.items()}
    for backend in ("duckdb", "postgres"):
        for count in REVIEWERS:
            rows += reviewer_rows(backend, count, runs[backend, count], runs["raw", count])
        one, four = (runs[backend, c]["rate"] for c in REVIEWERS)
        rows.append(result("team store", f"{backend}: decisions/s of {REVIEWERS[1]} reviewers against 1 reviewer",
                           four, "decisions/s", baseline=one, target="> 1x (more reviewers get more done)"
                           if backend == "postgres" else "informational", ok=four > one or backend != "postgres"))
    for count in REVIEWERS:
        raw = runs["raw", count]
        rows.append(result("team store", f"raw psycopg, {count} processes: claim + insert transactions/s "
                           f"(p50 {raw['p50']:.1f} ms, p99 {raw['p99']:.1f} ms)", raw["rate"], "tx/s",
                           target="informational", ok=True))
    return rows


def spool_items(ws, events: list[dict], n: int) -> None:
    """Capture `n` sample events, the item ids of each pass over the sample made new, and seal them."""
    from feedback import Client

    with Client(ws.root) as client:
        for k, event in enumerate(islice(cycle(events), n)):
            client.capture({**event, "item_id": f"{event['item_id']}-{k // len(events)}"})
    if client.stats["accepted"] != n:
        raise RuntimeError(f"the SDK accepted {client.stats['accepted']:,} of {n:,} events: {client.stats}")


def reviewer_config(tmp: Path, ws, duck_file: Path | None) -> Path:
    """A template workspace for reviewers: the queue workspace's config, pointed at the shared file or, as
    the migration left it, at PostgreSQL."""
    name = "duck-template" if duck_file else "pg-template"
    folder = tmp / name
    folder.mkdir()
    text = (ws.root / "feedback.toml").read_text()
    if duck_file:
        text = "\n".join(line for line in text.splitlines() if not line.startswith("url = "))
        text = text.replace('store = "feedback.duckdb"', f"store = {json.dumps(str(duck_file))}")
        assert str(duck_file) in text, "the config's [paths] store was not found"
    (folder / "feedback.toml").write_text(text)
    return folder


def processes(tmp: Path, role: str, target: str, count: int, seconds: float) -> dict:
    """Start `count` processes of `role`, let them work `seconds` at once, and gather their latencies."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"{role}-{count}-", dir=tmp))
    go = run_dir / "go"
    procs = [subprocess.Popen([sys.executable, "-m", "bench.team_store", role, target, str(run_dir), str(go),
                               str(seconds), f"r{k}"], cwd=REPO, stderr=open(run_dir / f"r{k}.stderr", "w"))
             for k in range(count)]
    deadline = time.monotonic() + 120
    while len(list(run_dir.glob("*.ready"))) < count and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.05)
    go.touch()
    for k, proc in enumerate(procs):
        if proc.wait(timeout=seconds + 120):
            raise RuntimeError(f"{role} r{k} exited {proc.returncode}: {(run_dir / f'r{k}.stderr').read_text()[-2000:]}")
    latencies = sorted(ms for k in range(count) for ms in json.loads((run_dir / f"r{k}.json").read_text()))
    return {"rate": len(latencies) / seconds, "p50": statistics.median(latencies),
            "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], "n": len(latencies)}


def reviewer_rows(backend: str, count: int, ours: dict, raw: dict) -> list[dict]:
    what = f"{backend}: {count} reviewer process{'es' if count > 1 else ''}, next_item + decide"
    return [
        result("team store", f"{what}, decisions/s ({ours['n']:,} decided; baseline raw psycopg tx/s)",
               ours["rate"], "decisions/s", baseline=raw["rate"], target="informational", ok=True),
        result("team store", f"{what}, p50 latency (baseline raw psycopg p50)", ours["p50"], "ms",
               baseline=raw["p50"], target="informational", ok=True),
        result("team store", f"{what}, p99 latency (baseline raw psycopg p99)", ours["p99"], "ms",
               baseline=raw["p99"], target=f"< {P99_TARGET_MS:,} ms", ok=ours["p99"] < P99_TARGET_MS),
    ]


def raw_setup(url: str, n: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as con:
        con.execute("CREATE TABLE raw_queue (item_id text PRIMARY KEY, priority double precision, claimed_by text)")
        con.execute("CREATE INDEX raw_queue_open ON raw_queue (priority DESC) WHERE claimed_by IS NULL")
        con.execute("CREATE TABLE raw_decisions (decision_id text, item_id text, label text, reviewer text, "
                    "decided_at timestamp)")
        con.execute("INSERT INTO raw_queue SELECT 'req-' || i, random(), NULL FROM generate_series(1, %s) i",
                    [max(n, 100_000)])


def work(role: str, target: str, run_dir: Path, go: Path, seconds: float, name: str) -> None:
    """One process: warm up, say it is ready, wait for the go, then time its transactions for `seconds`."""
    step = reviewer_step(target, name) if role == "reviewer" else raw_step(target, name)
    step()
    (run_dir / f"{name}.ready").touch()
    while not go.exists():
        time.sleep(0.01)
    latencies, end = [], time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        if start >= end or not step():
            break
        latencies.append((time.perf_counter() - start) * 1000)
    (run_dir / f"{name}.json").write_text(json.dumps(latencies))


def reviewer_step(template: str, name: str):
    """A reviewer in a workspace folder of their own (the template's config): claim the next item, label it."""
    from feedback import Workspace, decide, next_item
    from feedback.roles import Actor

    root = Path(template).parent / f"{Path(template).name}-{name}-{os.getpid()}"
    root.mkdir()
    shutil.copyfile(Path(template) / "feedback.toml", root / "feedback.toml")
    ws, actor = Workspace(root), Actor(f"reviewer-{root.name}", "reviewer")
    labels = sorted(ws.taxonomy.names)

    def step() -> bool:
        item = next_item(ws, actor)
        if item is None:
            return False
        label = item["corr_label"] or item["pred_label"] or labels[0]
        decide(ws, actor, item["item_id"], label, based_on=item["last_decision_id"], check_stale=True)
        return True

    return step


def raw_step(url: str, name: str):
    """The peer: one psycopg transaction that claims the top open row (SKIP LOCKED) and inserts a decision."""
    import psycopg

    con = psycopg.connect(url)
    count = iter(range(1 << 62))

    def step() -> bool:
        with con.transaction():
            row = con.execute("SELECT item_id FROM raw_queue WHERE claimed_by IS NULL ORDER BY priority DESC "
                              "LIMIT 1 FOR UPDATE SKIP LOCKED").fetchone()
            if row is None:
                return False
            con.execute("UPDATE raw_queue SET claimed_by = %s WHERE item_id = %s", [name, row[0]])
            con.execute("INSERT INTO raw_decisions VALUES (%s, %s, 'refund', %s, now())",
                        [f"{name}-{os.getpid()}-{next(count)}", row[0], name])
        return True

    return step


# --- migrate a file workspace, then the queue page on PostgreSQL ---------------------------------------------

def migrate_and_page(tmp: Path, server, labels: list[str], n: int) -> list[dict]:
    from bench.review import FILTERS, generate
    from feedback import Workspace, init_workspace
    from feedback.review import queue_page
    from feedback.workspace import move_store

    ws = init_workspace(tmp / "big", dataset="bench", labels=labels)
    start = time.perf_counter()
    events = generate(ws.path("store"), n, labels)
    queue_page(ws, limit=1)  # a workspace in use has its items derived
    built = time.perf_counter() - start
    url = server.create_database("big")
    start = time.perf_counter()
    report = move_store(ws, url)
    moved = time.perf_counter() - start
    copied = sum(t["rows"] for t in report["tables"].values())
    copy_seconds = copy_tables(url, [name for name, t in report["tables"].items() if t["rows"]])
    rows = [
        result("team store", f"setup: file workspace of {n:,} items ({events:,} events) written with SQL, "
               "items derived", built, "s", target="informational", ok=True),
        result("team store", f"store migrate: {copied:,} rows of {len(report['tables'])} tables into PostgreSQL "
               "(baseline: COPY of the same rows)", copied / moved, "rows/s", baseline=copied / copy_seconds,
               target="informational", ok=True),
        result("team store", "store migrate: time, copy and verification included (baseline: COPY)", moved, "s",
               baseline=copy_seconds, target="informational", ok=True),
    ]
    ws = Workspace(ws.root)  # the config as the migration left it: the store in PostgreSQL
    return rows + [page(ws, n, what, flt, kwargs) for what, flt, kwargs in FILTERS]


def page(ws, n: int, what: str, flt, kwargs: dict) -> dict:
    from bench.review import recorded
    from feedback.review import queue_page
    from feedback.store.postgres import PgTx

    with recorded(PgTx) as statements:
        queue_page(ws, flt, limit=50, **kwargs)  # warm-up, and the SELECT the library runs
    ours = median_ms(lambda: queue_page(ws, flt, limit=50, **kwargs))
    return result("team store", f"postgres: queue page of 50, {what}, {n:,} items", ours, "ms",
                  baseline=raw_select_ms(ws.store_url, *statements[-1]), target=f"< {PAGE_TARGET_MS} ms",
                  ok=ours < PAGE_TARGET_MS)


def raw_select_ms(url: str, sql: str, params: list) -> float:
    """Median time of the statement, in PostgreSQL's spelling, on a psycopg connection kept open."""
    import psycopg

    from feedback.store.postgres import translate

    with psycopg.connect(url, autocommit=True, options="-c TimeZone=UTC") as con:
        statement = translate(sql, params is not None)
        con.execute(statement, params).fetchall()
        return median_ms(lambda: con.execute(statement, params).fetchall())


def median_ms(call) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


# --- ingest into PostgreSQL ---------------------------------------------------------------------------------

def ingest(tmp: Path, server, events: list[dict], labels: list[str], n: int) -> list[dict]:
    from feedback import ingest_spool, init_workspace

    url = server.create_database("ingest")
    ws = init_workspace(tmp / "ingest", dataset="bench", labels=labels, store=url)
    start = time.perf_counter()
    spool_items(ws, events, n)  # a production log: each request its own item, corrections and errors on it
    spooled = time.perf_counter() - start
    start = time.perf_counter()
    report = ingest_spool(ws)
    ours = n / (time.perf_counter() - start)
    stored = ws.store().value("SELECT count(*) FROM events")
    copy = n / copy_tables(url, ["events"])
    floor = n / copy_tables(url, ["events"], indexed=True)
    return [
        result("team store", f"setup: {n:,} events spooled by the SDK", spooled, "s", target="informational", ok=True),
        result("team store", f"postgres: ingest_spool, {n:,} events (baseline: COPY of the same rows)", ours,
               "events/s", baseline=copy, target=f">= {INGEST_TARGET}x COPY", ok=ours >= INGEST_TARGET * copy),
        result("team store", "postgres: ingest_spool against COPY into a table with the events' keys and indexes "
               "(the floor of a store that looks events up by id and item)", ours, "events/s", baseline=floor,
               target="informational", ok=True),
        result("team store", f"postgres: stored after ingest: {stored:,} events, {report.quarantined:,} quarantined",
               stored, "events", target=f"exactly {n:,}", ok=stored == report.events == n and not report.quarantined),
    ]


def copy_tables(url: str, tables: list[str], *, indexed: bool = False) -> float:
    """Seconds PostgreSQL takes to COPY the rows of these tables (exported as CSV first, untimed) into plain
    tables of the same columns (with `indexed`, and the same indexes), from a client over the loopback,
    committed."""
    import psycopg

    from feedback.store.postgres import quote

    with psycopg.connect(url) as con:
        exported = {}
        for name in tables:
            buffer = io.BytesIO()
            with con.cursor().copy(f"COPY {quote(name)} TO STDOUT (FORMAT csv)") as copy:
                for chunk in copy:
                    buffer.write(chunk)
            exported[name] = buffer.getbuffer()
            con.execute(f"CREATE TABLE {quote('copy_' + name)} (LIKE {quote(name)}{' INCLUDING INDEXES' * indexed})")
        con.commit()
        start = time.perf_counter()
        for name, data in exported.items():
            with con.cursor().copy(f"COPY {quote('copy_' + name)} FROM STDIN (FORMAT csv)") as copy:
                for offset in range(0, len(data), COPY_CHUNK):
                    copy.write(data[offset:offset + COPY_CHUNK])
        con.commit()
        seconds = time.perf_counter() - start
        for name in tables:
            con.execute(f"DROP TABLE {quote('copy_' + name)}")
        con.commit()
        return seconds


if __name__ == "__main__":
    role, target, run_dir, go, seconds, name = sys.argv[1:]
    work(role, target, Path(run_dir), Path(go), float(seconds), name)
