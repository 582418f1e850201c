"""Each page's logic paths with Streamlit's AppTest, against a real workspace seeded from sample_data/.

The browser's side (keys, focus, cookies, what loads) is in test_browser.py.
"""

import json
import subprocess
import sys
import textwrap
from datetime import timedelta

import pandas as pd
import pytest
from conftest import REPO, prediction, set_config
from streamlit.testing.v1 import AppTest

from feedback import ingest_files, init_workspace, load_release
from feedback.demo import prepare_demo
from feedback.release import diff_releases
from feedback.review import (
    QueueFilter,
    decide,
    item,
    near_duplicate_groups,
    queue_counts,
    queue_page,
    relabel_group,
    release_claim,
)
from feedback.roles import Actor, add_user, authenticate

pytestmark = pytest.mark.backends

BREAD = [f"my bread sit order {n} never came" for n in range(6)]
LONG = " ".join(["I moved abroad last month and my new card still has not arrived; what should I do?"] * 10)
TWINS = "is my card on its way to me"


def ingest(ws, tmp_path, events, name="extra.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    ingest_files(ws, [path])
    return ws


def seed(root, tmp_path):
    ws = prepare_demo(root)
    events = [{"type": "prediction", "item_id": f"bread-{i}", "input": {"text": t},
               "prediction": {"label": "card_arrival", "score": 0.3}} for i, t in enumerate(BREAD)]
    events.append({"type": "prediction", "item_id": "long", "input": {"text": LONG},
                   "prediction": {"label": "card_arrival", "score": 0.3}})
    return ingest(ws, tmp_path, events)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    return seed(tmp / "ws", tmp)


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """A small workspace with users: an admin and a reviewer, three items."""
    tmp = tmp_path_factory.mktemp("team")
    ws = init_workspace(tmp / "ws", dataset="test", labels=["card_arrival", "card_linking"])
    texts = ["where is my new card", "where is my new card?", "how do I link my card"]
    ingest(ws, tmp, [{**prediction(f"r{i}", text=t), "prediction": {"label": "card_arrival", "score": 0.1}}
                     for i, t in enumerate(texts)])
    add_user(ws, None, "ann", role="admin", password="pw-ann")
    add_user(ws, authenticate(ws, "ann", "pw-ann"), "rita", role="reviewer", password="pw-rita")
    return ws


def open_app(ws, monkeypatch, page="review", user="tess", **state):
    monkeypatch.setenv("FEEDBACK_WORKSPACE", str(ws.root))
    monkeypatch.setenv("FEEDBACK_USER", user)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.session_state["start_page"] = page
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


@pytest.fixture
def app(demo, monkeypatch):
    return lambda page="review", user="tess", **state: open_app(demo, monkeypatch, page, user, **state)


def decisions(ws, reviewer):
    return ws.store().rows("SELECT item_id, kind, label, note FROM decisions WHERE reviewer = ? ORDER BY decided_at",
                           [reviewer])


def button(at, label):
    return next(b for b in at.button if b.label == label)


def table(at, *columns) -> pd.DataFrame:
    """The first data frame on the page with these columns (AppTest names only selectable ones by key)."""
    return next(d.value for d in at.dataframe if set(columns) <= set(d.value.columns))


def component_data(at, key) -> dict:
    return json.loads(next(e for e in at.main if getattr(e, "key", None) == key).proto.json)


def _free(ws):
    """Give back the claims earlier tests left on the shared demo (a decision on a held item is refused)."""
    for row in ws.store().rows("SELECT item_id, claimed_by FROM reviews WHERE claim_expires > now()::TIMESTAMP"):
        release_claim(ws, Actor(row["claimed_by"], "reviewer"), row["item_id"])
    return ws


def _claimed(ws, reviewer):
    return ws.store().value("SELECT item_id FROM reviews WHERE claimed_by = ? AND claim_expires > now()::TIMESTAMP",
                            [reviewer])


def test_every_page_renders_and_a_key_decides_on_either_store(ws, tmp_path, monkeypatch):
    """The app on a few items of a new workspace: on the embedded file and on PostgreSQL."""
    texts = {"r0": ("where is my new card", 0.1), "r1": ("where is my new card?", 0.5), "r2": ("link my card", 0.9)}
    ingest(ws, tmp_path, [{**prediction(i, text=t), "prediction": {"label": "card_arrival", "score": s}}
                          for i, (t, s) in texts.items()])  # r0 is queued: its score is the lowest tenth
    for page in ("review", "queue", "groups", "adjudication", "releases", "sampler", "dashboard"):
        at = open_app(ws, monkeypatch, page)
        assert not at.exception and not at.error, (page, [e.value for e in at.error])
    at = open_app(ws, monkeypatch)
    at.button(key="quick-1").click().run()
    assert [(d["item_id"], d["kind"]) for d in decisions(ws, "tess")] == [("r0", "label")] and not at.exception


def test_review_shows_the_claimed_item_and_a_button_decides_it(app, demo):
    at = app()
    assert not at.exception and at.title[0].value == "Review"
    claimed = item(demo, _claimed(demo, "tess"))
    assert claimed["claimed_by"] == "tess"
    assert at.text[0].value == claimed["text"]
    at.button(key="quick-1").click().run()
    made = decisions(demo, "tess")[-1]
    assert made["item_id"] == claimed["item_id"] and made["kind"] == "label"
    assert _claimed(demo, "tess") != claimed["item_id"]


def test_skip_undo_and_next(app, demo):
    at = app()
    first = _claimed(demo, "tess")
    button(at, "Skip").click().run()
    assert decisions(demo, "tess")[-1] == {"item_id": first, "kind": "skip", "label": None, "note": None}
    button(at, "Undo").click().run()
    assert decisions(demo, "tess")[-1]["kind"] == "undo"
    current = _claimed(demo, "tess")
    button(at, "Next").click().run()
    assert _claimed(demo, "tess") not in (None, current)
    assert current in at.session_state["passed"]


def test_undo_brings_the_undone_item_back_to_the_screen(app, demo):
    at = app(user="uma")
    first = _claimed(demo, "uma")
    at.button(key="quick-1").click().run()
    assert _claimed(demo, "uma") != first
    button(at, "Undo").click().run()
    assert _claimed(demo, "uma") == first
    assert at.text[0].value == item(demo, first)["text"]
    assert at.info[0].value == f"Undid your last decision on {first}; it is back for you to decide again."
    assert at.caption[0].value.startswith(f"Item {first} ")


def test_the_any_label_box_starts_empty_on_each_item(app, demo):
    at = app(user="vic")
    first = _claimed(demo, "vic")
    assert button(at, "Label").disabled
    at.selectbox(key="any-label-1").select("card_linking").run()
    assert not button(at, "Label").disabled
    button(at, "Label").click().run()
    assert decisions(demo, "vic")[-1] == {"item_id": first, "kind": "label", "label": "card_linking", "note": None}
    assert at.selectbox(key="any-label-2").value is None and button(at, "Label").disabled
    assert component_data(at, "keys")["choice"] is None  # the page gives the keys back on the next item


def test_a_note_from_the_keyboard_is_saved_with_the_decision(app, demo):
    at = app(user="wes")
    first = _claimed(demo, "wes")
    assert not at.text_input
    button(at, "Note").click().run()
    assert component_data(at, "keys")["focus"] == ".st-key-note-1"
    at.text_input(key="note-1").input("the user means the old card").run()  # Enter
    assert not at.text_input and at.text[-1].value == "the user means the old card"
    assert component_data(at, "keys")["focus"] is None
    at.button(key="quick-1").click().run()
    assert decisions(demo, "wes")[-1]["item_id"] == first
    assert decisions(demo, "wes")[-1]["note"] == "the user means the old card"
    at.button(key="quick-1").click().run()
    assert decisions(demo, "wes")[-1]["note"] is None  # a note goes with one decision


def test_the_session_counter_and_the_keys(app, demo):
    at = app(user="xia")
    left = int(at.metric[1].value.replace(",", ""))
    assert [m.label for m in at.metric] == ["Done today", "Left in my queue", "My rate"]
    assert (at.metric[0].value, at.metric[2].value) == ("0", "-")
    at.button(key="quick-1").click().run()
    at.button(key="quick-1").click().run()
    assert at.metric[0].value == "2" and int(at.metric[1].value.replace(",", "")) == left - 2
    assert at.metric[2].value.endswith("/h")
    keys = component_data(at, "keys")
    assert ["1", f"label {at.button(key='quick-1').label.replace(chr(92), '')}"] in keys["keys"]
    assert {k for k, _ in keys["keys"]} >= {"L", "S", "J", "U", "M", "Z", "N", "Esc", "?"}
    assert keys["managed"] == ['[class*="st-key-any-label-"]', '[class*="st-key-note-"]']


def test_history_shows_claims_only_on_demand(app, demo):
    at = app(user="yan")
    kinds = set(at.dataframe[-1].value["kind"])
    assert "claim" not in kinds and "prediction" in kinds
    assert at.toggle(key="show-claims").label == "Show claims (1 hidden)"
    at.toggle(key="show-claims").set_value(True).run()
    assert "claim" in set(at.dataframe[-1].value["kind"])


def test_similar_items_mark_the_words_that_differ(app, demo):
    at = app(user="zoe", first="bread-0")
    assert at.caption[0].value.startswith("Item bread-0 ")
    rows = component_data(at, "similar")["rows"]
    bread = [r for r in rows if r["item"].startswith("bread-")]
    assert len(bread) >= 4
    for row in bread:
        marked = [run["text"].strip() for run in row["text"] if run["differs"]]
        assert marked == [row["item"].split("-")[1]]  # only the order number differs
        assert "".join(run["text"] for run in row["text"]) == BREAD[int(row["item"].split("-")[1])]


def test_a_long_text_shows_more_on_demand(app, demo):
    at = app(user="lou", first="long")
    shown = at.text[0].value
    assert len(shown) < len(LONG) and shown.endswith(" …") and LONG.startswith(shown[:-2])
    more = next(t for t in at.toggle if t.label.startswith("Show more"))
    assert more.label == f"Show more ({len(LONG):,} characters)"
    more.set_value(True).run()
    assert at.text[0].value == LONG


def test_a_stale_decision_shows_an_error_not_a_traceback(app, demo):
    gold = {r["item_id"] for r in demo.store().rows("SELECT item_id FROM gold")}  # they take independent answers
    at = app(first=next(r["item_id"] for r in queue_page(demo, QueueFilter(status="new")) if r["item_id"] not in gold))
    held = _claimed(demo, "tess")
    decide(demo, Actor("other", "admin"), held, "card_arrival", override_claim="tess is away")
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


def test_queue_filters_by_current_label_and_days(app, demo):
    at = app("queue")
    labeled = queue_counts(demo)["current_label"]
    label = next(iter(labeled))
    next(s for s in at.sidebar.selectbox if s.label == "Current label").select(label).run()
    table = at.main.dataframe[0].value
    assert len(table) == min(labeled[label], 50) and set(table["current_label"]) == {label}
    newest = max(r["last_ts"] for r in queue_page(demo, sort="time", limit=1))
    at = app("queue")
    at.date_input(key="since").set_value(newest.date()).run()
    at.date_input(key="until").set_value(newest.date()).run()
    expected = queue_counts(demo, QueueFilter(since=pd.Timestamp(newest.date()).to_pydatetime(),
                                              until=pd.Timestamp(newest.date() + timedelta(days=1)).to_pydatetime()))
    assert at.sidebar.metric[0].value == f"{expected['total']['items']:,}" and expected["total"]["items"] > 0
    at.date_input(key="until").set_value(newest.date() - timedelta(days=1)).run()
    assert at.sidebar.metric[0].value == "0" and not at.exception


def test_queue_rows_label_at_once_and_a_cell_opens_the_item(app, demo):
    _free(demo)
    at = app("queue", user="pia")
    at.sidebar.selectbox[0].select("correction").run()
    rows = queue_page(demo, QueueFilter(reason="correction"), limit=50)
    key = next(d.key for d in at.main.dataframe if d.key and d.key.startswith("queue-"))
    at.session_state[key] = {"selection": {"rows": [2, 3], "columns": [], "cells": []}}
    at.run()
    at.selectbox(key="bulk-label").select("card_linking").run()
    button(at, "Label 2 items").click().run()
    assert at.success[0].value == "Labeled 2 items as card_linking."
    assert {item(demo, r["item_id"])["current_label"] for r in rows[2:4]} == {"card_linking"}
    assert {d["item_id"] for d in decisions(demo, "pia")} == {r["item_id"] for r in rows[2:4]}
    rows = queue_page(demo, QueueFilter(reason="correction"), limit=50)  # decided: down the list, reasons resolved
    at.session_state[key] = {"selection": {"rows": [], "columns": [], "cells": [[5, "text"]]}}
    at.run()
    assert at.title[0].value == "Review" and at.caption[0].value.startswith(f"Item {rows[5]['item_id']} ")
    assert _claimed(demo, "pia") == rows[5]["item_id"]


def test_groups_relabel_and_undo_a_batch(app, demo):
    _free(demo)
    at = app("groups")
    assert not at.exception
    bread = next(g for g in near_duplicate_groups(demo, threshold=90, queued_only=False) if "bread-0" in g["item_ids"])
    assert bread["item_ids"] == [f"bread-{i}" for i in range(6)]
    at.selectbox[0].set_value(bread["group_id"]).run()
    at.selectbox(key="group-label").select("card_arrival").run()
    at.button(key="relabel-group").click().run()
    assert "Labeled 6 items as card_arrival" in at.success[0].value
    assert "Recent batches" in [s.value for s in at.subheader]
    assert all(item(demo, f"bread-{i}")["current_label"] == "card_arrival" for i in range(6))
    next(b for b in at.button if b.label == "Undo batch" and not b.disabled).click().run()
    assert all(item(demo, f"bread-{i}")["current_label"] is None for i in range(6))


def test_groups_show_no_batches_heading_without_batches(team, monkeypatch):
    at = open_app(team, monkeypatch, "groups")
    at.text_input[0].input("ann")
    at.text_input[1].input("pw-ann")
    at.button[0].click().run()
    assert at.title[0].value == "Near-duplicate groups" and len(table(at, "group", "size")) == 1
    assert "Recent batches" not in [s.value for s in at.subheader]


def test_adjudication_settles_a_disputed_item(app, demo):
    _free(demo)
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
    assert {"Sampler yield per run", "Suspected label errors", "Most frequent confusions"} <= {s.value for s in at.subheader}
    confusions = next(d for d in at.dataframe if "basis" in d.value.columns)
    assert list(confusions.proto.column_order) == ["items", "predicted", "actual", "basis"]  # counts first
    suspects = table(at, "found", "confirmed")
    assert list(suspects.columns) == ["day", "found", "reviewed", "confirmed"] and suspects["found"].sum() > 0
    assert at.header[0].value == "Drift against the latest release"
    checks = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert set(checks["name"]) >= {"label mix", "confidence", "novel vocabulary"}  # the demo has v1 and production


def test_sign_in_is_required_when_the_workspace_has_users(team, monkeypatch):
    monkeypatch.setenv("FEEDBACK_WORKSPACE", str(team.root))
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
    cookie = component_data(at, "session-cookie")
    assert cookie["name"].startswith("feedback_session_") and cookie["max_age"] == 12 * 3600
    assert cookie["token"] == at.session_state["session_token"]
    button(at.sidebar, "Sign out").click().run()
    assert at.subheader[0].value == "Sign in" and at.info[0].value == "You signed out."
    assert component_data(at, "session-cookie") == {"name": cookie["name"], "token": None}


def test_a_session_token_signs_in_without_a_password(team, monkeypatch):
    from feedback.roles import end_session, start_session

    token = start_session(team, authenticate(team, "ann", "pw-ann"))["token"]
    monkeypatch.setenv("FEEDBACK_WORKSPACE", str(team.root))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.session_state["session_token"] = token  # what the cookie carries on a reload (AppTest sends no cookies)
    at.run()
    assert at.title[0].value == "Review" and at.session_state["current_actor"].name == "ann"
    end_session(team, token)  # signed out elsewhere: the next run asks again
    at.run()
    assert at.subheader[0].value == "Sign in"
    assert at.info[0].value == "This session was signed out; sign in again."


def test_six_wrong_passwords_lock_the_sign_in(team, monkeypatch):
    add_user(team, authenticate(team, "ann", "pw-ann"), "lou", role="reviewer", password="pw-lou")
    monkeypatch.setenv("FEEDBACK_WORKSPACE", str(team.root))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    at.text_input[0].input("lou")
    for attempt in range(6):
        at.text_input[1].input(f"guess-{attempt}")
        at.button[0].click().run()
    assert at.error[0].value.startswith("too many wrong passwords for 'lou': sign-in is locked for ")
    at.text_input[1].input("pw-lou")
    at.button[0].click().run()
    assert at.error[0].value.startswith("too many wrong passwords for 'lou'") and not at.title


def test_a_busy_store_shows_a_short_wait_not_a_stack_trace(tmp_path, monkeypatch):
    ws = init_workspace(tmp_path / "ws", dataset="test")
    ws = set_config(ingest(ws, tmp_path, [prediction("r1")]), "busy_timeout", 0.5)
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


def test_sampler_page_runs_the_sampler_and_shows_its_yield(app, demo):
    at = app("sampler")
    assert not at.exception and at.title[0].value == "Sampler"
    next(b for b in at.button if b.label.startswith("Queue the most informative")).click().run()
    assert at.info[0].value.startswith("queued 100 of ")
    assert at.metric[0].label == "Picked" and int(at.metric[0].value.replace(",", "")) > 0


@pytest.fixture(scope="module")
def releasing(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("releasing")
    ws = seed(tmp / "ws", tmp)
    relabel_group(ws, Actor("tess", "admin"), [f"bread-{i}" for i in range(6)], "card_arrival")
    return ws


def test_releases_page_creates_a_release_and_shows_how_it_changed(releasing, monkeypatch):
    ws = releasing
    at = open_app(ws, monkeypatch, "releases")
    assert not at.exception and at.title[0].value == "Releases"
    next(b for b in at.button if b.label.startswith("Create a release")).click().run()
    assert not at.exception
    assert at.success[0].value == "Released banking77 v2."  # the demo holds v1, from the imported labels
    assert list(table(at, "release", "gates")["release"]) == ["banking77/v1", "banking77/v2"]
    folder = str(ws.root / "releases" / "banking77" / "v2")
    assert at.code[0].value == folder
    assert all(folder in c.value for c in at.code[1:]) and len(at.code) == 4
    truth = load_release(folder, split="train")
    for code in (c.value for c in at.code[1:3]):  # the pandas and DuckDB snippets load the very rows
        scope = {}
        exec(code, scope)  # noqa: S102 - our own generated snippet, run as a user would
        assert len(scope["train"]) == len(truth) and set(scope["train"]["id"]) == set(truth["id"])
    assert f"datasets.load_dataset({folder!r})" in at.code[3].value
    gates = table(at, "gate", "detail")
    assert {"schema", "taxonomy", "conflicts", "leakage"} <= set(gates["gate"])
    assert all(s.split()[-1] in ("pass", "warn", "skip", "fail", "overridden") for s in gates["status"])
    assert at.expander[0].label == "Data card of banking77/v2"
    assert any("imported from labeled data the team already had" in m.value for m in at.markdown)
    change = diff_releases(ws, "v1", "v2")
    metrics = {m.label: m.value for m in at.metric}
    assert [metrics[k] for k in ("Added", "Removed", "Relabeled", "Split moves")] == [
        f"{change[k]:,}" for k in ("added", "removed", "relabeled", "split_moves")]
    assert change["added"] >= 6  # the bread group at least, labeled since v1
    labels = table(at, "label", "before", "after", "change")
    assert labels.iloc[0]["label"] == "card_arrival" and labels.iloc[0]["change"] == max(
        abs(c["change"]) for c in change["labels"])
    at.button(key="verify").click().run()
    assert at.success[0].value == ("banking77/v2 checks out: every file matches its SHA256SUMS and the store's "
                                   "record.")


def test_a_failing_gate_says_which_and_why_and_a_lead_overrides_it_with_a_reason(releasing, monkeypatch, tmp_path):
    ws = ingest(releasing, tmp_path, [{"type": "prediction", "item_id": f"twin-{i}", "input": {"text": TWINS},
                                       "prediction": {"label": "card_arrival", "score": 0.3}} for i in range(2)],
                name="twins.jsonl")
    decide(ws, Actor("tess", "admin"), "twin-0", "card_arrival")
    decide(ws, Actor("tess", "admin"), "twin-1", "card_linking")  # one text, two labels: the conflicts gate fails
    at = open_app(ws, monkeypatch, "releases")
    next(b for b in at.button if b.label.startswith("Create a release")).click().run()
    assert at.error[0].value.startswith("The quality gates stopped this release; nothing was written.")
    assert at.error[1].value == "Gate **conflicts** failed"
    assert "twin-0" in table(at, "gate", "detail").iloc[0]["examples"]
    override = at.button(key="override-create")
    assert override.disabled  # a reason is required
    assert at.multiselect(key="override-gates").value == ["conflicts"]
    at.text_area(key="override-reason").input("twin-1 is being relabeled; ship the card fixes today").run()
    at.button(key="override-create").click().run()
    assert at.success[0].value == "Released banking77 v3."
    assert table(at, "release", "gates").iloc[-1]["overridden"] == "conflicts"
    assert at.warning[0].value == "Released by tess with conflicts overridden."
    assert "↷ overridden" in set(table(at, "gate", "detail")["status"])
