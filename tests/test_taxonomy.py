"""Taxonomy changes on a real store: rename, merge, split, remove, deprecate, undo; ids, queue, history, releases."""

import json

import pytest

from feedback import ingest_files
from feedback.errors import FeedbackError
from feedback.release import GateFailed, create_release, show_release
from feedback.review import decide, history, relabel_group
from feedback.review import taxonomy
from feedback.review.renames import label_map
from feedback.roles import Actor, PermissionDenied
from feedback.workspace import Workspace
from conftest import LABELS, configure, prediction

pytestmark = pytest.mark.backends

ALICE, LEAD = Actor("alice", "reviewer"), Actor("lena", "lead")
ITEMS = {"i1": "card_arrival", "i2": "card_arrival", "i3": "card_linking", "i4": "refund_not_showing_up",
         "i5": "lost_or_stolen_card"}


def labeled(ws, labels: dict[str, str]):
    """Items predicted and decided by a reviewer with these labels."""
    path = ws.root / f"events-{len(list(ws.root.glob('events-*')))}.jsonl"
    path.write_text("".join(json.dumps(prediction(i, label=l, text=f"text of {i}")) + "\n" for i, l in labels.items()))
    assert ingest_files(ws, [path]).quarantined == 0
    for item_id, label in labels.items():
        decide(ws, ALICE, item_id, label)
    return ws


def reviews(ws) -> dict:
    return {r["item_id"]: r for r in ws.store().rows("SELECT * FROM reviews ORDER BY item_id")}


def current(ws) -> dict:
    return {i: r["current_label"] for i, r in reviews(ws).items()}


def names(ws) -> list[tuple[str, str]]:
    return [(label.name, label.status) for label in Workspace(ws.root).taxonomy.labels]


def touched(ws, change_id) -> list[tuple]:
    return [tuple(r.values()) for r in ws.store().rows(
        "SELECT item_id, label_before, label_after FROM taxonomy_items WHERE change_id = ? ORDER BY item_id", [change_id])]


@pytest.fixture
def items(ws):
    return labeled(ws, ITEMS)


def test_rename_keeps_the_id_and_its_items_and_undo_restores_them(items):
    ws, before, toml = items, reviews(items), (items.root / "feedback.toml").read_text()
    counts = taxonomy.preview(ws, "rename", ["card_arrival"], ["card_delivery"])
    assert {k: counts[k] for k in ("relabeled", "queued", "decisions", "imports", "gold")} == {
        "relabeled": 2, "queued": 0, "decisions": 2, "imports": 0, "gold": 0}
    assert reviews(ws) == before and not ws.store().value("SELECT count(*) FROM taxonomy_changes")  # nothing applied
    made = taxonomy.rename(ws, LEAD, "card_arrival", "card_delivery", note="clearer")
    assert names(ws)[0] == ("card_delivery", "active") and [n for n, _ in names(ws)[1:]] == LABELS[1:]
    fresh = Workspace(ws.root).taxonomy
    assert fresh.accepts("card_arrival") and fresh.refusal("card_delivery") is None  # capture keeps old predictions
    assert fresh.refusal("card_arrival") == "label 'card_arrival' was renamed to 'card_delivery'; use 'card_delivery'"
    with ws.store().connect() as tx:
        assert label_map(tx) == {"card_arrival": "card_delivery"}
    assert current(ws) == {**ITEMS, "i1": "card_delivery", "i2": "card_delivery"}
    assert touched(ws, made["change_id"]) == [("i1", "card_arrival", "card_delivery"),
                                              ("i2", "card_arrival", "card_delivery")]
    decide(ws, ALICE, "i3", "card_delivery")  # the new name is a label like any other
    with pytest.raises(FeedbackError, match="renamed to 'card_delivery'"):
        decide(ws, ALICE, "i3", "card_arrival")
    with pytest.raises(FeedbackError, match="cannot be undone: 1 decisions or gold answers made since use 'card_delivery'"):
        taxonomy.undo_change(ws, LEAD, made["change_id"])
    from feedback.review import undo_last
    undo_last(ws, ALICE)
    taxonomy.undo_change(ws, LEAD, made["change_id"])
    after = reviews(ws)
    assert {i: r for i, r in after.items() if i != "i3"} == {i: r for i, r in before.items() if i != "i3"}
    assert current(ws) == ITEMS and [n for n, _ in names(ws)] == LABELS
    (log,) = taxonomy.changes(ws)
    assert (log["kind"], log["items"], log["note"], log["undone_by"]) == ("rename", 2, "clearer", "lena")
    assert (ws.root / "feedback.toml").read_text() == toml.replace(
        'mode = "fixed"\n', 'mode = "fixed"\nchanges_applied = 2\n')  # every other byte kept
    with pytest.raises(FeedbackError, match="was already undone by lena"):
        taxonomy.undo_change(ws, LEAD, made["change_id"])


