"""The library side of the reviewer's loop: asking for a particular item, the session counter, the
words of similar items that differ, and the releases page's data."""

import json
from datetime import datetime, timedelta

import pytest
from conftest import configure, prediction

from feedback import ingest_files
from feedback.app.screens import (
    adjudication_queue,
    dashboard_screen,
    day_start,
    gate_check,
    load_snippets,
    queue_filter,
    queue_screen,
    recent_batches,
    releases_screen,
    review_screen,
    word_marks,
)
from feedback.release import create_release
from feedback.review import decide, next_item, relabel_group, release_claim, undo_last
from feedback.review.queue import progress
from feedback.roles import Actor

pytestmark = pytest.mark.backends

ALICE, BOB = Actor("alice", "reviewer"), Actor("bob", "reviewer")


@pytest.fixture
def queued(ws, tmp_path):
    """Four low-confidence predictions, in priority order a, b, c, d."""
    ws = configure(ws, "review", low_confidence=0.5)
    events = [{**prediction(i, text=f"text of {i}"), "prediction": {"label": "card_arrival", "score": s}}
              for i, s in (("a", 0.1), ("b", 0.2), ("c", 0.3), ("d", 0.4))]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    ingest_files(ws, [path])
    return ws


def held(ws, reviewer):
    return [r["item_id"] for r in ws.store().rows(
        "SELECT item_id FROM reviews WHERE claimed_by = ? AND claim_expires > now()::TIMESTAMP", [reviewer])]


def test_asking_for_an_item_gives_back_the_one_held(queued):
    assert next_item(queued, ALICE)["item_id"] == "a"
    decide(queued, ALICE, "a", "card_linking")
    assert next_item(queued, ALICE)["item_id"] == "b"
    undone = undo_last(queued, ALICE)
    row = next_item(queued, ALICE, first=undone["item_id"])
    assert (row["item_id"], row["status"], row["claimed_by"]) == ("a", "in review", "alice")
    assert held(queued, "alice") == ["a"]  # b went back to the queue
    assert next_item(queued, BOB)["item_id"] == "b"
    assert next_item(queued, ALICE, first="b")["item_id"] == "a"  # bob holds b: alice keeps hers
    assert next_item(queued, ALICE, first="no-such-item")["item_id"] == "a"
    assert next_item(queued, ALICE, first="a")["item_id"] == "a" and held(queued, "alice") == ["a"]


def test_the_session_counter(queued):
    since = datetime.now() - timedelta(hours=6)
    with queued.store().atomic() as tx:
        assert progress(tx, queued, ALICE, since=since) == {"done": 0, "left": 4, "per_hour": None}
    next_item(queued, ALICE)
    next_item(queued, BOB)  # bob holds b: not alice's to get
    for item_id in ("a", "c"):
        decide(queued, ALICE, item_id, "card_linking")
    decide(queued, ALICE, "d", "skip")
    undo_last(queued, ALICE)  # the skip of d, undone: not counted, d is hers again
    with queued.store().atomic() as tx:
        counted = progress(tx, queued, ALICE, since=since, exclude=["d"])
        later = progress(tx, queued, ALICE, since=datetime.now() + timedelta(hours=1))
    assert (counted["done"], counted["left"]) == (2, 0)  # a and c done, b held by bob, d passed over
    assert counted["per_hour"] == pytest.approx(2 * 60, rel=0.01)  # two within the first minute: 2 per minute
    assert later["done"] == 0
    release_claim(queued, BOB, "b")
    with queued.store().atomic() as tx:
        assert progress(tx, queued, ALICE, since=since)["left"] == 2  # b and d


def test_the_review_screen_hides_claims_unless_asked(queued):
    screen = review_screen(queued, ALICE)
    assert screen["item"]["item_id"] == "a" and screen["hidden_claims"] == 1
    assert "claim" not in {h["kind"] for h in screen["history"]}
    shown = review_screen(queued, ALICE, claims=True)["history"]
    assert [h["kind"] for h in shown if h["kind"] == "claim"] == ["claim"]
    assert ("1", "label card_arrival") in screen["keys"] and ("?", "show these keys") in screen["keys"]
    assert screen["progress"]["left"] == 4


def test_nothing_left_still_counts(queued):
    for item_id in "abcd":
        decide(queued, ALICE, item_id, "card_linking")
    screen = review_screen(queued, ALICE, timezone="Europe/Berlin")
    assert screen["item"] is None and screen["progress"]["done"] == 4 and screen["progress"]["left"] == 0


