"""Privacy purge: the text is gone from every file of the workspace; the skeleton and an audit remain."""

import pytest

from feedback import Client, ingest_spool
from feedback.review import decide, forget, history
from feedback.roles import Actor, PermissionDenied
from conftest import prediction

pytestmark = pytest.mark.backends

SECRET = "Zq7-my-secret-iban-DE4450-0515-0000-1234-5678"
ADMIN = Actor("root", "admin")


def files_containing(root, needle: bytes):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes())


def tables_containing(ws, needle: str) -> list[str]:
    """A PostgreSQL store's tables with a row that holds `needle` (that store is no file of the workspace)."""
    names = [r["tablename"] for r in ws.store().rows(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")]
    return [n for n in names if ws.store().value(f'SELECT count(*) FROM "{n}" t WHERE t::text LIKE ?', [f"%{needle}%"])]


def test_forget_by_meta_removes_the_text_from_every_file(ws, store_backend):
    client = Client(ws)
    client.capture(prediction("p1", text=f"refund to {SECRET}", meta={"user_id": "u42"}))
    client.capture({"type": "correction", "item_id": "p1", "correction": {"label": "card_linking", "note": SECRET},
                    "meta": {"user_id": "u42"}})
    client.capture(prediction("p2", text=f"bad label {SECRET}", label="not_a_label", meta={"user_id": "u42"}))
    client.capture(prediction("keep", text="someone else's question", meta={"user_id": "u7"}))
    client.flush()
    ingest_spool(ws)
    decide(ws, ADMIN, "p1", "card_linking", note=f"user wrote {SECRET}")
    client.capture(prediction("p3", text=f"still in spool {SECRET}", meta={"user_id": "u42"}))
    client.flush()
    assert files_containing(ws.root, SECRET.encode())  # the test would prove nothing otherwise
    if store_backend == "postgres":
        assert tables_containing(ws, SECRET) == ["decisions", "events", "items", "quarantine"]

    report = forget(ws, ADMIN, meta_field="user_id", meta_value="u42", why="GDPR request 4711")
    assert report.items == ["p1"] and report.events == 2
    assert report.quarantine_rows == 1 and report.spool_lines == 4
    assert files_containing(ws.root, SECRET.encode()) == []
    assert files_containing(ws.root, b"someone else's question")
    if store_backend == "postgres":
        assert tables_containing(ws, SECRET) == [] and tables_containing(ws, "someone else's question")

    kinds = [(h["kind"], h["label"]) for h in history(ws, "p1")]
    assert kinds == [("prediction", "card_arrival"), ("correction", "card_linking"), ("decision:label", "card_linking")]
    audit = ws.store().rows("SELECT item_id, actor, why, match FROM purges")
    assert audit == [{"item_id": "p1", "actor": "root", "why": "GDPR request 4711", "match": "meta.user_id=u42"}]
    assert ingest_spool(ws).events == 1
    assert ws.store().value("SELECT input_text FROM events WHERE item_id = 'p3'") is None


def test_forget_needs_an_admin_and_a_reason(ws):
    with pytest.raises(PermissionDenied):
        forget(ws, Actor("bob", "lead"), item_ids=["x"], why="x")
    with pytest.raises(Exception, match="say why"):
        forget(ws, ADMIN, item_ids=["x"], why="")


def test_forgetting_twice_says_the_second_time_that_nothing_was_left(ws, cli):
    client = Client(ws)
    client.capture(prediction("p1", text=SECRET))
    client.flush()
    ingest_spool(ws)
    first = forget(ws, ADMIN, item_ids=["p1"], why="ticket 1")
    assert (first.items, first.already_purged, first.events) == (["p1"], [], 1)
    again = cli("forget", "p1", "--why", "ticket 1 again", "-w", ws.root, "-r", "root")
    assert again.output.splitlines() == ["Purged 0 items: 0 events, 0 quarantine rows, 0 spool lines.",
                                         "1 items had been purged before: nothing of theirs was left."]
