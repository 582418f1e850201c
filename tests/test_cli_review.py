"""The review commands through the CLI runner, with the JSON shapes scripts rely on."""

import json

import pytest
from conftest import prediction

pytestmark = pytest.mark.backends


def seed(cli, ws, tmp_path):
    events = [prediction(f"r{i}", text=f"my bread sit order {i} is missing", label="card_arrival") for i in range(4)]
    events += [{"type": "correction", "item_id": f"r{i}", "correction": {"label": "card_linking"}} for i in range(4)]
    events += [{"type": "error", "item_id": "boom", "input": {"text": "totally different words here"},
                "error": {"kind": "timeout"}}]
    path = tmp_path / "seed.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    assert cli("ingest", path, "-w", ws.root).exit_code == 0


def test_queue_json_has_item_reasons_priority_and_filters(cli, ws, tmp_path):
    seed(cli, ws, tmp_path)
    rows = json.loads(cli("queue", "-w", ws.root, "--json").output)
    assert [r["item_id"] for r in rows] == ["r0", "r1", "r2", "r3", "boom"]
    assert rows[0]["reasons"] == ["correction"] and rows[0]["priority"] == 1.0
    only = json.loads(cli("queue", "-w", ws.root, "--json", "--reason", "error", "--limit", "1").output)
    assert [(r["item_id"], r["reasons"]) for r in only] == [("boom", ["error"])]
    assert json.loads(cli("queue", "-w", ws.root, "--json", "--limit", "2").output)[1]["item_id"] == "r1"
    counts = json.loads(cli("queue", "-w", ws.root, "--counts", "--json").output)
    assert counts["reason"] == {"correction": 4, "error": 1}
    assert cli("queue", "-w", ws.root, "--reason", "nope").exit_code == 2


def test_label_history_undo_with_reviewer_from_env(cli, ws, tmp_path):
    seed(cli, ws, tmp_path)
    result = cli("label", "r0", "card_linking", "-w", ws.root, "--note", "agree with user", env={"FEEDBACK_USER": "ann"})
    assert result.exit_code == 0 and "r0 -> card_linking by ann" in result.output
    history = json.loads(cli("history", "r0", "-w", ws.root, "--json").output)
    assert [h["kind"] for h in history] == ["prediction", "correction", "decision:label"]
    assert (history[-1]["label"], history[-1]["reviewer"]) == ("card_linking", "ann")
    assert cli("undo", "--last", "-w", ws.root, "--reviewer", "ann").output.startswith("Undid d-")
    missing = cli("label", "r0", "card_linking", "-w", ws.root, env={"FEEDBACK_USER": ""})
    assert missing.exit_code == 1 and "pass --reviewer NAME or set FEEDBACK_USER" in missing.output
    bad = cli("label", "r0", "card_linkin", "-w", ws.root, "-r", "ann")
    assert bad.exit_code == 1 and "did you mean 'card_linking'" in bad.output
    stale = cli("label", "r0", "junk", "-w", ws.root, "-r", "ann", "--expect", "d-0000")
    assert stale.exit_code == 1 and "reload it before deciding" in stale.output


def test_groups_json_and_relabel_a_group(cli, ws, tmp_path):
    seed(cli, ws, tmp_path)
    groups = json.loads(cli("groups", "-w", ws.root, "--json").output)
    assert len(groups) == 1 and groups[0]["item_ids"] == ["r0", "r1", "r2", "r3"] and groups[0]["group_id"]
    preview = cli("relabel", "card_linking", *groups[0]["item_ids"], "--preview", "-w", ws.root)
    assert preview.output.count("-> card_linking") == 4
    done = json.loads(cli("relabel", "card_linking", *groups[0]["item_ids"], "-w", ws.root, "-r", "ann", "--json").output)
    labeled = json.loads(cli("queue", "-w", ws.root, "--json", "--status", "labeled").output)
    assert sorted(r["item_id"] for r in labeled) == ["r0", "r1", "r2", "r3"]
    assert cli("undo", "--batch", done["batch_id"], "-w", ws.root, "-r", "ann").output == \
        f"Undid 4 decisions of {done['batch_id']}.\n"


def test_not_duplicates_keeps_a_group_apart_until_undone(cli, ws, tmp_path):
    seed(cli, ws, tmp_path)
    mark = json.loads(cli("not-duplicates", "r0", "r1", "r2", "r3", "-w", ws.root, "-r", "ann", "--json").output)
    assert mark["items"] == 4 and json.loads(cli("groups", "-w", ws.root, "--json").output) == []
    undo = cli("not-duplicates", "--undo", mark["mark_id"], "-w", ws.root, "-r", "ann")
    assert undo.output == f"Undid {mark['mark_id']}.\n"
    assert len(json.loads(cli("groups", "-w", ws.root, "--json").output)) == 1


