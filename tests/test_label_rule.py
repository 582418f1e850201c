"""The current-label rule (issue 23): every human decision counts by the rule, is refused, or leaves the item
visibly waiting. One test per defect found in the field, on both store backends."""

import csv
from datetime import UTC, datetime

import pytest

import feedback
from feedback import create_release, find_suspects, ingest_files, load_release, status
from feedback.errors import FeedbackError
from feedback.review import (ClaimHeld, adjudicate, add_to_queue, decide, decide_many, item, next_item,
                             relabel_group, reviewer_agreement, set_gold, undo)
from feedback.review.imports import import_labels
from feedback.roles import Actor, PermissionDenied
from conftest import configure

pytestmark = pytest.mark.backends

ALICE, BOB, LEAD = Actor("alice", "reviewer"), Actor("bob", "reviewer"), Actor("lena", "lead")
TEXTS = {"card_arrival": "my card {} has not arrived", "card_linking": "how do I link card {}",
         "refund_not_showing_up": "refund {} is missing", "lost_or_stolen_card": "card {} was stolen"}


@pytest.fixture
def items(ws, tmp_path):
    """Eight production items, predicted card_arrival."""
    path = tmp_path / "events.jsonl"
    path.write_text("".join(f'{{"type": "prediction", "item_id": "r{n}", "input": {{"text": "text {n}"}}, '
                            f'"prediction": {{"label": "card_arrival", "score": 0.9}}}}\n' for n in range(8)))
    assert ingest_files(ws, [path]).quarantined == 0
    return ws


def imported(ws, tmp_path, labels: dict[str, str]):
    path = tmp_path / "train.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["item_id", "text", "label"])
        writer.writerows([item_id, TEXTS[label].format(item_id), label] for item_id, label in labels.items())
    assert import_labels(ws, [path], by=LEAD).quarantined == 0
    return ws


def shown(ws, item_id):
    row = item(ws, item_id)
    return row["status"], row["current_label"]


def released(ws) -> dict[str, str]:
    made = create_release(configure(ws, "release.gates", min_per_label=0), by=LEAD)
    frame = load_release(made["location"])
    return dict(zip(frame["id"], frame["label"]))


def test_1_a_relabel_of_an_imported_overlap_item_waits_for_a_second_review(ws, tmp_path):
    ws = imported(configure(ws, "review", overlap=2, overlap_share=1.0), tmp_path,
                  {"t1": "card_arrival", "t2": "card_arrival"})
    add_to_queue(ws, LEAD, ["t1", "t2"], reason="suspected_label_error")
    decide(ws, ALICE, "t1", "card_linking")  # the fix of a wrong import
    decide(ws, ALICE, "t2", "card_arrival")  # a confirmation
    assert shown(ws, "t1") == ("second_review", "card_arrival")  # waiting, shipping the import meanwhile
    assert "second_review" in item(ws, "t1")["reasons"] and item(ws, "t1")["priority"] >= 1.0
    assert shown(ws, "t2") == ("labeled", "card_arrival")
    assert status(ws)["second_review"] == 1
    made = create_release(configure(ws, "release.gates", min_per_label=0), by=LEAD)
    assert [g for g in made["gates"] if g["gate"] == "second_review"][0]["detail"].startswith("1 ")
    assert next_item(ws, ALICE) is None  # she answered; the second review is someone else's
    assert next_item(ws, BOB)["item_id"] == "t1"
    decide(ws, BOB, "t1", "card_linking")
    assert shown(ws, "t1") == ("labeled", "card_linking")
    assert released(ws)["t1"] == "card_linking"


