"""The review core on a real store: queue, claims, decisions with provenance, undo, overlap, roles."""

import json
import re
import threading
from datetime import datetime, timedelta

import pytest

from feedback import ingest_files
from feedback.errors import FeedbackError, NotFound
from feedback.review import (StaleDecision, adjudicate, decide, history, preview_group, relabel_group, set_gold,
                             undo, undo_batch, undo_last)
from feedback.roles import (Actor, PermissionDenied, actor, add_user, authenticate, authenticate_token,
                            create_token, list_tokens, revoke_token)
from feedback.review.state import derive_review
from feedback.review import QueueFilter, add_to_queue, dashboard_figures, item, next_item, queue_counts, queue_page
from conftest import configure, prediction

pytestmark = pytest.mark.backends

ALICE, BOB, CAROL = Actor("alice", "reviewer"), Actor("bob", "reviewer"), Actor("carol", "reviewer")
LEAD = Actor("lena", "lead")


def load(ws, tmp_path, events):
    import json

    path = tmp_path / f"events-{len(list(tmp_path.glob('events-*')))}.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    assert ingest_files(ws, [path]).quarantined == 0
    return ws


def correction(item_id, label, **extra):
    return {"type": "correction", "item_id": item_id, "correction": {"label": label, "by": "user"}, **extra}


def error(item_id):
    return {"type": "error", "item_id": item_id, "input": {"text": f"text of {item_id}"}, "error": {"kind": "timeout"}}


@pytest.fixture
def queued(ws, tmp_path):
    """Five items: a correction that disagrees, an error, two low-confidence predictions, one confident.

    Low confidence is absolute here (scores under 0.5), so the arithmetic of priorities is easy to follow.
    """
    ws = configure(ws, "review", low_confidence=0.5)
    events = [
        prediction("c1", text="my card has not come", **{"meta": {"channel": "app"}}),
        correction("c1", "card_linking"),
        error("e1"),
        {**prediction("low1", text="link my card"), "prediction": {"label": "card_linking", "score": 0.2, "model_version": "v2"}},
        {**prediction("low2", text="stolen?"), "prediction": {"label": "lost_or_stolen_card", "score": 0.45, "model_version": "v1"}},
        {**prediction("sure", text="card arrived?"), "prediction": {"label": "card_arrival", "score": 0.99}},
    ]
    return load(ws, tmp_path, events)


def ids(rows):
    return [r["item_id"] for r in rows]


def test_items_enter_the_queue_for_reasons_and_are_ordered_by_the_documented_priority(queued):
    rows = queue_page(queued)
    assert ids(rows) == ["c1", "e1", "low1", "low2"]
    by_id = {r["item_id"]: r for r in rows}
    assert by_id["c1"]["reasons"] == ["correction"] and by_id["c1"]["priority"] == pytest.approx(1.0)
    assert by_id["e1"]["reasons"] == ["error"] and by_id["e1"]["priority"] == pytest.approx(0.8)
    assert by_id["low1"]["priority"] == pytest.approx(0.6 * 0.8)
    assert by_id["low2"]["priority"] == pytest.approx(0.6 * 0.55)
    assert by_id["c1"]["corr_label"] == "card_linking" and by_id["c1"]["source"] == "app"


def test_correction_before_its_prediction_still_queues_the_item(ws, tmp_path):
    load(ws, tmp_path, [correction("late", "card_linking")])
    load(ws, tmp_path, [prediction("late")])
    (row,) = queue_page(ws)
    assert (row["item_id"], row["pred_label"], row["corr_label"], row["reasons"]) == (
        "late", "card_arrival", "card_linking", ["correction"])


def test_config_weights_change_the_priority(queued):
    ws = configure(queued, "queue.weights", error=5.0)
    from feedback.review.state import refresh_items

    with ws.store().atomic() as tx:
        refresh_items(tx, ws, ["e1"])
    assert ids(queue_page(ws))[0] == "e1"


