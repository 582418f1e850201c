"""Each page's logic paths with Streamlit's AppTest, against a real workspace seeded from sample_data/."""

import json
import subprocess
import sys
import textwrap

import pytest
from streamlit.testing.v1 import AppTest

from feedback import ingest_files
from feedback.demo import prepare_demo
from feedback.roles import Actor, add_user, authenticate
from feedback.review import QueueFilter, item, near_duplicate_groups, queue_counts
from conftest import REPO, set_config

BREAD = [f"my bread sit order {n} never came" for n in range(6)]


def seed(root, tmp_path):
    ws = prepare_demo(root)
    events = [{"type": "prediction", "item_id": f"bread-{i}", "input": {"text": t},
               "prediction": {"label": "card_arrival", "score": 0.3}} for i, t in enumerate(BREAD)]
    path = tmp_path / "bread.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    ingest_files(ws, [path])
    return ws


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    return seed(tmp / "ws", tmp)


@pytest.fixture
def app(demo, monkeypatch):
    monkeypatch.setenv("FEEDBACK_WORKSPACE", str(demo.root))
    monkeypatch.setenv("FEEDBACK_USER", "tess")

    def open_page(page="review"):
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
        at.session_state["start_page"] = page
        return at.run()

    return open_page


def decisions(ws, reviewer):
    return ws.store().rows("SELECT item_id, kind, label FROM decisions WHERE reviewer = ? ORDER BY decided_at", [reviewer])


def test_review_shows_the_claimed_item_and_a_button_decides_it(app, demo):
    at = app()
    assert not at.exception and at.title[0].value == "Review"
    claimed = item(demo, _claimed(demo, "tess"))
    assert claimed["claimed_by"] == "tess"
    assert at.text[0].value == claimed["text"]
    quick = at.button(key="quick-1")
    quick.click().run()
    made = decisions(demo, "tess")[-1]
    assert made["item_id"] == claimed["item_id"] and made["kind"] == "label"
    assert _claimed(demo, "tess") != claimed["item_id"]


def test_skip_undo_and_next(app, demo):
    at = app()
    first = _claimed(demo, "tess")
    next(b for b in at.button if b.label == "Skip").click().run()
    assert decisions(demo, "tess")[-1] == {"item_id": first, "kind": "skip", "label": None}
    next(b for b in at.button if b.label == "Undo").click().run()
    assert decisions(demo, "tess")[-1]["kind"] == "undo"
    current = _claimed(demo, "tess")
    next(b for b in at.button if b.label == "Next").click().run()
    assert _claimed(demo, "tess") not in (None, current)
    assert current in at.session_state["passed"]


def test_a_stale_decision_shows_an_error_not_a_traceback(app, demo):
    at = app()
    held = _claimed(demo, "tess")
    from feedback.review import decide

    decide(demo, Actor("other", "admin"), held, "card_arrival")
    at.button(key="quick-1").click().run()
    assert not at.exception
    assert "reload it before deciding" in at.error[0].value


def test_queue_filters_and_counts(app, demo):
    at = app("queue")
    assert at.title[0].value == "Queue" and not at.exception
    at.sidebar.selectbox[0].select("error").run()
    table = at.main.dataframe[0].value
    expected = queue_counts(demo, QueueFilter(reason="error"))["total"]["items"]
    assert len(table) == min(expected, 50) and all("error" in reasons for reasons in table["reasons"])
    assert at.sidebar.metric[0].value == f"{expected:,}"


def test_groups_relabel_and_undo_a_batch(app, demo):
    at = app("groups")
    assert not at.exception
    bread = next(g for g in near_duplicate_groups(demo, threshold=90, queued_only=False) if "bread-0" in g["item_ids"])
    assert bread["item_ids"] == [f"bread-{i}" for i in range(6)]
    at.selectbox[0].set_value(bread["group_id"]).run()
    at.selectbox(key="group-label").select("card_arrival").run()
    at.button(key="relabel-group").click().run()
    assert "Labeled 6 items as card_arrival" in at.success[0].value
    assert all(item(demo, f"bread-{i}")["current_label"] == "card_arrival" for i in range(6))
    next(b for b in at.button if b.label == "Undo batch" and not b.disabled).click().run()
    assert all(item(demo, f"bread-{i}")["current_label"] is None for i in range(6))


