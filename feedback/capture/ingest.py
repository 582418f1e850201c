"""Ingest: spool segments and bulk files into the store, each event exactly once.

Spool segments hold events the SDK already validated, so DuckDB reads them directly
(`read_json`); a segment it cannot read (a writer died mid-line) falls back to the
line-by-line path that bulk files take. Both paths end in one SQL step that drops
retries (same event_id, same content), quarantines conflicts (same event_id, other
content) and labels outside a fixed taxonomy, and appends the rest.

The derived item state (`items`) is brought up to date in the same transaction as the events, so
no reader ever finds events whose items it must derive first: the first queue page after an
ingest is as fast as any other.

Exactly once: a segment is recorded in `ingested_sources` in the same transaction
as its rows, and moved to the archive only after that commits. A crash in between
leaves a segment that is recorded, so the next run just archives it; a crash before
leaves nothing committed, so the next run ingests it again. Bulk-file events without
an `event_id` get one derived from the file's content hash and the line, so
re-ingesting a file never stores its events twice.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import FeedbackError, InvalidEvent, StoreError
from ..progress import Progress, Steps
from ..store import scratch
from ..workspace import Workspace
from . import contract, spool
from .items import sync_items
from .readers import Record, read_records

BATCH_ROWS = 50_000
GROUP_BYTES = 256 << 20

_BATCH_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("type", pa.string()), ("item_id", pa.string()), ("ts", pa.string()),
    ("received_at", pa.float64()), ("input", pa.string()), ("prediction", pa.string()),
    ("correction", pa.string()), ("error", pa.string()), ("meta", pa.string()),
    ("schema_version", pa.int32()), ("content_hash", pa.string()), ("source", pa.string()), ("line", pa.int64()),
])
_SPOOL_COLUMNS = (
    "{event_id: 'VARCHAR', type: 'VARCHAR', item_id: 'VARCHAR', ts: 'JSON', received_at: 'DOUBLE', "
    "input: 'JSON', prediction: 'JSON', correction: 'JSON', error: 'JSON', meta: 'JSON', "
    "schema_version: 'INTEGER', content_hash: 'VARCHAR'}"
)


@dataclass
class IngestReport:
    """What one ingest run did."""

    sources: int = 0
    events: int = 0
    duplicates: int = 0
    quarantined: int = 0
    skipped_sources: list[str] = field(default_factory=list)

    def add(self, other: "IngestReport") -> None:
        self.sources += other.sources
        self.events += other.events
        self.duplicates += other.duplicates
        self.quarantined += other.quarantined
        self.skipped_sources += other.skipped_sources


def ingest_spool(ws: Workspace, *, progress: Progress | None = None) -> IngestReport:
    """Absorb every sealed spool segment into the store.

    Segments go in by groups, one transaction each, in order; the next group is read and shaped in a thread
    while the store takes the current one. Runs may overlap (two ingest loops, a cron run beside a loop): each
    group's transaction skips the segments another run recorded meanwhile, and a segment another run archived
    is simply gone.
    """
    report = IngestReport()
    sizes = spool.sizes(spool.sealed_segments(ws.path("spool")))
    if not sizes:
        return report
    done = _recorded(ws.store(), list(sizes))
    job = Steps(progress, sum(sizes.values()), "bytes ingested")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedback-ingest-reader") as reader:
        for group, shaped in _read_ahead(ws, reader, _groups([s for s in sizes if s not in done], sizes)):
            report.add(_ingest_segments(ws, group, shaped))
            job.advance(sum(sizes[s] for s in group))
            for segment in group:
                spool.archive(segment)
    for segment in done:
        spool.archive(segment)
    job.finish()
    return report


def _recorded(tx, segments: list[Path]) -> set[Path]:
    """The segments recorded as ingested (`tx`: a transaction, or the store for a read of its own)."""
    names = {f"spool:{s.name}": s for s in segments}
    return {names[r["source"]] for r in tx.rows(
        "SELECT DISTINCT source FROM ingested_sources WHERE source IN (SELECT unnest(?::VARCHAR[]))", [list(names)])}


def files_to_read(paths: Iterable[str | Path], progress: Progress | None) -> tuple[list[Path], Steps]:
    """The paths, each checked to be a file before any is read, and a progress job over their bytes."""
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            raise FeedbackError(f"{path}: no such file")
    return paths, Steps(progress, sum(p.stat().st_size for p in paths), "bytes read")


def ingest_files(ws: Workspace, paths: Iterable[str | Path], *, mapping: dict | None = None,
                 default_type: str | None = None, progress: Progress | None = None) -> IngestReport:
    """Ingest bulk JSONL, CSV or Parquet files; bad rows go to quarantine, the rest go in."""
    report = IngestReport()
    paths, job = files_to_read(paths, progress)
    for path in paths:
        fingerprint = file_digest(path)
        source = f"file:{path.resolve()}"
        if already_ingested(ws, fingerprint, "file"):
            report.skipped_sources.append(str(path))
            job.advance(path.stat().st_size)
            continue
        records = read_records(path, mapping=mapping, default_type=default_type, on_bytes=job.advance)
        file_report = _ingest_records(ws, records, source=source, id_prefix=fingerprint[:16])
        _record_source(ws, source, "file", fingerprint, file_report)
        report.add(file_report)
    job.finish()
    return report


def ingest_records(ws: Workspace, records: Iterable[Record], *, source: str, quarantine: bool = True) -> IngestReport:
    """Ingest records that carry their event ids; with `quarantine=False` rejects are only counted."""
    return _ingest_records(ws, records, source=source, id_prefix=None, quarantine=quarantine)


def _groups(segments: list[Path], sizes: dict[Path, int]) -> Iterable[list[Path]]:
    group, size = [], 0
    for segment in segments:
        group.append(segment)
        size += sizes[segment]
        if size >= GROUP_BYTES:
            yield group
            group, size = [], 0
    if group:
        yield group


def _read_ahead(ws: Workspace, reader: ThreadPoolExecutor, groups: Iterable[list[Path]]):
    """Each group with the future of its shaped events, the next group's shaping already under way in `reader`
    (so the store's work on one group and the reading of the next overlap)."""
    ahead = None
    for group in groups:
        shaped = reader.submit(_shape_segments, ws, group)
        if ahead:
            yield ahead
        ahead = group, shaped
    if ahead:
        yield ahead


def _shape_segments(ws: Workspace, segments: list[Path]) -> pa.Table:
    """The segments' events, read by DuckDB and shaped in memory, the store not held."""
    with scratch() as memory:
        return _shape(ws, memory, f"SELECT * EXCLUDE (filename), 'spool:' || parse_filename(filename) "
                                  f"AS source, NULL::BIGINT AS line FROM read_json(?, format = "
                                  f"'newline_delimited', columns = {_SPOOL_COLUMNS}, filename = true)",
                      [[str(s) for s in segments]])


def _ingest_segments(ws: Workspace, segments: list[Path], shaped: Future | None = None) -> IngestReport:
    """Fast path: the segments' shaped events (`shaped`, or shaped now) go in in one transaction; an
    unreadable segment takes the line-by-line path."""
    try:
        candidates = shaped.result() if shaped else _shape_segments(ws, segments)
    except StoreError:
        if len(segments) > 1:
            report = IngestReport()
            for segment in segments:
                report.add(_ingest_segments(ws, [segment]))
            return report
        segment = segments[0]
        if not segment.exists():  # ingested and archived by an overlapping run since it was listed
            return IngestReport()
        report = _ingest_records(ws, _spool_records(segment), source=f"spool:{segment.name}", id_prefix=None)
        _record_source(ws, f"spool:{segment.name}", "spool", None, report)
        return report
    with ws.store().atomic() as tx:
        taken = _recorded(tx, segments)  # by a run that overlapped this one
        if taken:
            segments = [s for s in segments if s not in taken]
            if not segments:
                return IngestReport()
            keep = pa.array([f"spool:{s.name}" for s in segments])
            candidates = candidates.filter(pc.is_in(candidates["source"], keep))
        report, rejected = _absorb(tx, ws, candidates)
        _quarantine(tx, [_locate(row, segments[0].parent) for row in rejected])
        for segment in segments:
            record_source(tx, f"spool:{segment.name}", "spool", None, None)
        report.sources = len(segments)
        return report


def _spool_records(segment: Path) -> Iterable[Record]:
    """A segment's lines as producer events again (without the fields capture added)."""
    for record in read_records(segment):
        if isinstance(record.event, dict):
            record.event.pop("received_at", None)
            record.event.pop("content_hash", None)
        yield record


def _ingest_records(ws: Workspace, records: Iterable[Record], *, source: str, id_prefix: str | None,
                    quarantine: bool = True) -> IngestReport:
    """Slow path: validate each record in Python, then absorb in batches."""
    report = IngestReport(sources=1)
    limits = contract.limits(ws.config["capture"])
    received_at = time.time()
    good: list[dict] = []
    bad: list[dict] = []
    for record in records:
        event = record.event
        if record.error is None:
            if id_prefix and isinstance(event, dict) and event.get("event_id") is None:
                event["event_id"] = f"{id_prefix}:{record.line}"
            try:
                normalised = contract.validate(event, **limits, received_at=received_at)
            except InvalidEvent as exc:
                record.error = exc
            else:
                normalised["line"] = record.line
                normalised["source"] = source
                good.append(normalised)
        if record.error is not None:
            event_id = event.get("event_id") if isinstance(event, dict) else None
            bad.append(rejection(source, record.line, event_id, record.error, record.raw))
        if len(good) >= BATCH_ROWS or len(bad) >= BATCH_ROWS:
            report.add(_absorb_batch(ws, good, bad, quarantine))
            good, bad = [], []
    if good or bad:
        report.add(_absorb_batch(ws, good, bad, quarantine))
    report.sources = 1
    return report


def _absorb_batch(ws: Workspace, good: list[dict], bad: list[dict], quarantine: bool) -> IngestReport:
    candidates = _shape_records(ws, good)
    with ws.store().atomic() as tx:
        return absorb(tx, ws, good, bad, quarantine=quarantine, candidates=candidates)


def absorb(tx, ws: Workspace, good: list[dict], bad: list[dict], *, quarantine: bool = True,
           candidates: pa.Table | None = None) -> IngestReport:
    """In `tx`: append validated events (`good`, each with `source` and `line`) once each, and quarantine
    `bad` rejections (`rejection` rows) and the events the store refuses (conflicts, unknown labels).
    `candidates`: `good` as `_shape` made them, when the caller shaped them before opening `tx`."""
    if candidates is None:
        candidates = _shape_records(ws, good)
    report, rejected = _absorb(tx, ws, candidates)
    raw = {(g["source"], g["line"]): g for g in good}
    for row in rejected:
        del row["content_hash"]
        row["raw"] = contract.to_line(_public(raw[(row["source"], row["line"])])).decode().rstrip("\n")
    if quarantine:
        _quarantine(tx, bad + rejected)
    report.quarantined += len(bad)
    return report


def _shape_records(ws: Workspace, good: list[dict]) -> pa.Table:
    """`_shape` of validated events."""
    with scratch() as memory, memory.registered(_to_arrow(good)) as name:
        return _shape(ws, memory, f"SELECT * FROM {name}")


def _shape(ws: Workspace, memory, batch: str, params=()) -> pa.Table:
    """Events as the store keeps them, from a query (`batch`, run in the scratch database `memory`) of spool
    lines or validated events (payloads as JSON), with what the batch alone tells: each event's rank among the
    batch's events of its id (`nth`, `first_hash`) and a label outside a fixed taxonomy (`verdict`). Computed
    in memory, before the store is held."""
    taxonomy = ws.taxonomy
    labels = sorted(taxonomy.names) if taxonomy.mode == "fixed" else None
    return memory.arrow(
        f"""
        WITH b AS (
            SELECT * REPLACE (ts::JSON AS ts, input::JSON AS input, prediction::JSON AS prediction,
                              correction::JSON AS correction, error::JSON AS error, meta::JSON AS meta),
                   prediction::JSON->>'label' AS pred_label, correction::JSON->>'label' AS corr_label
            FROM ({batch}) AS lines
        )
        SELECT event_id, type, item_id,
               coalesce(CASE WHEN json_type(ts) = 'VARCHAR' THEN (ts->>'$')::TIMESTAMPTZ ELSE to_timestamp(ts::DOUBLE) END,
                        to_timestamp(received_at))::TIMESTAMP AS ts,
               to_timestamp(received_at)::TIMESTAMP AS received_at, input->>'text' AS input_text,
               input::VARCHAR AS input, pred_label, (prediction->>'score')::DOUBLE AS pred_score,
               (prediction->'probs')::VARCHAR AS pred_probs, prediction->>'model' AS model,
               prediction->>'model_version' AS model_version, corr_label, correction->>'by' AS corr_by,
               correction->>'note' AS corr_note, error->>'kind' AS error_kind, error->>'message' AS error_message,
               meta::VARCHAR AS meta, source, content_hash, schema_version, line,
               first_value(content_hash) OVER w AS first_hash, row_number() OVER w AS nth,
               CASE WHEN ?::VARCHAR[] IS NOT NULL AND pred_label IS NOT NULL AND NOT list_contains(?::VARCHAR[], pred_label)
                        THEN 'unknown_label:prediction.label'
                    WHEN ?::VARCHAR[] IS NOT NULL AND corr_label IS NOT NULL AND NOT list_contains(?::VARCHAR[], corr_label)
                        THEN 'unknown_label:correction.label' END AS verdict
        FROM b WINDOW w AS (PARTITION BY event_id ORDER BY received_at, line)
        """,
        [*params, *[labels] * 4])


_EVENT_COLUMNS = ["seq", "event_id", "type", "item_id", "ts", "received_at", "ingested_at", "input_text", "input",
                  "pred_label", "pred_score", "pred_probs", "model", "model_version", "corr_label", "corr_by",
                  "corr_note", "error_kind", "error_message", "meta", "source", "content_hash", "schema_version"]


def _absorb(tx, ws: Workspace, candidates: pa.Table) -> tuple[IngestReport, list[dict]]:
    """Append the shaped `candidates` to `events` (skip retries, hold back conflicts and unknown labels), and
    bring the derived item state up to date with them.

    On the file, the store judges them against its events itself. On PostgreSQL only the stored hashes of the
    batch's ids come from the server; they are judged in memory, and the events go in with one COPY.
    """
    base = tx.value("SELECT coalesce(max(seq), 0) FROM events")
    columns = ", ".join(_EVENT_COLUMNS)
    with tx.registered(candidates if tx.dialect == "duckdb" else candidates.select(["event_id"])) as batch:
        stored = (f"SELECT event_id, min(content_hash) AS stored_hash FROM events "
                  f"WHERE event_id IN (SELECT event_id FROM {batch}) GROUP BY event_id")
        if tx.dialect == "duckdb":
            counts, rejected = _judge(tx, batch, f"({stored})", base)
            tx.execute(f"INSERT INTO events ({columns}) SELECT {columns} FROM judged WHERE judged = 'ok'")
            tx.execute("DROP TABLE judged")
        else:
            known = tx.arrow(stored)
    if tx.dialect != "duckdb":
        with scratch() as memory, memory.registered(candidates) as batch, memory.registered(known) as known:
            counts, rejected = _judge(memory, batch, known, base)
            tx.insert("events", memory.arrow(f"SELECT {columns} FROM judged WHERE judged = 'ok'"))
            memory.execute("DROP TABLE judged")
    sync_items(tx, ws)
    report = IngestReport(events=counts.get("ok", 0), duplicates=counts.get("duplicate", 0), quarantined=len(rejected))
    return report, [_verdictrejection(row, taxonomy=ws.taxonomy) for row in rejected]


def _judge(db, batch: str, known: str, base: int) -> tuple[dict, list[dict]]:
    """In `db`, the temp table `judged`: the batch's events, each with its verdict against the stored hashes of
    their ids (`known`), and the good ones numbered after `base`; returns the counts by verdict and the rows
    to quarantine."""
    db.execute(
        f"""
        CREATE TEMP TABLE judged AS
        WITH j AS (
            SELECT c.*, CASE
                WHEN c.verdict IS NOT NULL THEN c.verdict
                WHEN stored_hash IS NOT NULL AND stored_hash <> content_hash THEN 'duplicate_event_conflict:event_id'
                WHEN stored_hash IS NOT NULL THEN 'duplicate'
                WHEN first_hash <> content_hash THEN 'duplicate_event_conflict:event_id'
                WHEN nth > 1 THEN 'duplicate'
                ELSE 'ok' END AS judged
            FROM {batch} c LEFT JOIN {known} k USING (event_id)
        )
        SELECT *, ? + row_number() OVER (PARTITION BY judged = 'ok' ORDER BY received_at, source, line, event_id)
               AS seq, now()::TIMESTAMP AS ingested_at
        FROM j
        """, [base])
    counts = {r["judged"]: r["n"] for r in db.rows("SELECT judged, count(*) AS n FROM judged GROUP BY judged")}
    rejected = db.rows("SELECT source, line, event_id, content_hash, judged, pred_label, corr_label FROM judged "
                       "WHERE judged NOT IN ('ok', 'duplicate')")
    return counts, rejected


def _verdictrejection(row: dict, *, taxonomy) -> dict:
    reason, _, where = row["judged"].partition(":")
    if reason == "unknown_label":
        label = row["pred_label"] if where == "prediction.label" else row["corr_label"]
        message = f"{label!r} is not in the taxonomy{taxonomy.hint(label)}"
    else:
        message = f"{row['event_id']!r} is already stored with different content; give the new event its own id"
    error = InvalidEvent(reason, message, where)
    return {**rejection(row["source"], row["line"], row["event_id"], error, None), "content_hash": row["content_hash"]}


def rejection(source, line, event_id, error: InvalidEvent, raw) -> dict:
    """A quarantine row for `absorb`: where the event came from and what is wrong with it."""
    return {"source": source, "line": line, "event_id": event_id, "reason": error.reason,
            "field": error.field, "message": str(error), "raw": raw}


def _locate(row: dict, folder: Path) -> dict:
    """Find the line and text of a rejected spool event in its segment (rare, so a scan is fine)."""
    needle = row.pop("content_hash").encode()
    with open(folder / row["source"].removeprefix("spool:"), "rb") as f:
        for number, raw in enumerate(f, start=1):
            if needle in raw and orjson.loads(raw).get("content_hash") == needle.decode():
                return {**row, "line": number, "raw": raw.decode().rstrip("\n")}
    return row


def _quarantine(tx, rows: list[dict]) -> None:
    """Append rejections, except those already quarantined from the same place for the same reason.

    A new rejection of an event replaces (resolves) its open rows from elsewhere, so a fix that is
    still bad leaves one open row, not two; conflicts with a stored event stay, each its own problem.
    """
    if not rows:
        return
    table = pa.Table.from_pylist(rows, schema=pa.schema([
        ("source", pa.string()), ("line", pa.int64()), ("event_id", pa.string()), ("reason", pa.string()),
        ("field", pa.string()), ("message", pa.string()), ("raw", pa.string()),
    ]))
    with tx.registered(table) as name:
        tx.execute(f"CREATE TEMP TABLE fresh AS SELECT md5(concat_ws('|', source, line, event_id, reason)) AS qid, * "
                   f"FROM {name}")
    tx.execute(
        """
        INSERT INTO quarantine_resolutions
        SELECT q.qid, now()::TIMESTAMP, 'replaced by a later rejection of the same event', q.event_id
        FROM quarantine q
        WHERE q.event_id IN (SELECT event_id FROM fresh WHERE reason <> 'duplicate_event_conflict')
          AND q.reason <> 'duplicate_event_conflict' AND q.qid NOT IN (SELECT qid FROM fresh)
          AND q.qid NOT IN (SELECT qid FROM quarantine_resolutions)
        """
    )
    tx.execute("INSERT INTO quarantine SELECT n.qid, now()::TIMESTAMP, n.source, n.line, n.event_id, n.reason, "
               "n.field, n.message, n.raw FROM fresh n WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.qid = n.qid)")
    tx.execute("DROP TABLE fresh")


def _record_source(ws: Workspace, source: str, kind: str, fingerprint: str | None, report: IngestReport) -> None:
    with ws.store().atomic() as tx:
        record_source(tx, source, kind, fingerprint, report)


def already_ingested(ws: Workspace, fingerprint: str, kind: str) -> bool:
    """Whether a file with this content was taken in before as `kind` (file, labels)."""
    return bool(ws.store().value("SELECT count(*) FROM ingested_sources WHERE fingerprint = ? AND kind = ?",
                                 [fingerprint, kind]))


def record_source(tx, source, kind, fingerprint, report: IngestReport | None) -> None:
    """Record in `tx` that a source was taken in (what makes a re-run skip it)."""
    r = report or IngestReport()
    tx.execute("INSERT INTO ingested_sources VALUES (?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
               [source, kind, fingerprint, r.events, r.duplicates, r.quarantined])


def _to_arrow(rows: list[dict]) -> pa.Table:
    def dumped(row, key):
        value = row.get(key)
        return None if value is None else orjson.dumps(value).decode()

    columns = {name: [] for name in _BATCH_SCHEMA.names}
    for row in rows:
        for name in ("event_id", "type", "item_id", "received_at", "schema_version", "content_hash", "source", "line"):
            columns[name].append(row.get(name))
        for name in ("ts", "input", "prediction", "correction", "error", "meta"):
            columns[name].append(dumped(row, name))
    return pa.table(columns, schema=_BATCH_SCHEMA)


def _public(normalised: dict) -> dict:
    return {k: v for k, v in normalised.items() if k not in ("line", "source", "received_at", "content_hash")}


def file_digest(path: Path) -> str:
    """A file's content hash, which names it across copies and renames."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