def test_roles_through_the_cli_with_passwords_and_tokens(cli, ws, tmp_path):
    seed(cli, ws, tmp_path)
    assert cli("user-add", "ann", "--role", "admin", "--password-stdin", "-w", ws.root, input="pw-ann\n").exit_code == 0
    unproven = cli("user-add", "bob", "--password-stdin", "-w", ws.root, "-r", "ann", input="pw-bob\n")
    assert unproven.exit_code == 1 and "sign in as ann: set FEEDBACK_PASSWORD, or FEEDBACK_TOKEN" in unproven.output
    ann = {"FEEDBACK_PASSWORD": "pw-ann"}
    added = cli("user-add", "bob", "--password-stdin", "-w", ws.root, "-r", "ann", "--json", input="pw-bob\n", env=ann)
    assert json.loads(added.output) == {"user": "bob", "role": "reviewer"}
    bob = {"FEEDBACK_PASSWORD": "pw-bob"}
    refused = cli("adjudicate", "r0", "card_linking", "-w", ws.root, "-r", "bob", env=bob)
    assert refused.exit_code == 1 and "bob is a reviewer; adjudicate needs the lead role" in refused.output
    forged = cli("adjudicate", "r0", "card_linking", "-w", ws.root, "-r", "ann", env=bob)
    assert forged.exit_code == 1 and "unknown user or wrong password" in forged.output
    assert cli("next", "-w", ws.root, "-r", "bob", "--json", env=bob).exit_code == 0
    stranger = cli("next", "-w", ws.root, "-r", "eve", env={"FEEDBACK_PASSWORD": "guess"})
    assert stranger.exit_code == 1 and "unknown user or wrong password" in stranger.output
    assert cli("agreement", "-w", ws.root, "--json").exit_code == 0  # reading needs no sign-in
    taxonomy = cli("label-add", "card_swallowed", "--hotkey", "W", "-w", ws.root, "-r", "bob", env=bob)
    assert taxonomy.exit_code == 1 and "bob is a reviewer; change taxonomy needs the lead role" in taxonomy.output
    assert cli("label-add", "card_swallowed", "--hotkey", "W", "-w", ws.root, "-r", "ann", env=ann).exit_code == 0
    token = json.loads(cli("token", "create", "--name", "ci", "-w", ws.root, "-r", "bob", "--json", env=bob).output)
    with_token = {"FEEDBACK_TOKEN": token["token"], "FEEDBACK_USER": ""}
    assert cli("label", "r1", "card_swallowed", "-w", ws.root, env=with_token).exit_code == 0
    assert cli("token", "revoke", token["token_id"], "-w", ws.root, env=with_token).exit_code == 0
    revoked = cli("label", "r2", "card_swallowed", "-w", ws.root, env=with_token)
    assert revoked.exit_code == 1 and "revoked API token" in revoked.output
    forgot = json.loads(cli("forget", "boom", "--why", "ticket 1", "-w", ws.root, "-r", "ann", "--json", env=ann).output)
    assert forgot["items"] == ["boom"] and forgot["events"] == 1


def test_acting_commands_answer_json(cli, ws, tmp_path):
    seed(cli, ws, tmp_path)
    who = ["-w", ws.root, "-r", "lea", "--json"]
    assert json.loads(cli("enqueue", "boom", *who).output) == {"queued": 1}
    assert json.loads(cli("gold", "r0", "card_linking", *who).output) == {"item_id": "r0", "gold": "card_linking"}
    decided = json.loads(cli("adjudicate", "r1", "card_linking", *who).output)
    assert (decided["kind"], decided["label"], decided["reviewer"]) == ("adjudicate", "card_linking", "lea")
    undone = json.loads(cli("undo", decided["decision_id"], *who).output)
    assert undone["undoes"] == decided["decision_id"]
    assert json.loads(cli("label-add", "card_swallowed", *who).output) == {"label": "card_swallowed"}
    assert json.loads(cli("user-add", "lea", "--role", "admin", "-w", ws.root, "--json").output) == {
        "user": "lea", "role": "admin"}


def test_label_names_with_any_text_keep_the_config_valid(cli, ws):
    for name in ("ok😀", 'quote"and\\backslash', "tab\tand\x7fdel", "ünïcode"):
        assert cli("label-add", name, "-w", ws.root, "-r", "ann").exit_code == 0
    assert {"ok😀", 'quote"and\\backslash', "tab\tand\x7fdel", "ünïcode"} <= set(json.loads(
        cli("labels", "-w", ws.root, "--json").output))