def test_undo_restores_the_reviews_exactly(items):
    ws = items
    for change in (lambda: taxonomy.merge(ws, LEAD, ["card_arrival", "card_linking"], into="card_setup"),
                   lambda: taxonomy.split(ws, LEAD, "card_arrival", ["card_delivery", "card_delay"]),
                   lambda: taxonomy.remove(ws, LEAD, "lost_or_stolen_card"),
                   lambda: taxonomy.deprecate(ws, LEAD, "card_linking")):
        before, toml = reviews(ws), (ws.root / "feedback.toml").read_text()
        queue = ws.store().rows("SELECT item_id, reasons, priority FROM items ORDER BY item_id")
        made = change()
        taxonomy.undo_change(ws, LEAD, made["change_id"])
        assert reviews(ws) == before, made["kind"]
        assert ws.store().rows("SELECT item_id, reasons, priority FROM items ORDER BY item_id") == queue, made["kind"]
        assert names(ws) == [(n, "active") for n in LABELS], made["kind"]  # added labels gone: no release meanwhile
        assert _without_marker((ws.root / "feedback.toml").read_text()) == _without_marker(toml)


def _without_marker(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("changes_applied"))


def test_merge_into_a_new_label_retires_the_merged_and_appends_it(items):
    ws = items
    made = taxonomy.merge(ws, LEAD, ["card_arrival", "card_linking"], into="card_setup")
    assert made["relabeled"] == 3 and made["new_labels"] == ["card_setup"] and made["retired"] == ["card_arrival", "card_linking"]
    assert names(ws) == [("card_arrival", "retired"), ("card_linking", "retired"), *[(n, "active") for n in LABELS[2:]],
                         ("card_setup", "active")]
    assert current(ws) == {**ITEMS, "i1": "card_setup", "i2": "card_setup", "i3": "card_setup"}
    refusal = Workspace(ws.root).taxonomy.refusal("card_linking")
    assert refusal == f"label 'card_linking' was retired by taxonomy change {made['change_id']}, use 'card_setup'"
    assert not ws.store().value("SELECT count(*) FROM queue_reasons WHERE reason = 'taxonomy'")


def test_merge_into_an_existing_label_keeps_its_id(items):
    ws = items
    taxonomy.merge(ws, LEAD, ["card_linking"], into="card_arrival")
    assert names(ws) == [("card_arrival", "active"), ("card_linking", "retired"), *[(n, "active") for n in LABELS[2:]]]
    assert current(ws)["i3"] == "card_arrival"


