"""The demo tells the whole story: imported labels, v1, production, a sampler run, suspects, decisions, a dispute."""

import pytest

from feedback.demo import build
from feedback.learn import sampler_report
from feedback.release import create_release, list_releases, verify_release
from feedback.review import QueueFilter, decide_many, queue_counts, queue_page
from feedback.roles import Actor


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    return build(tmp_path_factory.mktemp("demo") / "ws")


def test_the_demo_workspace_is_a_team_a_week_in(story):
    ws, built = story
    assert built["releases"] == ["banking77/v1"] and verify_release(ws, "v1")["ok"]
    assert built["status"]["by_type"]["item"] == 6001  # the model's training labels, imported
    reasons = queue_counts(ws)["reason"]
    assert {"correction", "error", "low_confidence", "active_learning", "suspected_label_error"} <= set(reasons)
    assert reasons["low_confidence"] <= 0.15 * built["status"]["by_type"]["prediction"]
    (run,) = sampler_report(ws)["runs"]
    assert run["status"] == "done" and run["picked"] == 40
    (disputed,) = queue_page(ws, QueueFilter(status="disputed"))
    assert set(disputed["reviewers"]) == {"alice", "bob"}
    assert "feedback next -r alice" in built["next"]


def test_a_second_release_after_a_few_labels_passes_its_gates(story):
    ws, _ = story
    picks = queue_page(ws, QueueFilter(reason="active_learning"), limit=10)
    decide_many(ws, Actor("tess", "reviewer"), [(n, {"item_id": r["item_id"], "label": r["pred_label"]})
                                                 for n, r in enumerate(picks, start=1)])
    made = create_release(ws, by=Actor("lena", "lead"))
    assert made["version"] == "v2" and all(g["status"] != "fail" for g in made["gates"])


def test_running_the_demo_again_adds_nothing_and_fresh_builds_it_anew(story, cli):
    ws, built = story
    events, releases = built["status"]["events"], list_releases(ws)
    again_ws, again = build(ws.root)
    assert again["status"]["events"] == events and list_releases(again_ws) == releases
    assert len(sampler_report(ws)["runs"]) == 1 and again["seconds"] < built["seconds"]
    shown = cli("demo", ws.root, "--no-app", "--fresh")
    assert shown.exit_code == 0 and "Releases    banking77/v1  (built in" in shown.output, shown.output
    assert f"export FEEDBACK_WORKSPACE={ws.root}" in shown.output and "feedback queue --counts" in shown.output
    assert [r["version"] for r in list_releases(ws)] == ["v1"]  # rebuilt: the v2 of the test before is gone