def test_2_a_later_decision_by_another_reviewer_raises_a_dispute_and_a_leads_label_wins(items):
    decide(items, LEAD, "r0", "card_linking")
    decide(items, BOB, "r0", "refund_not_showing_up")  # a reviewer's mistake over the lead's label
    assert shown(items, "r0") == ("disputed", None)
    decide(items, ALICE, "r1", "card_linking")
    decide(items, LEAD, "r1", "lost_or_stolen_card")  # a lead's relabel wins
    assert shown(items, "r1") == ("labeled", "lost_or_stolen_card")
    decide(items, ALICE, "r2", "card_linking")
    decide(items, ALICE, "r2", "card_arrival")  # her own change of mind
    decide(items, BOB, "r2", "card_arrival")  # a confirmation
    assert shown(items, "r2") == ("labeled", "card_arrival")
    decide(items, BOB, "r3", "card_linking")
    decide(items, ALICE, "r3", "skip")  # a pass never drops a label
    assert shown(items, "r3") == ("labeled", "card_linking")
    assert set(released(items)) == {"r1", "r2", "r3"}


def test_3_decisions_on_adjudicated_items_are_refused_until_a_lead_reopens_them(items):
    decide(items, ALICE, "r0", "card_linking")
    decide(items, BOB, "r0", "card_arrival")
    settled = adjudicate(items, LEAD, "r0", "card_linking")
    with pytest.raises(FeedbackError, match="was adjudicated by lena as 'card_linking': only a lead changes it"):
        decide(items, BOB, "r0", "card_arrival")
    report = decide_many(items, BOB, enumerate([{"item_id": "r0", "label": "junk"}, {"item_id": "r1", "label": "junk"}],
                                                start=1))
    assert report["decided"] == 1 and report["errors"][0]["row"] == 1 and "adjudicated" in report["errors"][0]["message"]
    with pytest.raises(FeedbackError, match="1 of the 2 items cannot take this relabel"):
        relabel_group(items, BOB, ["r0", "r2"], "card_arrival")
    adjudicate(items, LEAD, "r0", "card_arrival")  # a lead may settle again
    assert shown(items, "r0") == ("labeled", "card_arrival")
    undo(items, LEAD, settled["decision_id"])
    assert shown(items, "r0") == ("labeled", "card_arrival")


def test_4_resolved_reasons_stop_adding_priority_once_an_item_is_decided(ws, tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"type": "correction", "item_id": "r0", "input": {"text": "hi"}, "correction": {"label": "card_linking"}}\n')
    ingest_files(ws, [path])
    assert item(ws, "r0")["priority"] == pytest.approx(1.0)
    made = decide(ws, ALICE, "r0", "card_linking")
    assert item(ws, "r0")["priority"] == 0.0 and item(ws, "r0")["reasons"] == ["correction"]
    add_to_queue(ws, LEAD, ["r0"], reason="manual", scores=[0.5])
    assert item(ws, "r0")["priority"] == pytest.approx(0.5)  # queued again since: counts
    undo(ws, ALICE, made["decision_id"])
    assert item(ws, "r0")["priority"] == pytest.approx(1.5)  # undecided again: every reason counts


def test_5_claims_hold_and_a_lead_overrides_one_with_a_reason(items):
    add_to_queue(items, LEAD, ["r0", "r1"], reason="manual")
    held = next_item(items, ALICE)["item_id"]
    with pytest.raises(ClaimHeld, match=f"item '{held}' is held by alice"):
        decide(items, BOB, held, "card_linking")
    with pytest.raises(PermissionDenied):
        decide(items, BOB, held, "card_linking", override_claim="she is away")
    report = decide_many(items, BOB, enumerate([{"item_id": held, "label": "card_linking"}], start=1))
    assert report["decided"] == 0 and "held by alice" in report["errors"][0]["message"]
    with pytest.raises(FeedbackError, match="say why you take over alice's claim"):
        decide(items, LEAD, held, "card_linking", override_claim="  ")
    made = decide(items, LEAD, held, "card_linking", override_claim="alice is away today", note="clear case")
    assert made["note"] == "claim override (held by alice): alice is away today; clear case"
    assert shown(items, held) == ("labeled", "card_linking")


