"""A property test of the label state: random sequences of imports, decisions by reviewers and a lead, undos,
adjudications, gold answers, claims and taxonomy changes, on items with and without overlap, on both backends.

Invariants: every human decision counts by the rule, is refused with a reason (leaving the state as it was),
or leaves the item visibly waiting (disputed, or queued for a second review); an undo restores the state
before the decision; a release holds exactly the items with a current label, with that label.
"""

import csv
import itertools
import json

import pytest
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from feedback import create_release, ingest_files, load_release
from feedback.errors import FeedbackError
from feedback.release.choices import GATES
from feedback.review import adjudicate, decide, next_item, set_gold, undo, undo_last
from feedback.review.imports import import_labels
from feedback.review.taxonomy import merge, remove, rename, undo_change
from feedback.roles import Actor
from feedback.workspace import Workspace
from conftest import configure

pytestmark = pytest.mark.backends

PEOPLE = (Actor("alice", "reviewer"), Actor("bob", "reviewer"), Actor("lena", "lead"))
LEAD = PEOPLE[2]
ITEMS = 4
CHOICES = ("skip", "junk", "unsure")
EXAMPLE = itertools.count()

who, which, what = st.integers(0, len(PEOPLE) - 1), st.integers(0, ITEMS - 1), st.integers(0, 7)
OPS = st.one_of(
    st.tuples(st.just("decide"), who, which, what),
    st.tuples(st.just("decide_then_undo"), who, which, what),
    st.tuples(st.just("undo_last"), who),
    st.tuples(st.just("adjudicate"), which, what),
    st.tuples(st.just("gold"), which, what),
    st.tuples(st.just("import"), which, what),
    st.tuples(st.just("claim"), who, which),
    st.tuples(st.just("taxonomy"), st.sampled_from(["rename", "merge", "remove"]), st.booleans(), what),
)


@pytest.fixture
def mixed(ws):
    """Half the items take overlap; gates that random histories fail are opened up (they are tested elsewhere)."""
    ws = configure(ws, "review", overlap=2, overlap_share=0.5)
    return configure(ws, "release.gates", min_per_label=0, min_agreement=-1.0)


def fresh(ws: Workspace) -> Workspace:
    return Workspace(ws.root)  # a taxonomy change rewrites feedback.toml


def label_of(ws: Workspace, n: int) -> str:
    offered = fresh(ws).taxonomy.offered
    return offered[n % len(offered)]


def state(ws: Workspace, item_id: str) -> tuple:
    rows = ws.store().rows("SELECT status, current_label FROM reviews WHERE item_id = ?", [item_id])
    return (rows[0]["status"], rows[0]["current_label"]) if rows else ("new", None)


def gold_answer(ws: Workspace, item_id: str) -> str | None:
    return ws.store().value("SELECT arg_max(label, set_at) FROM gold WHERE item_id = ?", [item_id])


def reasons(ws: Workspace, item_id: str) -> list[str]:
    return list(ws.store().value("SELECT reasons FROM items WHERE item_id = ?", [item_id]) or [])


def check_counted(ws: Workspace, item_id: str, choice: str, before: tuple) -> None:
    """The decision counted, or the item visibly waits, or (a gold item) it was scored against the answer."""
    status, current = state(ws, item_id)
    if status == "second_review":
        assert "second_review" in reasons(ws, item_id)
    if choice == "skip":
        assert current == before[1]
        return
    waiting = status in ("disputed", "second_review")
    scored = gold_answer(ws, item_id) is not None and current is not None
    expected = {"junk": status == "junk", "unsure": status == "disputed"}.get(choice, current == choice)
    assert expected or waiting or scored, (item_id, choice, before, (status, current))