def test_filters_and_counts(queued):
    assert ids(queue_page(queued, QueueFilter(reason="error"))) == ["e1"]
    assert ids(queue_page(queued, QueueFilter(model_version="v2"))) == ["low1"]
    assert ids(queue_page(queued, QueueFilter(pred_label="lost_or_stolen_card"))) == ["low2"]
    assert ids(queue_page(queued, QueueFilter(corr_label="card_linking"))) == ["c1"]
    assert ids(queue_page(queued, QueueFilter(text="LINK my"))) == ["low1"]
    assert ids(queue_page(queued, QueueFilter(text="100%"))) == []
    assert ids(queue_page(queued, QueueFilter(source="app"))) == ["c1"]
    assert ids(queue_page(queued, QueueFilter(since=datetime.utcnow() + timedelta(days=1)))) == []
    decide(queued, ALICE, "low1", "card_linking")
    assert ids(queue_page(queued, QueueFilter(status="labeled"))) == ["low1"]
    assert ids(queue_page(queued, QueueFilter(current_label="card_linking"))) == ["low1"]
    counts = queue_counts(queued)
    assert counts["total"] == {"items": 4}
    assert counts["status"] == {"new": 3, "labeled": 1}
    assert counts["reason"]["low_confidence"] >= 2 and counts["reason"]["error"] == 1
    assert ids(queue_page(queued, sort="time", limit=2)) != [] and len(queue_page(queued, limit=2, offset=3)) == 1
    with pytest.raises(FeedbackError, match="status 'done' is not one of"):
        QueueFilter(status="done")


def test_claims_never_give_two_reviewers_the_same_item(queued):
    a, b = next_item(queued, ALICE), next_item(queued, BOB)
    assert a["item_id"] == "c1" and b["item_id"] == "e1"
    assert next_item(queued, ALICE)["item_id"] == "c1"  # a reload returns the held item
    assert item(queued, "c1")["status"] == "in review" and item(queued, "c1")["claimed_by"] == "alice"
    decide(queued, ALICE, "c1", "card_linking")
    assert next_item(queued, ALICE)["item_id"] == "low1"


