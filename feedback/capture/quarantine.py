"""Quarantine: events that broke the contract, kept with reason, field, source and line.

A row is open until it is resolved: an event with its `event_id` got into the store
(after a fix, or a retry once the taxonomy allows its label), a later rejection of the same
event replaced it (a fix that is still bad), or someone dismissed it. Resolutions are
appended; quarantine rows are never changed. Rows are named by `qid`; any unique prefix of
it will do, as `feedback quarantine` shows 12 characters.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from ..errors import FeedbackError, InvalidEvent, NotFound
from ..workspace import Workspace
from .contract import parse_line

if TYPE_CHECKING:  # ingest and the readers load pyarrow: only a retry or an export needs them
    from .readers import Record

OPEN = """
    NOT EXISTS (SELECT 1 FROM quarantine_resolutions r WHERE r.qid = q.qid)
    AND NOT (q.reason <> 'duplicate_event_conflict' AND coalesce(q.event_id IN (SELECT event_id FROM events), false))
"""  # the condition, over `quarantine q`, that a row still needs attention


def list_quarantine(ws: Workspace, *, reason: str | None = None, include_resolved: bool = False,
                    limit: int | None = None) -> list[dict]:
    """Quarantined rows, newest first, each with `open` telling whether it still needs attention."""
    return ws.store().rows(
        f"SELECT q.qid, q.quarantined_at, q.source, q.line, q.event_id, q.reason, q.field, q.message, q.raw, "
        f"({OPEN}) AS open FROM quarantine q "
        f"WHERE (?::VARCHAR IS NULL OR q.reason = ?) AND (? OR ({OPEN})) "
        f"ORDER BY q.quarantined_at DESC, q.source, q.line LIMIT ?",
        [reason, reason, include_resolved, limit],
    )


def retry_quarantine(ws: Workspace, *, reason: str | None = None) -> dict:
    """Validate open rows again (say, after a label joined the taxonomy) and ingest those that now pass.

    Returns {"retried", "ingested", "duplicates", "still_open"}; rows that still fail stay as they are.
    """
    from .ingest import ingest_records

    records = [r for r in map(_record, list_quarantine(ws, reason=reason)) if r is not None]
    report = ingest_records(ws, records, source="quarantine-retry", quarantine=False)
    return {"retried": len(records), "ingested": report.events, "duplicates": report.duplicates,
            "still_open": report.quarantined}


def export_quarantine(ws: Workspace, path: str | Path, *, reason: str | None = None) -> int:
    """Write open rows' events as JSONL to fix by hand and ingest again; return how many."""
    from .readers import write_jsonl

    events = [r.event for r in map(_record, list_quarantine(ws, reason=reason)) if r is not None]
    return write_jsonl(path, events)


def dismiss(ws: Workspace, qids: list[str], *, note: str = "dismissed") -> int:
    """Close open quarantine rows that will not be fixed, named by their qid or a unique prefix; return how many."""
    with ws.store().atomic() as tx:
        found = set()
        for given in dict.fromkeys(qids):
            matches = [r["qid"] for r in tx.rows(
                f"SELECT q.qid FROM quarantine q WHERE starts_with(q.qid, ?) AND ({OPEN}) LIMIT 2", [given])]
            if not matches:
                raise NotFound(f"no open quarantine row has an id starting with {given!r}; see `feedback quarantine`")
            if len(matches) > 1:
                raise FeedbackError(f"{given!r} starts several quarantine ids; give more of it")
            found.add(matches[0])
        tx.execute("INSERT INTO quarantine_resolutions SELECT unnest(?::VARCHAR[]), now()::TIMESTAMP, ?, NULL", [sorted(found), note])
    return len(found)


def _record(row: dict) -> Record | None:
    """The quarantined event as an object with its event_id, or None when its text is not a JSON object."""
    from .readers import Record

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


def event_status(ws: Workspace, event_ids: list[str]) -> dict[str, dict]:
    """Where each event stands: `stored`, `quarantined` (with the open row's reason and message), or `pending`
    (not in the store yet: still in the spool, or never sent). What a producer asks after a 202."""
    with ws.store().connect() as tx:
        stored = {r["event_id"] for r in tx.rows(
            "SELECT DISTINCT event_id FROM events WHERE event_id IN (SELECT unnest(?::VARCHAR[]))", [event_ids])}
        held = {r["event_id"]: r for r in tx.rows(
            f"SELECT q.event_id, arg_max(q.reason, q.quarantined_at) AS reason, arg_max(q.message, q.quarantined_at) "
            f"AS message FROM quarantine q WHERE q.event_id IN (SELECT unnest(?::VARCHAR[])) AND ({OPEN}) "
            f"GROUP BY q.event_id", [event_ids])}
    status = {}
    for event_id in event_ids:
        if event_id in held:
            status[event_id] = {"status": "quarantined", **{k: held[event_id][k] for k in ("reason", "message")}}
        else:
            status[event_id] = {"status": "stored" if event_id in stored else "pending"}
    return status
