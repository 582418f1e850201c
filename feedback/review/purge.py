"""Privacy purge: remove the captured payload of some items everywhere the workspace keeps it.

The skeleton of their history stays (ids, types, times, labels, decisions), and the
purge itself is recorded in `purges` (who, when, why, what matched). The text goes
from the store (which is then compacted, so no old copy lingers in free blocks), the
spool (sealed segments and the archive), and quarantine. Events still in a running
producer's active segment are counted, to be purged by a later run after ingest.
Releases that already contain the items are listed so their owner can rebuild them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from ..capture import spool
from ..errors import FeedbackError
from ..progress import Progress, Steps
from ..roles import Actor
from ..workspace import Workspace

_PAYLOAD = ("input", "meta")
_NESTED = {"correction": "note", "error": "message"}


@dataclass
class PurgeReport:
    """What a purge removed: `items` that still had a payload (an item purged before is in `already_purged`)."""

    items: list[str] = field(default_factory=list)
    already_purged: list[str] = field(default_factory=list)
    events: int = 0
    quarantine_rows: int = 0
    spool_lines: int = 0
    active_lines_left: int = 0
    releases: list[str] = field(default_factory=list)


def forget(ws: Workspace, actor: Actor, *, item_ids: list[str] | None = None, meta_field: str | None = None,
           meta_value: str | None = None, why: str, progress: Progress | None = None) -> PurgeReport:
    """Purge items given by id, or by a meta field's value (for example a user id).

        feedback.review.forget(ws, admin, meta_field="user_id", meta_value="u-829", why="GDPR-1142")
    """
    actor.require(ws, "purge")
    if not why:
        raise FeedbackError("say why (a ticket or request id): a purge is audited")
    if bool(item_ids) == (meta_field is not None):
        raise FeedbackError("give item ids, or a meta field and value, not both")
    match = f"meta.{meta_field}={meta_value}" if meta_field else "item_id"
    with Steps(progress, 4, "purging the store") as job:
        report = _purge(ws, actor, item_ids, meta_field, meta_value, why, match, job)
    return report


def _purge(ws: Workspace, actor: Actor, item_ids: list[str] | None, meta_field: str | None, meta_value: str | None,
           why: str, match: str, job: Steps) -> PurgeReport:
    store = ws.store()
    with store.atomic() as tx:
        if meta_field:
            item_ids = [r["item_id"] for r in tx.rows(
                "SELECT DISTINCT item_id FROM events WHERE meta->>? = ?", [meta_field, meta_value])]
        ids = sorted(set(item_ids))
        params = [ids]
        holding = tx.rows(
            "SELECT item_id, count(*) AS n FROM events WHERE item_id IN (SELECT unnest(?::VARCHAR[])) AND "
            "(input_text IS NOT NULL OR input IS NOT NULL OR meta IS NOT NULL OR corr_note IS NOT NULL "
            "OR error_message IS NOT NULL) GROUP BY item_id ORDER BY item_id", params)
        report = PurgeReport(items=[r["item_id"] for r in holding], events=sum(r["n"] for r in holding))
        report.already_purged = sorted(set(ids) - set(report.items))
        tx.execute("UPDATE events SET input_text = NULL, input = NULL, meta = NULL, corr_note = NULL, "
                   "error_message = NULL WHERE item_id IN (SELECT unnest(?::VARCHAR[]))", params)
        tx.execute("UPDATE items SET text = NULL WHERE item_id IN (SELECT unnest(?::VARCHAR[]))", params)
        tx.execute("UPDATE decisions SET note = NULL WHERE item_id IN (SELECT unnest(?::VARCHAR[]))", params)
        qids = _quarantined(tx, ids, meta_field, meta_value)
        report.quarantine_rows = len(qids)
        tx.execute("UPDATE quarantine SET raw = NULL WHERE qid IN (SELECT unnest(?::VARCHAR[]))", [qids])
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        tx.execute("INSERT INTO purges SELECT unnest(?::VARCHAR[]), ?, ?, ?, ?", [ids, now, actor.name, why, match])
    job.advance(stage="compacting the store")
    store.compact()
    job.advance(stage="scrubbing the spool")
    matches = _matcher(set(ids), meta_field, meta_value)
    dirs = spool.spool_dirs(ws.path("spool"))
    for folder in (dirs[spool.SEALED], dirs[spool.DONE]):
        for segment in sorted(folder.glob("*.jsonl")):
            report.spool_lines += _scrub(segment, matches)
    report.active_lines_left = sum(_count(s, matches) for s in dirs[spool.ACTIVE].glob("*.jsonl"))
    job.advance(stage="finding the releases that hold them")
    report.releases = releases_containing(ws, set(ids))
    return report


def _quarantined(tx, ids: list[str], meta_field: str | None, meta_value: str | None) -> list[str]:
    """The ids of the quarantined rows whose raw line is about these items or has this meta value.

    A raw line need not be JSON: DuckDB's try_cast reads it in SQL; PostgreSQL, which has no
    try_cast, has the lines parsed here."""
    if tx.dialect == "duckdb":
        return [r["qid"] for r in tx.rows(
            "SELECT qid FROM quarantine WHERE "
            "json_extract_string(try_cast(raw AS JSON), '$.item_id') IN (SELECT unnest(?::VARCHAR[])) "
            "OR (?::VARCHAR IS NOT NULL AND json_extract_string(try_cast(raw AS JSON), '$.meta.' || ?) = ?)",
            [ids, meta_field, meta_field, meta_value])]
    matches = _matcher(set(ids), meta_field, meta_value)
    return [r["qid"] for r in tx.rows("SELECT qid, raw FROM quarantine WHERE raw IS NOT NULL")
            if (event := _parse(r["raw"].encode())) is not None and matches(event)]


def releases_containing(ws: Workspace, item_ids: set[str]) -> list[str]:
    """Release folders (dataset/version, and copies a build set aside) whose index lists any of these items."""
    found = []
    root = ws.path("releases")
    for index in sorted([*root.glob("*/*/index.parquet"), *root.glob("*/.orphaned/*/index.parquet")]):
        ids = set(pq.read_table(index, columns=["id"]).column("id").to_pylist())
        if ids & item_ids:
            found.append(str(index.parent.relative_to(root)))
    return found


def _matcher(ids: set[str], meta_field, meta_value):
    def matches(event: dict) -> bool:
        meta = event.get("meta")
        return _json_text(event.get("item_id")) in ids or (
            meta_field is not None and isinstance(meta, dict) and _json_text(meta.get(meta_field)) == meta_value)

    return matches


def _json_text(value) -> str | None:
    """A JSON value as the store's `->>` reads it: a string itself, anything else its JSON text."""
    return value if value is None or isinstance(value, str) else orjson.dumps(value).decode()


def _scrub(segment: Path, matches) -> int:
    """Rewrite a segment with the payload of matching events removed (atomically); return how many."""
    lines, scrubbed = [], 0
    with open(segment, "rb") as f:
        for raw in f:
            event = _parse(raw)
            if event is not None and matches(event):
                removed = [event.pop(key, None) for key in _PAYLOAD]
                removed += [event[section].pop(key, None) for section, key in _NESTED.items()
                            if isinstance(event.get(section), dict)]
                if any(value is not None for value in removed):
                    raw = orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)
                    scrubbed += 1
            lines.append(raw)
    if scrubbed:
        tmp = segment.with_suffix(".purging")
        tmp.write_bytes(b"".join(lines))
        os.replace(tmp, segment)
    return scrubbed


def _count(segment: Path, matches) -> int:
    with open(segment, "rb") as f:
        return sum(1 for raw in f if (e := _parse(raw)) is not None and matches(e))


def _parse(raw: bytes):
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None