def test_the_words_that_differ_are_marked():
    runs = word_marks("My bread sit order 3 never came", "my bread sit order 4 never came!")
    assert "".join(r["text"] for r in runs) == "my bread sit order 4 never came!"
    assert [r["text"].strip() for r in runs if r["differs"]] == ["4"]  # case and punctuation aside
    runs = word_marks("where is my card", "  card where is   it ")
    assert "".join(r["text"] for r in runs) == "  card where is   it "
    assert [r["text"].strip() for r in runs if r["differs"]] == ["card", "it"]
    assert word_marks("anything", "") == []
    assert [r["differs"] for r in word_marks("", "new words")] == [True]


def test_days_and_dates_of_the_pages():
    assert day_start("Nowhere/Atlantis") == day_start(None) == day_start("UTC")
    assert day_start("UTC").hour == 0
    flt = queue_filter(since=datetime(2026, 1, 2).date(), until=datetime(2026, 1, 3).date(), reason="error")
    assert (flt.since, flt.until, flt.reason) == (datetime(2026, 1, 2), datetime(2026, 1, 4), "error")


def test_load_snippets_name_the_release_folder():
    manifest = {"location": "/data/releases/banking77/v2", "splits": {"train": {}, "test": {}}}
    snippets = load_snippets(manifest)
    assert "read_parquet('/data/releases/banking77/v2/data/train-*.parquet')" in snippets["duckdb"]
    assert "datasets.load_dataset('/data/releases/banking77/v2')" in snippets["datasets"]
    assert "feedback.load_release('/data/releases/banking77/v2', split='train')" in snippets["pandas"]


def test_similar_items_kept_between_calls_see_new_and_purged_texts(ws, tmp_path):
    """The Review page keeps the texts it compares between keypresses; a new item or a purge shows at once."""
    from feedback.review import more_like_this

    def add(name, events):
        path = tmp_path / name
        path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
        ingest_files(ws, [path])

    add("a.jsonl", [prediction("r1", text="where is my new card"), prediction("r2", text="how do I link my card")])
    assert [s["item_id"] for s in more_like_this(ws, "r1")] == []
    add("b.jsonl", [prediction("r3", text="where is my new card?")])
    assert [(s["item_id"], s["status"]) for s in more_like_this(ws, "r1")] == [("r3", "new")]
    decide(ws, Actor("tess", "admin"), "r3", "card_arrival")
    assert [(s["item_id"], s["current_label"]) for s in more_like_this(ws, "r1")] == [("r3", "card_arrival")]
    with ws.store().atomic() as tx:  # as a privacy purge leaves it
        tx.execute("UPDATE items SET text = NULL WHERE item_id = 'r3'")
    assert more_like_this(ws, "r1") == []


def test_the_other_pages_gather_their_data(queued):
    """What the queue, groups, adjudication, dashboard and releases pages show, from one call each."""
    ws, lead = configure(queued, "review", overlap_share=1.0), Actor("lee", "lead")  # every item takes two reviewers

    def both(item_id, label, other=None):
        decide(ws, ALICE, item_id, label)
        decide(ws, BOB, item_id, other or label)

    both("a", "card_arrival", "card_linking")
    batch = relabel_group(ws, lead, ["c", "d"], "card_linking")
    both("c", "card_linking")
    both("d", "card_linking")
    assert [r["item_id"] for r in queue_screen(ws, size=2, page=9)["rows"]] == ["c", "d"]  # kept to the last page
    assert [(q["item_id"], q["decisions"]) for q in adjudication_queue(ws)] == [
        ("a", {"alice": "card_arrival", "bob": "card_linking"})]
    assert [(b["batch_id"], b["label"], b["live"]) for b in recent_batches(ws)] == [(batch, "card_linking", 2)]
    dashboard = dashboard_screen(ws)
    assert dashboard["items_waiting"] == 1 and dashboard["agreement"]["items_with_overlap"] == 3
    assert set(dashboard["throughput"]["reviewer"]) == {"alice", "bob", "lee"}
    assert {g["gate"] for g in gate_check(ws)} >= {"schema", "taxonomy", "conflicts", "leakage"}
    assert releases_screen(ws) == {"releases": [], "refs": []}
    small = {"override": ("min_per_label",), "reason": "a test's few examples"}
    create_release(ws, by=lead, **small)
    both("b", "card_arrival")
    create_release(ws, by=lead, **small)
    screen = releases_screen(ws)
    assert screen["refs"] == ["test/v1", "test/v2"] and screen["diff"]["counts"]["added"] == 1
