"""Existing labels in, decisions in bulk, and releases a trainer can use: provenance, pinned and stratified splits."""

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feedback import Client, ingest_spool, init_workspace
from feedback.capture import list_quarantine
from feedback.release import create_release, show_release
from feedback.review import decide_many, history, import_labels, item, queue_page
from feedback.roles import Actor, PermissionDenied, add_user, authenticate
from conftest import LABELS
from test_release import folder, text

pytestmark = pytest.mark.backends

ALICE = Actor("alice", "reviewer")


def write_csv(path, rows, header=("item_id", "text", "label", "split")):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def labeled(ws, tmp_path):
    """40 imported examples (10 per label), 4 of them pinned to test."""
    rows = [(f"t{n:02d}", text(n), LABELS[n % 4], "test" if n < 4 else "") for n in range(40)]
    write_csv(tmp_path / "train.csv", rows)
    report = import_labels(ws, [tmp_path / "train.csv"])
    assert (report.labels, report.pinned, report.quarantined) == (40, 4, 0)
    return ws


def test_imported_labels_are_trusted_with_provenance_and_a_rerun_adds_nothing(labeled, tmp_path):
    assert item(labeled, "t05")["current_label"] == LABELS[1] and item(labeled, "t05")["text"] == text(5)
    (decision,) = [h for h in history(labeled, "t05") if h["kind"].startswith("decision")]
    assert (decision["kind"], decision["label"], decision["note"]) == ("decision:import", LABELS[1], "train.csv:7")
    again = import_labels(labeled, [tmp_path / "train.csv"])
    assert again.labels == 0 and again.skipped_sources == [str(tmp_path / "train.csv")]
    copy = tmp_path / "copy.csv"
    copy.write_bytes((tmp_path / "train.csv").read_bytes())
    assert import_labels(labeled, [copy]).skipped_sources == [str(copy)]  # the content, not the name, counts
    assert labeled.store().value("SELECT count(*) FROM decisions") == 40
    assert labeled.store().value("SELECT count(*) FROM events") == 40
    assert queue_page(labeled) == []  # imported labels ask nothing of reviewers


def test_a_release_is_a_complete_training_set_with_imported_labels_pinned_and_stratified(labeled):
    made = create_release(labeled, by=Actor("lead", "admin"))
    manifest = show_release(labeled, made["version"])
    assert manifest["provenance"]["imported"] == 40 and made["examples"] == 40
    index = pq.read_table(folder(labeled, "v1") / "index.parquet").to_pylist()
    by_id = {r["id"]: r for r in index}
    assert all(by_id[f"t{n:02d}"]["split"] == "test" for n in range(4)) and all(r["imported"] for r in index)
    for name in LABELS:  # every label reaches every split: 10 examples, ratios 0.8 / 0.1 / 0.1
        assert {r["split"] for r in index if r["label"] == name} == {"train", "validation", "test"}
    assert "40 labels were imported" in (folder(labeled, "v1") / "README.md").read_text()


def test_a_reviewer_decision_overrides_an_import_and_an_undo_brings_it_back(labeled):
    from feedback.review import undo

    decided = decide_many(labeled, ALICE, [(2, {"item_id": "t05", "label": LABELS[3]})])
    assert decided == {"decided": 1, "waiting": 0, "errors": []} and item(labeled, "t05")["current_label"] == LABELS[3]
    last = labeled.store().value("SELECT decision_id FROM decisions WHERE reviewer = 'alice'")
    undo(labeled, ALICE, last)
    assert item(labeled, "t05")["current_label"] == LABELS[1]
    decide_many(labeled, ALICE, [(2, {"item_id": "t06", "label": "skip"})])
    assert item(labeled, "t06")["current_label"] == LABELS[2]  # a skip does not drop the imported label


def test_bad_rows_of_an_import_are_quarantined_with_reason_and_row(ws, tmp_path):
    path = write_csv(tmp_path / "mixed.csv", [
        ("a", "fine text", LABELS[0], ""),
        ("b", "", LABELS[0], ""),
        ("c", "unknown", "not_a_label", ""),
        ("d", "bad split", LABELS[1], "holdout"),
        ("", "no id: derived from the text", LABELS[2], ""),
    ])
    report = import_labels(ws, [path])
    assert (report.labels, report.quarantined) == (2, 3)
    assert {(r["reason"], r["field"], r["line"]) for r in list_quarantine(ws)} == {
        ("missing_field", "text", 3), ("unknown_label", "label", 4), ("invalid_value", "split", 5)}