def test_split_queues_the_items_with_reason_taxonomy(items):
    ws = items
    counts = taxonomy.preview(ws, "split", ["card_arrival"], ["card_delivery", "card_delay"])
    assert (counts["queued"], counts["relabeled"], counts["new_labels"]) == (2, 0, ["card_delivery", "card_delay"])
    made = taxonomy.split(ws, LEAD, "card_arrival", ["card_delivery", "card_delay"])
    assert names(ws)[0] == ("card_arrival", "retired") and names(ws)[-2:] == [("card_delivery", "active"),
                                                                              ("card_delay", "active")]
    after = reviews(ws)
    assert (after["i1"]["current_label"], after["i1"]["status"]) == (None, "new")
    assert touched(ws, made["change_id"]) == [("i1", "card_arrival", None), ("i2", "card_arrival", None)]
    queued = ws.store().rows("SELECT item_id, score, detail FROM queue_reasons WHERE reason = 'taxonomy' ORDER BY item_id")
    assert [(r["item_id"], r["score"], json.loads(r["detail"])) for r in queued] == [
        (i, 1.0, {"change_id": made["change_id"], "kind": "split", "label": "card_arrival"}) for i in ("i1", "i2")]
    assert ws.store().value("SELECT list_contains(reasons, 'taxonomy') FROM items WHERE item_id = 'i1'")
    assert "use 'card_delivery' or 'card_delay'" in Workspace(ws.root).taxonomy.refusal("card_arrival")
    decide(ws, ALICE, "i1", "card_delay")
    assert current(ws)["i1"] == "card_delay"
    steps = [(h["kind"], h["note"]) for h in history(ws, "i2") if h["kind"].startswith("taxonomy")]
    assert steps == [("taxonomy:split", "card_arrival -> (to review)")]  # in the item's history


def test_remove_retires_the_id_and_queues_its_items(items):
    ws = items
    made = taxonomy.remove(ws, LEAD, "lost_or_stolen_card", note="too vague")
    assert made["queued"] == 1 and names(ws)[3] == ("lost_or_stolen_card", "retired")
    assert current(ws)["i5"] is None
    with pytest.raises(FeedbackError, match=f"retired by taxonomy change {made['change_id']}, no label replaces it"):
        decide(ws, ALICE, "i5", "lost_or_stolen_card")
    assert Workspace(ws.root).taxonomy.accepts("lost_or_stolen_card")  # a model that still predicts it loses no events
    assert "lost_or_stolen_card" not in Workspace(ws.root).taxonomy.offered


def test_deprecate_refuses_new_labels_and_keeps_the_existing(items):
    ws = items
    made = taxonomy.deprecate(ws, LEAD, "card_linking")
    assert (made["relabeled"], made["queued"]) == (0, 0) and current(ws) == ITEMS
    assert Workspace(ws.root).taxonomy.refusal("card_linking") == (
        f"label 'card_linking' is deprecated (taxonomy change {made['change_id']}): no new labels")
    with pytest.raises(FeedbackError, match="is deprecated"):
        decide(ws, ALICE, "i1", "card_linking")
    removed = taxonomy.remove(ws, LEAD, "card_linking")  # the usual end of a deprecated label
    with pytest.raises(FeedbackError, match=f"undo {removed['change_id']} first"):
        taxonomy.undo_change(ws, LEAD, made["change_id"])
    taxonomy.undo_change(ws, LEAD, removed["change_id"])
    assert names(ws)[1] == ("card_linking", "deprecated") and current(ws) == ITEMS


def test_chained_changes_compose(items):
    ws = items
    taxonomy.rename(ws, LEAD, "card_arrival", "card_delivery")
    taxonomy.merge(ws, LEAD, ["card_delivery", "card_linking"], into="card_setup")
    with ws.store().connect() as tx:
        assert label_map(tx) == {"card_arrival": "card_setup", "card_delivery": "card_setup", "card_linking": "card_setup"}
    assert current(ws) == {**ITEMS, "i1": "card_setup", "i2": "card_setup", "i3": "card_setup"}


