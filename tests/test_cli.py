"""The `feedback` command through click's runner, against real workspaces."""

import json

import pytest

from feedback.cli import main
from conftest import REPO, prediction


def test_init_creates_a_workspace_with_a_fixed_taxonomy(cli, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("refund\ncard_lost\n")
    result = cli("init", tmp_path / "w", "--dataset", "intents", "--labels", labels, "--label", "other")
    assert result.exit_code == 0
    assert "fixed taxonomy of 3 labels" in result.output
    config = (tmp_path / "w" / "feedback.toml").read_text()
    assert 'mode = "fixed"' in config and 'name = "other"' in config
    assert (tmp_path / "w" / "feedback.duckdb").is_file() and (tmp_path / "w" / "spool").is_dir()
    again = cli("init", tmp_path / "w")
    assert again.exit_code == 1 and "is already a workspace" in again.output


def test_a_workspace_path_with_quotes_works(cli, tmp_path):
    root = tmp_path / "it's a \"ws\""
    assert cli("init", root, "--label", "refund").exit_code == 0
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(prediction("q1", label="refund")) + "\n")
    assert json.loads(cli("ingest", path, "-w", root, "--json").output)["events"] == 1
    assert json.loads(cli("status", "-w", root, "--json").output)["events"] == 1


def test_commands_say_clearly_when_there_is_no_workspace(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FEEDBACK_WORKSPACE", raising=False)
    result = cli("status")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: no workspace found in {tmp_path.resolve()} or its parents; pass --workspace DIR")


def test_workspace_is_found_from_env_and_current_folder(cli, ws, monkeypatch, tmp_path):
    monkeypatch.setenv("FEEDBACK_WORKSPACE", str(ws.root))
    assert json.loads(cli("status", "--json").output)["dataset"] == "test"
    monkeypatch.delenv("FEEDBACK_WORKSPACE")
    (ws.root / "sub").mkdir()
    monkeypatch.chdir(ws.root / "sub")
    assert json.loads(cli("status", "--json").output)["workspace"] == str(ws.root)


def test_ingest_status_labels_and_quarantine(cli, ws, tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps(prediction("a")) + "\n" + json.dumps(prediction("b", label="card_arival")) + "\n")
    result = cli("ingest", path, "-w", ws.root)
    assert result.exit_code == 0
    assert result.output.startswith("Ingested 1 events from 1 sources (0 duplicates skipped, 1 quarantined).")
    status = json.loads(cli("status", "-w", ws.root, "--json").output)
    assert {k: status[k] for k in ("events", "by_type", "quarantined", "spool_pending")} == {
        "events": 1, "by_type": {"prediction": 1}, "quarantined": 1, "spool_pending": 0}
    assert "Quarantine  1 open rows: unknown_label 1 (0 resolved)" in cli("status", "-w", ws.root).output
    labels = json.loads(cli("labels", "-w", ws.root, "--json").output)
    assert labels["card_arrival"] == {"predicted": 1, "corrected": 0}
    rows = json.loads(cli("quarantine", "-w", ws.root, "--json").output)
    assert [(r["reason"], r["field"], r["line"]) for r in rows] == [("unknown_label", "prediction.label", 2)]
    text = cli("quarantine", "-w", ws.root).output
    assert "log.jsonl:2  unknown_label: field 'prediction.label': 'card_arival' is not in the taxonomy (did you mean 'card_arrival'?)" in text
    fix = tmp_path / "fix.jsonl"
    assert cli("quarantine", "-w", ws.root, "--export", fix).output == f"Wrote 1 events to {fix}.\n"
    fix.write_text(fix.read_text().replace("card_arival", "card_arrival"))
    assert cli("ingest", fix, "-w", ws.root, "-q").output == ""
    assert cli("quarantine", "-w", ws.root).output == "Quarantine is empty.\n"


def test_csv_mapping_option_and_misuse_exit_2(cli, ws, tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("id,msg,intent\nr1,hello,card_arrival\n")
    result = cli("ingest", path, "-w", ws.root, "--map", "item_id=id", "--map", "input.text=msg",
                 "--map", "prediction.label=intent", "--type", "prediction", "--json")
    assert json.loads(result.output)["events"] == 1
    bad = cli("ingest", path, "-w", ws.root, "--map", "input.text")
    assert bad.exit_code == 2 and "Invalid value for --map: 'input.text' is not FIELD=VALUE" in bad.output
    assert cli("nonsense").exit_code == 2


def test_a_missing_file_is_an_error_not_a_traceback(cli, ws, tmp_path):
    result = cli("ingest", tmp_path / "nope.jsonl", "-w", ws.root)
    assert result.exit_code == 1 and result.output == f"Error: {tmp_path / 'nope.jsonl'}: no such file\n"


def test_schema_command_prints_the_published_schema(cli):
    assert json.loads(cli("schema").output)["properties"]["type"]["enum"] == ["prediction", "correction", "error", "item"]


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_has_help_with_an_example_and_is_in_the_readme(cli, name):
    result = cli(name, "--help")
    assert result.exit_code == 0 and "Example" in result.output
    assert f"feedback {name}" in (REPO / "README.md").read_text()