def test_mapped_columns_parquet_and_jsonl_and_numeric_ids(ws, tmp_path):
    parquet = tmp_path / "seed.parquet"
    pq.write_table(pa.table({"id": [1, 2], "utterance": ["p one", "p two"], "intent": [LABELS[0], LABELS[1]]}), parquet)
    jsonl = tmp_path / "seed.jsonl"
    jsonl.write_text(json.dumps({"id": "j1", "utterance": "j one", "intent": LABELS[2]}) + "\n")
    report = import_labels(ws, [parquet, jsonl], mapping={"item_id": "id", "text": "utterance", "label": "intent"})
    assert report.labels == 3 and item(ws, "1")["current_label"] == LABELS[0]
    with pytest.raises(Exception, match="cannot map labl"):
        import_labels(ws, [jsonl], mapping={"labl": "intent"})


def test_importing_takes_a_signed_in_lead(ws, tmp_path, cli):
    path = write_csv(tmp_path / "x.csv", [("a", "text", LABELS[0], "")])
    add_user(ws, None, "ann", role="admin", password="pw")
    add_user(ws, authenticate(ws, "ann", "pw"), "rob", role="reviewer", password="pw-rob")
    with pytest.raises(PermissionDenied, match="import labels needs the lead role"):
        import_labels(ws, [path], by=authenticate(ws, "rob", "pw-rob"))
    done = cli("import-labels", path, "-w", ws.root, "-r", "ann", "--json", env={"FEEDBACK_PASSWORD": "pw"})
    assert json.loads(done.output)["labels"] == 1


def test_bulk_decisions_from_a_file_with_good_and_bad_rows(ws, tmp_path, cli):
    client = Client(ws)
    for n in range(6):
        client.prediction(f"p{n}", text=f"text {n}", label=LABELS[0], score=0.3)
    client.flush()
    ingest_spool(ws)
    stale = decide_many(ws, ALICE, [(2, {"item_id": "p5", "label": LABELS[1]})])
    assert stale["decided"] == 1
    path = write_csv(tmp_path / "decisions.csv", [
        ("p0", LABELS[1], "agrees with the user", ""),
        ("p1", "junk", "", ""),
        ("p2", "card_arival", "", ""),
        ("nope", LABELS[1], "", ""),
        ("p3", LABELS[2], "", ""),
        ("p5", LABELS[2], "", "none"),  # read before alice decided it: stale
    ], header=("item_id", "label", "note", "expect"))
    result = cli("label", "--file", path, "-w", ws.root, "-r", "bob", "--json")
    assert result.exit_code == 1
    body = json.loads(result.output)
    assert body["decided"] == 3
    assert [(e["row"], e["item_id"]) for e in body["errors"]] == [(4, "p2"), (5, "nope"), (7, "p5")]
    assert "did you mean 'card_arrival'" in body["errors"][0]["message"]
    assert "decided after you read it" in body["errors"][2]["message"]
    assert item(ws, "p0")["current_label"] == LABELS[1] and item(ws, "p1")["status"] == "junk"
    assert item(ws, "p5")["current_label"] == LABELS[1]


def test_items_without_a_prediction_come_in_through_the_contract(ws):
    client = Client(ws)
    assert client.item("u1", text="an unlabeled production request", meta={"source": "app"})
    assert not client.capture({"type": "item", "item_id": "u2", "input": {"text": "x"},
                               "prediction": {"label": LABELS[0]}})
    client.flush()
    ingest_spool(ws)
    row = item(ws, "u1")
    assert (row["text"], row["pred_label"], row["reasons"]) == ("an unlabeled production request", None, [])


def test_an_open_workspace_imports_any_label(tmp_path):
    ws = init_workspace(tmp_path / "open")
    path = write_csv(tmp_path / "o.csv", [("a", "text a", "brand_new", "")])
    assert import_labels(ws, [path]).labels == 1
