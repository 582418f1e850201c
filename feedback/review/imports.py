"""Labels a team already has (an original training set, a vendor's batch) brought in as trusted labels.

Each row of a JSONL, CSV or Parquet file gives an item and its label (columns `item_id`, `text`,
`label` by default; renamed with `mapping={field: column}`) and optionally a `split` that pins
the example to a split of every release (a team's frozen test set); a Label Studio or Argilla export
gives such rows too (see `interop`). A row becomes, in one
transaction per chunk:
- an `item` event with the text (so the item exists and has its text; its id is derived from
  the text when the row has none),
- an `import` decision: provenance `import`, the importer as its reviewer, `file:line` as its
  note, one batch id per file; it stands until a reviewer decides the item (see `state`),
- a pinned split, when the row has one.
Ids come from the file's content hash and the row, so importing a file again adds nothing.
Bad rows (no text, a label outside a fixed taxonomy, an unknown split, ...) go to quarantine
with their reason and row; the rest go in.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

import pyarrow as pa

from ..capture import contract
from ..capture.ingest import absorb, already_ingested, file_digest, files_to_read, record_source, rejection
from ..errors import FeedbackError, InvalidEvent
from ..progress import Progress
from ..roles import Actor, local_actor, users
from ..workspace import DEFAULT_SPLITS, Workspace
from .choices import DECISION_KINDS
from .decisions import decision_schema
from .interop import read_label_rows
from .state import sync_items, write_reviews

CHUNK_ROWS = 20_000
FIELDS = ("item_id", "text", "label", "split")
_PIN_SCHEMA = pa.schema([("item_id", pa.string()), ("split", pa.string()), ("source", pa.string()),
                         ("pinned_at", pa.timestamp("us"))])


@dataclass
class ImportReport:
    """What one import did: rows taken in as labels, rows quarantined, splits pinned, files skipped as seen."""

    labels: int = 0
    quarantined: int = 0
    pinned: int = 0
    skipped_sources: list[str] = field(default_factory=list)


def import_labels(ws: Workspace, paths: Iterable[str | Path], *, by: Actor | None = None, mapping: dict | None = None,
                  progress: Progress | None = None) -> ImportReport:
    """Bring in labeled rows as trusted labels with provenance `import` (leads and admins)."""
    by = _importer(ws, by)
    column_of = {name: (mapping or {}).get(name, name) for name in FIELDS}
    unknown = sorted(set(mapping or {}) - set(FIELDS))
    if unknown:
        raise FeedbackError(f"cannot map {', '.join(unknown)}: the fields of a labeled row are {', '.join(FIELDS)}")
    splits = set(ws.config.get("release", {}).get("splits", DEFAULT_SPLITS))
    report = ImportReport()
    paths, job = files_to_read(paths, progress)
    for path in paths:
        fingerprint = file_digest(path)
        if already_ingested(ws, fingerprint, "labels"):
            report.skipped_sources.append(str(path))
            job.advance(path.stat().st_size)
            continue
        source = f"labels:{path.resolve()}"
        chunk: list = []
        for row in read_label_rows(path, on_bytes=job.advance):
            chunk.append(row)
            if len(chunk) >= CHUNK_ROWS:
                _take(ws, by, chunk, source, fingerprint, column_of, splits, report)
                chunk = []
        _take(ws, by, chunk, source, fingerprint, column_of, splits, report, last=True)
    job.finish()
    return report


def _importer(ws: Workspace, by: Actor | None) -> Actor:
    if by is None:
        if users(ws):
            raise FeedbackError("who is importing? sign in as a lead or an admin (--reviewer NAME)")
        by = local_actor()
    by.require(ws, "import_labels")
    return by


def _take(ws: Workspace, by: Actor, rows: list, source: str, fingerprint: str, column_of: dict, splits: set,
          report: ImportReport, *, last: bool = False) -> None:
    """One chunk of rows into the store, in one transaction (the last one also records the file)."""
    limits, received_at = contract.limits(ws.config["capture"]), time.time()
    events, bad, decisions, pins = [], [], [], []
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    batch_id = f"import-{fingerprint[:12]}"
    for line, row, raw in rows:
        try:
            item_id, text, label, split = _fields(ws, row, column_of, splits)
            event = contract.validate({"type": "item", "item_id": item_id, "input": {"text": text},
                                       "event_id": f"{fingerprint[:16]}:{line}"}, **limits, received_at=received_at)
        except InvalidEvent as exc:
            bad.append(rejection(source, line, None, exc, raw))
            continue
        events.append({**event, "source": source, "line": line})
        decisions.append({"decision_id": "imp-" + hashlib.blake2b(f"{fingerprint}:{line}".encode(), digest_size=8)
                          .hexdigest(), "item_id": event["item_id"], "kind": "import", "label": label,
                          "reviewer": by.name, "role": by.role, "decided_at": now, "note": f"{Path(source).name}:{line}",
                          "based_on": None, "batch_id": batch_id, "undoes": None})
        if split:
            pins.append({"item_id": event["item_id"], "split": split, "source": source, "pinned_at": now})
    with ws.store().atomic() as tx:
        ingested = absorb(tx, ws, events, bad)
        with tx.registered(pa.Table.from_pylist(decisions, schema=decision_schema())) as name:
            tx.execute(f"INSERT INTO decisions SELECT n.* FROM {name} n "
                       f"WHERE NOT EXISTS (SELECT 1 FROM decisions d WHERE d.decision_id = n.decision_id)")
        if pins:
            tx.insert("pinned_splits", pa.Table.from_pylist(pins, schema=_PIN_SCHEMA))
        sync_items(tx, ws)
        write_reviews(tx, ws, sorted({d["item_id"] for d in decisions}))
        if last:
            record_source(tx, source, "labels", fingerprint, None)
    report.labels += len(decisions)
    report.quarantined += ingested.quarantined
    report.pinned += len(pins)


def _fields(ws: Workspace, row, column_of: dict, splits: set) -> tuple[str | None, str, str, str | None]:
    """(item_id, text, label, split) of one row, or `InvalidEvent` naming what is wrong."""
    if isinstance(row, InvalidEvent):
        raise row
    value = {name: row.get(column) for name, column in column_of.items()}
    value = {name: None if v is None or v == "" else v for name, v in value.items()}
    if value["item_id"] is not None and isinstance(value["item_id"], int) and not isinstance(value["item_id"], bool):
        value["item_id"] = str(value["item_id"])  # numeric ids of a training set are ids all the same
    for name in ("text", "label"):
        if value[name] is None:
            raise InvalidEvent("missing_field", f"a labeled row needs a {name} (column {column_of[name]!r})", name)
        if not isinstance(value[name], str):
            raise InvalidEvent("wrong_type", f"must be text, got {type(value[name]).__name__}", name)
    label = value["label"]
    if label in DECISION_KINDS or not ws.taxonomy.accepts(label):
        raise InvalidEvent("unknown_label", f"{label!r} is not in the taxonomy{ws.taxonomy.hint(label)}", "label")
    split = value["split"]
    if split is not None and split not in splits:
        raise InvalidEvent("invalid_value", f"split {split!r} is not one of {', '.join(sorted(splits))}", "split")
    return value["item_id"], value["text"], label, split
