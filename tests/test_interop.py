"""Label Studio and Argilla exports in (files the real tools made, see fixtures/README.md), Label Studio tasks out."""

import json
from pathlib import Path

import pytest

from feedback import init_workspace
from feedback.capture import list_quarantine
from feedback.release import create_release
from feedback.release.exports import export_release
from feedback.review import import_labels, item
from feedback.review.interop import read_label_rows
from feedback.roles import Actor

FIXTURES = Path(__file__).parent / "fixtures"
LABELS = ["card_arrival", "card_linking", "exchange_rate", "lost_or_stolen_card", "Refund_not_showing_up"]
LEAD = Actor("lead", "admin")


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """One workspace that imported the three fixtures, with the report of each."""
    ws = init_workspace(tmp_path_factory.mktemp("interop") / "ws", dataset="b77", labels=LABELS)
    names = ["label_studio_export.json", "label_studio_export_min.json", "argilla_export.parquet"]
    return ws, {name: import_labels(ws, [FIXTURES / name]) for name in names}


def quarantined(ws, name: str) -> dict:
    return {r["line"]: (r["reason"], r["field"], r["message"]) for r in list_quarantine(ws, limit=100)
            if r["source"].endswith(name)}


def test_a_label_studio_export_gives_the_agreed_choices_and_quarantines_the_rest(imported):
    ws, reports = imported
    report = reports["label_studio_export.json"]
    assert (report.labels, report.quarantined) == (26, 4)
    assert quarantined(ws, "label_studio_export.json") == {
        3: ("invalid_value", "annotations.label", "field 'annotations.label': task 3: the annotators disagree "
            "('card_arrival' by 1, 'card_linking' by 2); decide it in review or import the label you trust"),
        4: ("invalid_value", "annotations.label", "field 'annotations.label': task 4: the annotators disagree "
            "('card_arrival' by 1, 'card_linking' by 2); decide it in review or import the label you trust"),
        25: ("missing_field", "annotations", "field 'annotations': task 25 has no annotation with a choice "
             "(a prediction is not a label)"),
        26: ("missing_field", "annotations", "field 'annotations': task 26 has no annotation with a choice "
             "(a prediction is not a label)")}


def test_label_studio_ground_truth_settles_a_disagreement_and_json_min_cannot_tell(imported):
    ws, reports = imported
    rows = {n: row for n, row, _ in read_label_rows(FIXTURES / "label_studio_export.json")}
    assert rows[5]["label"] == "card_arrival"  # user 1's answer is the ground truth; user 2 said card_linking
    assert (reports["label_studio_export_min.json"].labels, reports["label_studio_export_min.json"].quarantined) == (25, 4)
    minimal = quarantined(ws, "label_studio_export_min.json")
    assert sorted(minimal) == [5, 7, 9, 30]  # the first row of tasks 3, 4, 5, and task 26 with no answer
    assert minimal[9][:2] == ("invalid_value", "label") and "task 5: the annotators disagree" in minimal[9][2]
    assert minimal[30][:2] == ("missing_field", "label")


def test_an_argilla_export_gives_submitted_responses_under_the_record_id(imported):
    ws, reports = imported
    assert (reports["argilla_export.parquet"].labels, reports["argilla_export.parquet"].quarantined) == (17, 3)
    assert item(ws, "b77-test-003")["current_label"] == "card_arrival"  # the other answer is a draft
    assert item(ws, "b77-test-000")["text"] == "How do I locate my card?"
    assert {line: q[:2] for line, q in quarantined(ws, "argilla_export.parquet").items()} == {
        3: ("invalid_value", "responses.label"), 17: ("missing_field", "responses.label"),
        18: ("missing_field", "responses.label")}


def test_a_release_exported_as_label_studio_tasks_has_the_real_export_shape_and_comes_back(imported, tmp_path):
    ws, _ = imported
    made = create_release(ws, by=LEAD, hooks=False)
    written = export_release(ws, made["version"], tmp_path / "tasks.json")
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    real = json.loads((FIXTURES / "label_studio_export.json").read_text())[0]
    assert written["tasks"] == len(tasks) == made["examples"]
    (ours,) = tasks[0]["annotations"]
    assert set(tasks[0]) == {"data", "annotations"} and set(tasks[0]["data"]) == {"item_id", "text", "split"}
    assert {k: set(v) if isinstance(v, dict) else v for k, v in ours["result"][0].items()} == {
        k: set(v) if isinstance(v, dict) else v for k, v in real["annotations"][0]["result"][0].items()
        if k in ("from_name", "to_name", "type", "value")} | {"value": {"choices"}}
    config = (tmp_path / "tasks.xml").read_text()
    assert '<Choices name="label" toName="text"' in config and all(f'"{label}"' in config for label in LABELS)
    again = init_workspace(tmp_path / "again", dataset="b77", labels=LABELS)
    assert import_labels(again, [tmp_path / "tasks.json"]).labels == len(tasks)
    first = tasks[0]["data"]
    assert item(again, first["item_id"])["current_label"] == ours["result"][0]["value"]["choices"][0]


def test_predictions_are_never_labels(tmp_path):
    export = tmp_path / "predicted.json"
    export.write_text(json.dumps([{"data": {"text": "where is my card"}, "predictions": [{"result": [
        {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["card_arrival"]}}]}]}]))
    ((line, row, _),) = read_label_rows(export)
    assert (line, row.reason, row.field) == (1, "missing_field", "annotations")


def test_the_cli_reads_an_export_as_is_and_writes_tasks_with_their_config(cli, tmp_path):
    ws = init_workspace(tmp_path / "ws", dataset="b77", labels=LABELS)
    imported = cli("import-labels", FIXTURES / "label_studio_export.json", FIXTURES / "argilla_export.parquet",
                   "-w", ws.root)
    assert imported.exit_code == 0 and imported.output.startswith("Imported 43 labels")
    assert cli("release", "create", "--no-hooks", "-q", "-w", ws.root).exit_code == 0
    written = cli("release", "export", "v1", "--to", tmp_path / "v1.json", "--as-predictions", "-w", ws.root, "--json")
    assert json.loads(written.output)["tasks"] == 43 and (tmp_path / "v1.xml").exists()
    (task, *_) = json.loads((tmp_path / "v1.json").read_text())
    assert task["predictions"][0]["model_version"] == "b77/v1" and "annotations" not in task
    wrong = cli("release", "export", "v1", "--to", tmp_path / "x.json", "--format", "argilla", "-w", ws.root)
    assert wrong.exit_code == 1 and wrong.output == "Error: export format 'argilla': use label-studio\n"


def test_hostile_exports_never_crash_the_import_and_name_each_bad_row(tmp_path):
    ws = init_workspace(tmp_path / "ws", dataset="b77", labels=LABELS)
    path = tmp_path / "hostile.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps([
        {"annotation_id": 1, "id": [1, 2], "text": "a list as the task id", "label": "card_arrival"},
        {"annotation_id": 2, "id": {"deep": [1]}, "text": 3, "label": "card_arrival"},
        {"data": {"text": "no id"}, "annotations": "not a list"},
        7, None]).encode())
    report = import_labels(ws, [path])
    assert (report.labels, report.quarantined) == (1, 4)
    assert quarantined(ws, "hostile.json") == {
        2: ("wrong_type", "text", "field 'text': must be text, got int"),
        3: ("missing_field", "annotations", "field 'annotations': a task without an id has no annotation with a "
            "choice (a prediction is not a label)"),
        4: ("not_an_object", None, "expected a JSON object (a task or a row)"),
        5: ("not_an_object", None, "expected a JSON object (a task or a row)")}