def apply(ws: Workspace, op: tuple, ids: list[str], tmp_path, changes: list[str]) -> None:
    kind = op[0]
    if kind in ("decide", "decide_then_undo"):
        actor, item_id = PEOPLE[op[1]], ids[op[2]]
        choice = CHOICES[op[3] % 3] if op[3] >= 5 else label_of(ws, op[3])
        before = state(ws, item_id)
        try:
            made = decide(fresh(ws), actor, item_id, choice)
        except FeedbackError as refused:
            assert str(refused) and state(ws, item_id) == before  # refused: said why, changed nothing
            return
        check_counted(ws, item_id, choice, before)
        if kind == "decide_then_undo":
            undo(fresh(ws), actor, made["decision_id"])
            assert state(ws, item_id) == before
    elif kind == "undo_last":
        undo_last(ws, PEOPLE[op[1]])
    elif kind == "adjudicate":
        adjudicate(fresh(ws), LEAD, ids[op[1]], label_of(ws, op[2]))
        assert state(ws, ids[op[1]]) == ("labeled", label_of(ws, op[2]))
    elif kind == "gold":
        set_gold(fresh(ws), LEAD, ids[op[1]], label_of(ws, op[2]))
    elif kind == "import":
        path = tmp_path / f"import-{next(EXAMPLE)}.csv"
        with path.open("w", newline="") as f:
            csv.writer(f).writerows([["item_id", "text", "label"], [ids[op[1]], f"text of {ids[op[1]]}", label_of(ws, op[2])]])
        import_labels(fresh(ws), [path], by=LEAD)
    elif kind == "claim":
        next_item(ws, PEOPLE[op[1]], first=ids[op[2]])
    else:
        taxonomy_change(ws, op, ids, changes)


def taxonomy_change(ws: Workspace, op: tuple, ids: list[str], changes: list[str]) -> None:
    _, kind, undo_it, n = op
    offered = fresh(ws).taxonomy.offered
    if len(offered) < 3:
        return
    before = {i: state(ws, i) for i in ids}
    a, b = offered[n % len(offered)], offered[(n + 1) % len(offered)]
    if kind == "rename":
        made = rename(fresh(ws), LEAD, a, f"{a.split('~')[0]}~{next(EXAMPLE)}")
    elif kind == "merge":
        made = merge(fresh(ws), LEAD, [a], into=b)
    else:
        made = remove(fresh(ws), LEAD, a)
    retired = {x.name for x in fresh(ws).taxonomy.labels if x.status == "retired"}
    assert not {state(ws, i)[1] for i in ids} & retired
    if undo_it:
        undo_change(fresh(ws), LEAD, made["change_id"])
        assert {i: state(ws, i) for i in ids} == before
    else:
        changes.append(made["change_id"])


def check_release(ws: Workspace) -> None:
    current = {r["item_id"]: r["current_label"] for r in ws.store().rows(
        "SELECT item_id, current_label FROM reviews JOIN items USING (item_id) "
        "WHERE current_label IS NOT NULL AND text IS NOT NULL")}
    if not current:
        with pytest.raises(FeedbackError, match="nothing to release"):
            create_release(fresh(ws), by=LEAD, override=GATES, reason="a property test")
        return
    made = create_release(fresh(ws), by=LEAD, override=GATES, reason="a property test")
    shipped = load_release(made["location"])
    assert dict(zip(shipped["id"], shipped["label"])) == current


@settings(max_examples=12, deadline=None, phases=[Phase.explicit, Phase.generate],  # shrinking a store's history is slow
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(OPS, min_size=1, max_size=10))
def test_every_decision_counts_is_refused_or_waits_and_the_release_holds_the_current_labels(mixed, tmp_path, ops):
    n = next(EXAMPLE)
    ids = [f"x{n}-{k}" for k in range(ITEMS)]
    path = tmp_path / f"events-{n}.jsonl"
    path.write_text("".join(json.dumps({"type": "prediction", "item_id": i, "input": {"text": f"text of {i}"},
                                        "prediction": {"label": label_of(mixed, k), "score": 0.5}}) + "\n"
                            for k, i in enumerate(ids)))
    assert ingest_files(fresh(mixed), [path]).quarantined == 0
    changes: list[str] = []
    for op in ops:
        apply(mixed, op, ids, tmp_path, changes)
    check_release(mixed)