def test_6_gold_answers_are_trusted_labels_and_nobody_is_scored_on_their_own_gold(items):
    set_gold(items, LEAD, "r0", "card_linking")
    assert shown(items, "r0") == ("new", "card_linking")  # trusted at once, still open to reviewers' answers
    decide(items, LEAD, "r0", "card_linking")
    decide(items, ALICE, "r0", "card_arrival")
    assert shown(items, "r0") == ("labeled", "card_linking")
    assert released(items) == {"r0": "card_linking"}
    gold = {g["reviewer"]: g for g in reviewer_agreement(items)["gold"]}
    assert set(gold) == {"alice"} and gold["alice"]["accuracy"] == 0.0
    off = configure(items, "review", gold_labels=False)
    decide(off, BOB, "r1", "card_linking")
    set_gold(off, LEAD, "r1", "card_linking")
    assert shown(off, "r1") == ("second_review", None)  # without the setting, gold only scores


def test_6_agreement_counts_independent_answers_only(items):
    decide(items, ALICE, "r0", "card_linking")
    decide(items, LEAD, "r0", "card_arrival")  # an override after seeing alice's label
    adjudicate(items, LEAD, "r1", "card_arrival")
    assert reviewer_agreement(items)["items_with_overlap"] == 0
    both = configure(items, "review", overlap_share=1.0)
    decide(both, ALICE, "r2", "card_linking")
    decide(both, BOB, "r2", "card_linking")
    agreement = reviewer_agreement(both)
    assert agreement["items_with_overlap"] == 2 and {(p["a"], p["b"]) for p in agreement["pairs"]} == {
        ("alice", "bob"), ("alice", "lena")}


def test_4_suspects_leave_labels_people_just_settled_alone_until_new_evidence(items, tmp_path):
    rows = [{"item_id": f"s{n}", "label": label} for label in TEXTS for n in range(len(TEXTS) * 12)
            if n % len(TEXTS) == list(TEXTS).index(label)]
    path = tmp_path / "more.jsonl"
    path.write_text("".join(f'{{"type": "item", "item_id": "{r["item_id"]}", "input": {{"text": '
                            f'"{TEXTS[r["label"]].format(r["item_id"])}"}}}}\n' for r in rows))
    ingest_files(items, [path])
    wrong = rows[0]["item_id"]
    rows[0] = {**rows[0], "label": "card_linking" if rows[0]["label"] != "card_linking" else "card_arrival"}
    assert decide_many(items, ALICE, enumerate(rows, start=1))["errors"] == []
    long_ago = find_suspects(configure(items, "learn", suspects_confirmed_days=0), dry_run=True, min_examples=5)
    assert wrong in {s["item_id"] for s in long_ago["suspects"]}
    just_now = find_suspects(configure(items, "learn", suspects_confirmed_days=30), dry_run=True, min_examples=5)
    assert just_now["suspects"] == [] and "settled by people" in just_now["message"]
    later = tmp_path / "later.jsonl"
    later.write_text(f'{{"type": "correction", "item_id": "{wrong}", "ts": "{datetime.now(UTC).isoformat()}", '
                     f'"correction": {{"label": "card_arrival"}}}}\n')
    ingest_files(items, [later])
    assert wrong in {s["item_id"] for s in find_suspects(items, dry_run=True, min_examples=5)["suspects"]}


def test_the_trusted_labels_are_a_public_table_that_matches_the_release(ws, tmp_path):
    ws = imported(ws, tmp_path, {"t1": "card_arrival", "t2": "card_linking"})
    decide(ws, ALICE, "t1", "refund_not_showing_up")
    set_gold(ws, LEAD, "t2", "lost_or_stolen_card")
    table = feedback.trusted_labels(ws)
    assert table.column_names == ["item_id", "text", "label", "status", "label_reviewer", "provenance", "decided_at"]
    rows = {r["item_id"]: (r["label"], r["provenance"]) for r in table.to_pylist()}
    assert rows == {"t1": ("refund_not_showing_up", "label"), "t2": ("lost_or_stolen_card", "gold")}
    assert released(ws) == {i: label for i, (label, _) in rows.items()}
    assert list(table.to_pandas()["item_id"]) == ["t1", "t2"]