def test_bad_changes_are_refused_with_every_problem(items):
    ws = items
    cases = [
        (lambda: taxonomy.rename(ws, LEAD, "card_arival", "x"), "label 'card_arival' is not in the taxonomy (did you mean 'card_arrival'?)"),
        (lambda: taxonomy.rename(ws, LEAD, "card_arrival", "card_linking"), "label 'card_linking' already exists; merge the two"),
        (lambda: taxonomy.merge(ws, LEAD, ["card_arrival", "card_linking"], into="card_arrival"), "cannot be merged into itself"),
        (lambda: taxonomy.split(ws, LEAD, "card_arrival", ["only_one"]), "a split needs two or more labels"),
        (lambda: taxonomy.rename(ws, LEAD, "card_arrival", "skip"), "'skip' cannot be a label"),
        (lambda: taxonomy.undo_change(ws, LEAD, "t-nope"), "no taxonomy change 't-nope'"),
    ]
    for call, message in cases:
        with pytest.raises(FeedbackError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
            call()
    with pytest.raises(FeedbackError) as both:
        taxonomy.merge(ws, LEAD, ["nope", "card_linking"], into="skip")
    assert "'nope' is not in the taxonomy" in str(both.value) and "'skip' cannot be a label" in str(both.value)
    made = taxonomy.remove(ws, LEAD, "card_linking")
    with pytest.raises(FeedbackError, match="a retired name is never used again"):
        taxonomy.split(ws, LEAD, "card_arrival", ["card_linking", "card_new"])
    with pytest.raises(FeedbackError, match=f"retired by taxonomy change {made['change_id']}"):
        taxonomy.rename(ws, LEAD, "card_linking", "card_links")
    with pytest.raises(PermissionDenied, match="alice is a reviewer; change taxonomy needs the lead role"):
        taxonomy.deprecate(ws, ALICE, "card_arrival")
    assert len(taxonomy.changes(ws)) == 1


def test_a_toml_behind_the_log_is_brought_up_to_date(items):
    """A process that died between the store's commit and the file's rewrite leaves the file behind; the next use
    replays the log."""
    ws = items
    toml = (ws.root / "feedback.toml").read_text()
    taxonomy.merge(ws, LEAD, ["card_linking"], into="card_setup")
    (ws.root / "feedback.toml").write_text(toml)  # as if the rewrite never happened
    stale = Workspace(ws.root)
    assert taxonomy.sync(stale) == 1 and stale.taxonomy.refusal("card_linking")
    assert names(ws)[-1] == ("card_setup", "active")


def test_releases_keep_class_ids_and_list_the_changes(items):
    ws = configure(items, "release.gates", min_per_label=1)
    first = create_release(ws, by=LEAD)
    v1 = show_release(ws, first["version"])
    made = taxonomy.remove(ws, LEAD, "card_linking")
    relabel_group(ws, LEAD, ["i3"], "card_arrival")
    taxonomy.rename(ws, LEAD, "refund_not_showing_up", "refund_pending")
    second = create_release(ws, by=LEAD)
    v2 = show_release(ws, second["version"])
    assert v1["class_names"] == LABELS and v2["class_names"] == ["card_arrival", "card_linking", "refund_pending",
                                                                 "lost_or_stolen_card"]
    assert v2["retired_classes"] == ["card_linking"]
    changes = v2["taxonomy_changes"]
    assert [(c["kind"], c["labels_from"], c["labels_to"], c["examples"]) for c in changes] == [
        ("remove", ["card_linking"], [], 1), ("rename", ["refund_not_showing_up"], ["refund_pending"], 1)]
    diff = json.loads((ws.path("releases") / ws.dataset / "v2" / "diff.json").read_text())
    assert diff["taxonomy_changes"] == changes
    card = (ws.path("releases") / ws.dataset / "v2" / "README.md").read_text()
    assert "## Taxonomy changes" in card and f"`{made['change_id']}` remove card_linking" in card
    assert "Retired classes (ids kept, no examples): 1 card_linking" in card


def test_the_gate_refuses_a_release_that_holds_a_retired_label(items):
    ws = configure(items, "release.gates", min_per_label=1)
    # an item labeled after its label was retired, as a stale folder of a team store could
    taxonomy.remove(ws, LEAD, "card_linking")
    with ws.store().atomic() as tx:
        tx.execute("UPDATE reviews SET current_label = 'card_linking', status = 'labeled' WHERE item_id = 'i3'")
    with pytest.raises(GateFailed, match="taxonomy: labels retired by taxonomy changes: card_linking \\(1\\)"):
        create_release(ws, by=LEAD)
    made = create_release(ws, by=LEAD, override=("taxonomy",), reason="shipping the old label once")
    assert made["created"]


def test_the_cli_previews_applies_logs_and_undoes(cli, items):
    ws, w = items, ("-w", items.root)
    shown = cli("taxonomy", "split", "card_arrival", "--into", "card_delivery", "--into", "card_delay", "--preview", *w)
    assert shown.exit_code == 0 and shown.output.startswith("Preview, nothing applied: split card_arrival into "
                                                            "card_delivery, card_delay\n")
    assert "items queued               2" in shown.output and "new labels (new ids) card_delivery, card_delay" in shown.output
    assert json.loads(cli("taxonomy", "log", "--json", *w).output) == []
    made = json.loads(cli("taxonomy", "split", "card_arrival", "--into", "card_delivery", "--into", "card_delay",
                          "--note", "two causes", "-r", "lena", "--json", *w).output)
    assert (made["kind"], made["queued"], made["note"]) == ("split", 2, "two causes")
    labels = json.loads(cli("taxonomy", "labels", "--json", *w).output)
    assert [(r["id"], r["label"], r["status"]) for r in labels] == [
        (0, "card_arrival", "retired"), (1, "card_linking", "active"), (2, "refund_not_showing_up", "active"),
        (3, "lost_or_stolen_card", "active"), (4, "card_delivery", "active"), (5, "card_delay", "active")]
    log = cli("taxonomy", "log", *w).output
    assert made["change_id"] in log and "split card_arrival into card_delivery, card_delay  2 items, 2 queued" in log
    assert "lena" in log and "- two causes" in log
    refused = cli("label", "i1", "card_arrival", "-r", "alice", *w)
    assert refused.exit_code == 1 and f"retired by taxonomy change {made['change_id']}" in refused.output
    undone = cli("taxonomy", "undo", made["change_id"], "-r", "lena", *w)
    assert undone.exit_code == 0 and undone.output == f"Undid split {made['change_id']} (2 items rewritten).\n"
    assert current(ws) == ITEMS and "undone by lena" in cli("taxonomy", "log", *w).output
    merged = cli("taxonomy", "merge", "card_linking", "lost_or_stolen_card", "--into", "card_other", "-r", "lena", *w)
    assert merged.exit_code == 0 and "merge card_linking, lost_or_stolen_card into card_other" in merged.output
    assert "Undo with `feedback taxonomy undo t-" in merged.output


def test_the_cli_refuses_bad_changes_without_a_traceback(cli, items):
    w = ("-w", items.root, "-r", "lena")
    for args, message in [
        (("rename", "nope", "x"), "Error: label 'nope' is not in the taxonomy\n"),
        (("merge", "card_linking", "--into", "card_linking"), "Error: label 'card_linking' cannot be merged into itself\n"),
        (("undo", "t-0000"), "Error: no taxonomy change 't-0000'; see `feedback taxonomy log`\n"),
        (("deprecate", "card_arival", "--preview"), "Error: label 'card_arival' is not in the taxonomy (did you mean "
                                                    "'card_arrival'?)\n"),
    ]:
        result = cli("taxonomy", *args, *w)
        assert (result.exit_code, result.output) == (1, message), args
    assert cli("taxonomy", "split", "card_linking", *w).exit_code == 2  # --into is required: misuse


def test_an_open_taxonomy_follows_the_changes_without_a_list(open_ws):
    ws = configure(labeled(open_ws, {"o1": "late", "o2": "late", "o3": "broken"}), "release.gates", min_per_label=1)
    toml = (ws.root / "feedback.toml").read_text()
    assert create_release(ws, by=LEAD)["created"]
    taxonomy.rename(ws, LEAD, "late", "delayed")
    assert current(ws) == {"o1": "delayed", "o2": "delayed", "o3": "broken"}
    assert (ws.root / "feedback.toml").read_text() == toml  # no list to rewrite
    assert show_release(ws, create_release(ws, by=LEAD)["version"])["class_names"] == ["broken", "delayed"]  # id kept
    with pytest.raises(FeedbackError, match="'nope' is not in the taxonomy"):
        taxonomy.remove(ws, LEAD, "nope")
    taxonomy.remove(ws, LEAD, "broken")
    assert current(ws)["o3"] is None