def test_claims_from_threads_at_once_are_all_different(queued):
    got = {}

    def take(name):
        got[name] = next_item(queued, Actor(name, "reviewer"))["item_id"]

    threads = [threading.Thread(target=take, args=(f"r{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got.values()) == ["c1", "e1", "low1", "low2"]


def test_an_expired_lease_returns_the_item_to_the_queue(queued):
    ws = configure(queued, "review", lease_seconds=0)
    assert next_item(ws, ALICE)["item_id"] == "c1"
    assert next_item(ws, BOB)["item_id"] == "c1"


def test_a_decision_records_provenance_and_sets_the_current_label(queued):
    d = decide(queued, ALICE, "c1", "card_linking", note="user was right")
    assert d["kind"] == "label" and d["reviewer"] == "alice" and d["role"] == "reviewer"
    row = item(queued, "c1")
    assert (row["status"], row["current_label"], row["label_reviewer"]) == ("labeled", "card_linking", "alice")
    stored = queued.store().rows("SELECT * FROM decisions")
    assert len(stored) == 1 and stored[0]["note"] == "user was right"


def test_skip_junk_unsure_statuses(queued):
    decide(queued, ALICE, "c1", "skip")
    decide(queued, ALICE, "e1", "junk")
    decide(queued, ALICE, "low1", "unsure")
    assert [item(queued, i)["status"] for i in ("c1", "e1", "low1")] == ["skipped", "junk", "disputed"]
    assert next_item(queued, ALICE)["item_id"] == "low2"  # alice skipped c1: not offered to her again
    assert next_item(queued, BOB)["item_id"] == "c1"  # but to bob


def test_a_user_correction_is_never_the_current_label(queued):
    assert item(queued, "c1")["current_label"] is None


def test_unknown_labels_and_items_are_refused_with_a_hint(queued):
    with pytest.raises(FeedbackError, match="label 'card_arival' is not in the taxonomy \\(did you mean 'card_arrival'\\?\\)"):
        decide(queued, ALICE, "c1", "card_arival")
    with pytest.raises(NotFound, match="item 'nope' is not in the store"):
        decide(queued, ALICE, "nope", "card_arrival")


def test_a_stale_write_is_refused(queued):
    seen = item(queued, "c1")["last_decision_id"]
    first = decide(queued, BOB, "c1", "card_arrival", based_on=seen, check_stale=True)
    with pytest.raises(StaleDecision, match="was decided by bob after you loaded it"):
        decide(queued, ALICE, "c1", "card_linking", based_on=seen, check_stale=True)
    decide(queued, ALICE, "c1", "card_linking", based_on=first["decision_id"], check_stale=True)
    assert (item(queued, "c1")["status"], item(queued, "c1")["current_label"]) == ("disputed", None)  # to a lead


def test_undo_is_a_new_event_and_restores_the_previous_state(queued):
    first = decide(queued, ALICE, "c1", "card_arrival")
    decide(queued, ALICE, "c1", "card_linking")
    undo_last(queued, ALICE)
    assert item(queued, "c1")["current_label"] == "card_arrival"
    undo(queued, ALICE, first["decision_id"])
    assert item(queued, "c1")["status"] == "new"
    kinds = [r["kind"] for r in queued.store().rows("SELECT kind FROM decisions ORDER BY decided_at")]
    assert kinds == ["label", "label", "undo", "undo"]
    with pytest.raises(FeedbackError, match="already undone"):
        undo(queued, ALICE, first["decision_id"])
    with pytest.raises(PermissionDenied):
        undo(queued, BOB, decide(queued, ALICE, "e1", "junk")["decision_id"])


def test_history_is_one_ordered_list(queued):
    next_item(queued, ALICE)
    decide(queued, ALICE, "c1", "card_linking")
    add_to_queue(queued, LEAD, ["c1"], reason="suspected_label_error", scores=[0.7])
    kinds = [r["kind"] for r in history(queued, "c1")]
    assert kinds[:2] == ["prediction", "correction"]
    assert kinds[2:] == ["claim", "decision:label", "queued:suspected_label_error"]
    labels = {r["kind"]: (r["label"], r["reviewer"]) for r in history(queued, "c1")}
    assert labels["decision:label"] == ("card_linking", "alice")
    row = item(queued, "c1")
    assert row["reasons"] == ["correction", "suspected_label_error"]
    assert row["priority"] == pytest.approx(0.9 * 0.7)  # the decision resolved the correction


def test_overlap_items_collect_independent_decisions_and_disagreement_goes_to_adjudication(queued):
    ws = configure(queued, "review", overlap=2, overlap_share=1.0)
    decide(ws, ALICE, "c1", "card_linking")
    assert item(ws, "c1")["status"] == "second_review" and "second_review" in item(ws, "c1")["reasons"]
    assert next_item(ws, ALICE)["item_id"] != "c1"
    decide(ws, BOB, "c1", "card_linking", based_on=None, check_stale=True)  # independent: not stale
    assert item(ws, "c1")["status"] == "labeled"
    decide(ws, ALICE, "e1", "card_arrival")
    decide(ws, BOB, "e1", "card_linking")
    assert item(ws, "e1")["status"] == "disputed"
    assert ids(queue_page(ws, QueueFilter(status="disputed"))) == ["e1"]
    with pytest.raises(PermissionDenied, match="alice is a reviewer; adjudicate needs the lead role"):
        adjudicate(ws, ALICE, "e1", "card_arrival")
    adjudicate(ws, LEAD, "e1", "card_arrival")
    row = item(ws, "e1")
    assert (row["status"], row["current_label"], row["label_reviewer"]) == ("labeled", "card_arrival", "lena")


def test_gold_items_need_overlap_and_only_leads_set_them(queued):
    with pytest.raises(PermissionDenied):
        set_gold(queued, ALICE, "low2", "lost_or_stolen_card")
    set_gold(queued, LEAD, "low2", "lost_or_stolen_card")
    decide(queued, ALICE, "low2", "lost_or_stolen_card")
    assert item(queued, "low2")["status"] == "new"
    decide(queued, BOB, "low2", "lost_or_stolen_card")
    assert item(queued, "low2")["status"] == "labeled"


def test_group_relabel_preview_apply_and_undo_as_a_batch(queued):
    decide(queued, ALICE, "low1", "card_arrival")
    preview = preview_group(queued, ["low1", "low2"])
    assert [(r["item_id"], r["current_label"]) for r in preview] == [("low1", "card_arrival"), ("low2", None)]
    batch = relabel_group(queued, BOB, ["low1", "low2"], "lost_or_stolen_card")
    rows = queued.store().rows("SELECT item_id, label FROM decisions WHERE batch_id = ? ORDER BY item_id", [batch])
    assert rows == [{"item_id": "low1", "label": "lost_or_stolen_card"}, {"item_id": "low2", "label": "lost_or_stolen_card"}]
    assert item(queued, "low2")["current_label"] == "lost_or_stolen_card"
    assert undo_batch(queued, BOB, batch) == 2
    assert item(queued, "low1")["current_label"] == "card_arrival" and item(queued, "low2")["status"] == "new"


def test_roles_come_from_the_users_file_and_actors_must_sign_in(queued):
    assert actor(queued, "anyone").role == "admin"  # open workspace: anyone acts, as an admin
    decide(queued, Actor("anyone", "reviewer"), "c1", "card_linking")
    add_user(queued, None, "ann", role="admin", password="pw-ann")
    ann = authenticate(queued, "ann", "pw-ann")
    add_user(queued, ann, "bob", role="reviewer", password="pw-bob")
    with pytest.raises(PermissionDenied, match="this workspace has users: sign in"):
        actor(queued, "bob")
    for forged in (Actor("ann", "admin"), Actor("bob", "reviewer")):  # a hand-made actor is refused everywhere
        with pytest.raises(PermissionDenied, match="has not signed in to this workspace"):
            decide(queued, forged, "c1", "card_arrival")
    with pytest.raises(PermissionDenied, match="has not signed in"):
        add_user(queued, Actor("ann", "admin"), "eve", role="admin")
    bob = authenticate(queued, "bob", "pw-bob")
    assert (bob.name, bob.role) == ("bob", "reviewer")
    assert decide(queued, bob, "c1", "card_arrival")["reviewer"] == "bob"
    with pytest.raises(PermissionDenied, match="^bob is a reviewer; manage users needs the admin role$"):
        add_user(queued, bob, "eve", role="admin")
    with pytest.raises(PermissionDenied, match="unknown user or wrong password"):
        authenticate(queued, "bob", "wrong")
    stored = str(queued.store().rows("SELECT * FROM users JOIN user_passwords USING (user_name)"))
    assert "pw-bob" not in stored and stored.count("scrypt$") == 2
    assert "scrypt$" not in (queued.root / "feedback.toml").read_text() and not (queued.root / "users.json").exists()


def test_api_tokens_sign_in_until_revoked_or_expired(queued):
    add_user(queued, None, "ann", role="admin", password="pw-ann")
    ann = authenticate(queued, "ann", "pw-ann")
    made = create_token(queued, ann, name="ci")
    assert made["token"].startswith("fbk_ann.") and made["token"] not in str(queued.store().rows("SELECT * FROM api_tokens"))
    signed = authenticate_token(queued, made["token"])
    assert (signed.name, signed.role) == ("ann", "admin")
    add_to_queue(queued, signed, ["c1"], reason="manual")
    revoke_token(queued, ann, made["token_id"])
    with pytest.raises(PermissionDenied, match="unknown, expired or revoked API token"):
        authenticate_token(queued, made["token"])
    old = create_token(queued, ann, days=1)
    with queued.store().atomic() as tx:
        tx.execute("UPDATE api_tokens SET expires_at = '2020-01-01' WHERE token_id = ?", [old["token_id"]])
    with pytest.raises(PermissionDenied, match="expired"):
        authenticate_token(queued, old["token"])
    with pytest.raises(PermissionDenied):
        authenticate_token(queued, "fbk_ann.guessed")
    assert [t["live"] for t in list_tokens(queued, ann)] == [False, False]


def test_derive_review_rules_on_hand_made_histories():
    def d(i, kind, label=None, reviewer="a", undoes=None):
        return {"decision_id": f"d{i}", "kind": kind, "label": label, "reviewer": reviewer, "undoes": undoes,
                "decided_at": i}

    assert derive_review([], overlap=None)["status"] == "new"
    assert derive_review([d(1, "label", "x"), d(2, "label", "y")], overlap=None)["current_label"] == "y"
    assert derive_review([d(1, "label", "x"), d(2, "label", "y"), d(3, "undo", undoes="d2")], overlap=None)["current_label"] == "x"
    assert derive_review([d(1, "label", "x", "a"), d(2, "label", "x", "b")], overlap=2)["status"] == "labeled"
    assert derive_review([d(1, "label", "x", "a"), d(2, "label", "y", "b")], overlap=3)["status"] == "disputed"
    assert derive_review([d(1, "label", "x", "a"), d(2, "unsure", None, "b")], overlap=2)["status"] == "disputed"
    adjudicated = derive_review([d(1, "label", "x", "a"), d(2, "label", "y", "b"), d(3, "adjudicate", "y", "l")], overlap=2)
    assert (adjudicated["status"], adjudicated["current_label"], adjudicated["label_reviewer"]) == ("labeled", "y", "l")


def test_a_labeled_item_queued_again_reaches_reviewers(queued):
    decide(queued, ALICE, "c1", "card_linking")
    assert next_item(queued, ALICE)["item_id"] == "e1"
    add_to_queue(queued, LEAD, ["c1"], reason="suspected_label_error", scores=[1.0])
    assert next_item(queued, BOB)["item_id"] == "c1"
    decide(queued, BOB, "c1", "card_arrival")
    assert (item(queued, "c1")["status"], item(queued, "c1")["current_label"]) == ("disputed", None)
    assert next_item(queued, BOB)["item_id"] != "c1"


def test_history_text_and_json_show_times_in_one_form(queued, cli):
    decide(queued, ALICE, "c1", "card_linking")
    next_item(queued, BOB)
    text = cli("history", "c1", "-w", queued.root).output.splitlines()
    assert len(text) == 3 and all(re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  \S", line) for line in text)
    rows = json.loads(cli("history", "c1", "-w", queued.root, "--json").output)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", r["at"]) for r in rows)


def test_the_dashboard_counts_each_waiting_item_once(queued):
    add_to_queue(queued, LEAD, ["c1", "e1"], reason="manual")
    figures = dashboard_figures(queued)
    assert figures["items_waiting"] == 4 == queue_counts(queued)["total"]["items"]
    assert int(figures["queue"]["items"].sum()) == 6  # per reason: c1 and e1 count twice


def test_a_150_class_log_queues_a_reviewable_share_for_low_confidence(tmp_path):
    import numpy as np

    from feedback import init_workspace

    rng = np.random.default_rng(7)
    events = []
    for version, n in (("v1", 1500), ("v2", 600)):
        top = rng.dirichlet(np.full(150, 0.05), size=n).max(axis=1) * rng.uniform(0.05, 0.5, n)  # median near 0.1
        events += [{"type": "prediction", "item_id": f"{version}-{k}", "input": {"text": f"request {version} {k}"},
                    "prediction": {"label": f"intent_{k % 150}", "score": float(s), "model_version": version}}
                   for k, s in enumerate(top)]
    ws = load(init_workspace(tmp_path / "relative"), tmp_path, events)  # open taxonomy: 150 classes
    counts = queue_counts(ws)["reason"]
    assert 0.05 * len(events) <= counts["low_confidence"] <= 0.15 * len(events)
    by_version = queue_counts(ws, QueueFilter(reason="low_confidence"))["model_version"]
    assert by_version["v1"] <= 0.15 * 1500 and by_version["v2"] <= 0.15 * 600  # each model against its own scores
    rows = queue_page(ws, QueueFilter(reason="low_confidence"), limit=5)
    assert [r["pred_score"] for r in rows] == sorted(r["pred_score"] for r in rows)  # the least confident first

    absolute = init_workspace(tmp_path / "absolute")  # the fixed threshold, for a model that calibrates
    absolute = load(configure(absolute, "review", low_confidence=0.5), tmp_path, events)
    assert queue_counts(absolute)["reason"]["low_confidence"] > 0.9 * len(events)