def test_adjudication_settles_a_disputed_item(app, demo):
    from feedback.review import decide

    decide(demo, Actor("x", "reviewer"), "bread-0", "unsure")
    at = app("adjudication")
    assert not at.exception
    at.selectbox(key="adj-bread-0").select("card_linking").run()
    at.button(key="settle-bread-0").click().run()
    assert item(demo, "bread-0")["current_label"] == "card_linking"


def test_dashboard_renders_its_figures(app):
    at = app("dashboard")
    assert not at.exception and at.title[0].value == "Dashboard"
    assert [m.label for m in at.metric] == ["Items waiting", "Decisions", "Krippendorff's alpha"]
    assert at.header[0].value == "Drift against the latest release"
    checks = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert set(checks["name"]) >= {"label mix", "confidence", "novel vocabulary"}  # the demo has v1 and production


def test_sign_in_is_required_when_the_workspace_has_users(tmp_path, monkeypatch):
    ws = seed(tmp_path / "ws", tmp_path)
    add_user(ws, None, "ann", role="admin", password="pw-ann")
    add_user(ws, authenticate(ws, "ann", "pw-ann"), "rita", role="reviewer", password="pw-rita")
    monkeypatch.setenv("FEEDBACK_WORKSPACE", str(ws.root))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    assert at.subheader[0].value == "Sign in" and not at.title
    at.text_input[0].input("rita")
    at.text_input[1].input("wrong")
    at.button[0].click().run()
    assert at.error[0].value == "unknown user or wrong password"
    at.text_input[1].input("pw-rita")
    at.button[0].click().run()
    signed = at.session_state["current_actor"]
    assert at.title[0].value == "Review" and (signed.name, signed.role) == ("rita", "reviewer")


def test_a_busy_store_shows_a_short_wait_not_a_stack_trace(tmp_path, monkeypatch):
    ws = set_config(seed(tmp_path / "ws", tmp_path), "busy_timeout", 0.5)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(ws.path('store'))!r})
        print("held", flush=True)
        time.sleep(30)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("FEEDBACK_WORKSPACE", str(ws.root))
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
        assert not at.exception
        assert "The store is busy" in at.warning[0].value
    finally:
        holder.kill()
        holder.wait()


def _claimed(ws, reviewer):
    return ws.store().value("SELECT item_id FROM reviews WHERE claimed_by = ? AND claim_expires > now()::TIMESTAMP",
                            [reviewer])


def test_sampler_page_runs_the_sampler_and_shows_its_yield(app, demo):
    at = app("sampler")
    assert not at.exception and at.title[0].value == "Sampler"
    next(b for b in at.button if b.label.startswith("Queue the most informative")).click().run()
    assert at.info[0].value.startswith("queued 100 of ")
    assert at.metric[0].label == "Picked" and int(at.metric[0].value.replace(",", "")) > 0


def test_releases_page_creates_a_release_and_lists_it(tmp_path, monkeypatch):
    from feedback.review import relabel_group

    ws = seed(tmp_path / "ws", tmp_path)
    monkeypatch.setenv("FEEDBACK_WORKSPACE", str(ws.root))
    relabel_group(ws, Actor("tess", "admin"), [f"bread-{i}" for i in range(6)], "card_arrival")
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.session_state["start_page"] = "releases"
    at.run()
    assert not at.exception and at.title[0].value == "Releases"
    next(b for b in at.button if b.label.startswith("Create a release")).click().run()
    assert not at.exception
    assert at.success[0].value == "Released banking77 v2."  # the demo holds v1, from the imported labels
    assert list(at.main.dataframe[0].value["version"]) == ["v1", "v2"]
    assert "datasets.load_dataset(" in at.code[0].value and at.expander[0].label == "Data card of banking77/v2"
    assert "imported from labeled data the team already had" in at.markdown[-1].value
