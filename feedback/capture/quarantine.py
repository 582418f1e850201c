"""Quarantine: events that broke the contract, kept with reason, field, source and line.

A row is open until it is resolved: an event with its `event_id` got into the store
(after a fix, or a retry once the taxonomy allows its label), or someone dismissed it.
Resolutions are appended; quarantine rows are never changed.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from ..errors import InvalidEvent, NotFound
from ..workspace import Workspace
from .contract import parse_line
from .ingest import IngestReport, ingest_records
from .readers import Record, write_jsonl

_OPEN = """
    NOT EXISTS (SELECT 1 FROM quarantine_resolutions r WHERE r.qid = q.qid)
    AND NOT (q.reason <> 'duplicate_event_conflict' AND coalesce(q.event_id IN (SELECT event_id FROM events), false))
"""


def list_quarantine(ws: Workspace, *, reason: str | None = None, include_resolved: bool = False,
                    limit: int | None = None) -> list[dict]:
    """Quarantined rows, newest first, each with `open` telling whether it still needs attention."""
    return ws.store().rows(
        f"SELECT q.qid, q.quarantined_at, q.source, q.line, q.event_id, q.reason, q.field, q.message, q.raw, "
        f"({_OPEN}) AS open FROM quarantine q "
        f"WHERE (?::VARCHAR IS NULL OR q.reason = ?) AND (? OR ({_OPEN})) "
        f"ORDER BY q.quarantined_at DESC, q.source, q.line LIMIT ?",
        [reason, reason, include_resolved, limit],
    )


def retry_quarantine(ws: Workspace, *, reason: str | None = None) -> IngestReport:
    """Validate open rows again (say, after a label joined the taxonomy) and ingest those that now pass."""
    records = []
    for row in list_quarantine(ws, reason=reason):
        record = _record(row)
        if record is not None:
            records.append(record)
    return ingest_records(ws, records, source="quarantine-retry", quarantine=False)


def export_quarantine(ws: Workspace, path: str | Path, *, reason: str | None = None) -> int:
    """Write open rows' events as JSONL to fix by hand and ingest again; return how many."""
    events = [r.event for r in map(_record, list_quarantine(ws, reason=reason)) if r is not None]
    return write_jsonl(path, events)


def dismiss(ws: Workspace, qids: list[str], *, note: str = "dismissed") -> int:
    """Close quarantine rows that will not be fixed."""
    with ws.store().atomic() as tx:
        found = tx.value("SELECT count(*) FROM quarantine WHERE qid IN (SELECT unnest(?))", [qids])
        if found != len(set(qids)):
            raise NotFound(f"{len(set(qids)) - found} of the given quarantine ids do not exist; see `feedback quarantine`")
        tx.execute("INSERT INTO quarantine_resolutions SELECT unnest(?), now()::TIMESTAMP, ?, NULL", [qids, note])
    return found


def _record(row: dict) -> Record | None:
    """The quarantined event as an object with its event_id, or None when its text is not a JSON object."""
    try:
        event = parse_line((row["raw"] or "").encode())
    except InvalidEvent:
        return None
    if not isinstance(event, dict):
        return None
    for key in ("received_at", "content_hash"):
        event.pop(key, None)
    if row["event_id"] and not event.get("event_id"):
        event["event_id"] = row["event_id"]
    return Record(row["line"] or 0, event=event, raw=orjson.dumps(event).decode())
