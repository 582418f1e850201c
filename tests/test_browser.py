"""The reviewer's app in a real browser: Debian's chromium driven by Playwright against `streamlit run app.py`.

One server and one browser serve the whole module, and the tests run in order as one reviewer's day
(rita), then a lead's (ann). Screenshots of every page at 1400x1000 go to test-artifacts/ (look at
them). How fast a keypress brings the next item is measured in bench/app_keys.py, not here.
"""

import json
import shutil
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright

from feedback import ingest_files
from feedback.demo import app_server, prepare_demo
from feedback.review import add_to_queue, decide, near_duplicate_groups
from feedback.roles import add_user, authenticate
from conftest import REPO, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
VIEWPORT = {"width": 1400, "height": 1000}
HOSTILE = ('<script>window.__pwned = 1</script><img src="http://127.0.0.1:9/evil.png" onerror="window.__pwned = 2"> '
           '![tracker](http://127.0.0.1:9/evil.png) [click me](javascript:window.__pwned=3) **not bold**')
BREAD = [f"my bread sit order {n} never came" for n in range(6)]
TWINS = "is my card on its way to me"
WAIT = 20_000  # ms: a page's rerun on a busy 2-core machine


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    ws = prepare_demo(tmp / "ws")
    events = [{"type": "prediction", "item_id": f"bread-{i}", "input": {"text": t},
               "prediction": {"label": "card_arrival", "score": 0.3}} for i, t in enumerate(BREAD)]
    events.append({"type": "prediction", "item_id": "hostile", "input": {"text": HOSTILE},
                   "prediction": {"label": "card_arrival", "score": 0.1}})
    events.append({"type": "error", "item_id": "hostile", "error": {"kind": "bad_request", "message": HOSTILE}})
    events += [{"type": "prediction", "item_id": f"twin-{i}", "input": {"text": TWINS},
                "prediction": {"label": "card_arrival", "score": 0.97}} for i in range(2)]
    path = tmp / "extra.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    ingest_files(ws, [path])
    add_user(ws, None, "ann", role="admin", password="pw-ann")
    ann = authenticate(ws, "ann", "pw-ann")
    add_user(ws, ann, "rita", role="reviewer", password="pw-rita")
    add_user(ws, ann, "lou", role="reviewer", password="pw-lou")
    add_to_queue(ws, ann, ["hostile"], reason="manual")
    decide(ws, ann, "twin-0", "card_arrival")
    decide(ws, ann, "twin-1", "card_linking")  # one text, two labels: the next release's conflicts gate fails
    return ws


@pytest.fixture(scope="module")
def server(workspace):
    with app_server(workspace, port=free_port()) as url:
        yield url


@pytest.fixture(scope="module")
def requested():
    """Every URL any page of the module asked for."""
    return []


@pytest.fixture(scope="module")
def browser(server):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


def new_tab(browser, server, requested):
    context = browser.new_context(viewport=VIEWPORT)
    context.on("request", lambda request: requested.append(request.url))
    tab = context.new_page()
    tab.goto(server)
    expect(tab.get_by_role("button", name="Sign in")).to_be_visible(timeout=30_000)
    return tab


def sign_in(tab, user, password):
    tab.get_by_label("User").fill(user)
    tab.get_by_role("textbox", name="Password").fill(password)
    tab.get_by_role("button", name="Sign in").click()


@pytest.fixture(scope="module")
def rita(browser, server, requested):
    """A reviewer's tab, signed in by the first test."""
    tab = new_tab(browser, server, requested)
    yield tab
    tab.context.close()


@pytest.fixture(scope="module")
def ann(browser, server, requested):
    """An admin's tab, signed in."""
    tab = new_tab(browser, server, requested)
    sign_in(tab, "ann", "pw-ann")
    expect(tab.get_by_role("heading", name="Review")).to_be_visible(timeout=30_000)
    yield tab
    tab.context.close()


def shot(tab, name):
    """The page at 1400x1000 as `name`.png and, when it is longer, all of it as `name`-full.png."""
    tab.wait_for_timeout(300)
    tab.screenshot(path=ARTIFACTS / f"{name}.png")
    height = tab.evaluate("() => { const m = document.querySelector('[data-testid=stMain]');"
                          " return m ? m.scrollHeight : 0; }")
    if height > VIEWPORT["height"]:
        tab.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        tab.wait_for_timeout(500)
        tab.screenshot(path=ARTIFACTS / f"{name}-full.png")
        tab.set_viewport_size(VIEWPORT)


ITEM_JS = ("() => { const c = [...document.querySelectorAll('[data-testid=stCaptionContainer]')]"
           ".map(e => e.innerText).find(t => t.startsWith('Item ') && t.includes(' · priority '));"
           " return c ? c.split(' ')[1] : null; }")


DONE_JS = ("() => !document.querySelector('[data-stale=true]') && !document.querySelector('[data-testid=stStatusWidget]')"
           " && !!document.querySelector('.st-key-session-cookie')")


def current_item(tab) -> str:
    tab.wait_for_function(ITEM_JS, timeout=WAIT)
    return tab.evaluate(ITEM_JS)


def settle(tab):
    """Wait until the app's run is done: no element stale, Streamlit's status widget (shown after 500 ms of a
    run) gone, the script's last element drawn. (Keys pressed before a page load's first run is done are lost.)"""
    tab.wait_for_function(DONE_JS, timeout=WAIT)
    tab.wait_for_timeout(150)


def press_for_next(tab, key) -> tuple[str, str]:
    """Press `key` with the focus on the page; wait for another item than the one shown. (before, after)"""
    settle(tab)
    before = current_item(tab)
    tab.keyboard.press(key)
    tab.wait_for_function(f"before => {{ const now = ({ITEM_JS})(); return now !== null && now !== before; }}",
                          arg=before, timeout=WAIT)
    settle(tab)
    return before, current_item(tab)


def last_decision(ws, reviewer) -> dict:
    return ws.store().rows("SELECT item_id, kind, label, note FROM decisions WHERE reviewer = ? "
                           "ORDER BY decided_at DESC LIMIT 1", [reviewer])[0]


def any_label(tab):
    return tab.locator("[data-testid=stSelectbox]").filter(has_text="Any label")


def focused_tag(tab) -> str:
    return tab.evaluate("document.activeElement ? document.activeElement.tagName : ''")


def go(tab, title, heading=None):
    tab.get_by_role("link", name=title).click()
    expect(tab.get_by_role("heading", name=heading or title).first).to_be_visible(timeout=WAIT)
    settle(tab)


# The labelling loop, as rita.

def test_sign_in_then_the_first_item_shows_its_text_literally(rita):
    shot(rita, "0-sign-in")
    sign_in(rita, "rita", "pw-rita")
    expect(rita.get_by_role("heading", name="Review")).to_be_visible(timeout=30_000)
    expect(rita.get_by_text("signed in as rita (reviewer)")).to_be_visible()
    assert rita.get_by_role("link", name="Adjudication").count() == 0
    assert current_item(rita) == "hostile"  # its text shows literally and nothing in it runs or loads
    expect(rita.get_by_text("<script>window.__pwned = 1</script>", exact=False)).to_be_visible()
    assert rita.evaluate("window.__pwned") is None
    assert rita.locator("img[src*='evil']").count() == 0 and rita.locator("a[href^='javascript']").count() == 0
    settle(rita)
    shot(rita, "1-review")


def test_a_number_key_labels_the_item_and_shows_the_next(rita, workspace):
    for _ in range(3):
        quick = rita.locator(".st-key-quick-1 button").inner_text().split("\n")[0]
        before, after = press_for_next(rita, "1")
        assert last_decision(workspace, "rita") == {"item_id": before, "kind": "label", "label": quick, "note": None}
    expect(rita.get_by_text("Done today")).to_be_visible()
    expect(rita.locator(".st-key-session-counter [data-testid=stMetricValue]").first).to_have_text("3")


def test_undo_brings_the_same_item_back(rita, workspace):
    before, after = press_for_next(rita, "1")
    rita.keyboard.press("z")
    expect(rita.get_by_text(f"Undid your last decision on {before}")).to_be_visible(timeout=WAIT)
    settle(rita)
    assert current_item(rita) == before
    assert last_decision(workspace, "rita")["kind"] == "undo"
    shot(rita, "2-review-after-undo")


def choose(tab, box, label, *, exact=True):
    """Pick `label` in a selectbox by typing in its search, as a reviewer does (once the box has the focus: keys
    typed on the page are shortcuts)."""
    settle(tab)
    box.click()
    expect(box.get_by_role("combobox")).to_be_focused()
    tab.keyboard.type(label)
    tab.get_by_role("option", name=label, exact=exact).click()
    settle(tab)


def test_a_choice_in_the_search_box_gives_the_keys_back_and_is_gone_on_the_next_item(rita, workspace):
    choose(rita, any_label(rita), "card_swallowed")
    expect(rita.get_by_role("button", name="Label Shortcut L")).to_be_enabled(timeout=WAIT)
    assert focused_tag(rita) not in ("INPUT", "TEXTAREA")  # the focus left the box
    before, after = press_for_next(rita, "l")  # L works right after the choice
    assert last_decision(workspace, "rita") == {"item_id": before, "kind": "label", "label": "card_swallowed",
                                                "note": None}
    expect(any_label(rita).get_by_role("combobox")).to_have_value("")  # nothing carries over
    expect(any_label(rita)).not_to_contain_text("card_swallowed")
    expect(rita.get_by_role("button", name="Label Shortcut L")).to_be_disabled()
    rita.keyboard.press("l")  # does nothing now
    rita.wait_for_timeout(700)
    settle(rita)
    assert current_item(rita) == after and last_decision(workspace, "rita")["item_id"] == before


def test_a_digit_works_after_a_choice_and_escape_leaves_the_box(rita, workspace):
    choose(rita, any_label(rita), "card_swallowed")
    expect(rita.get_by_role("button", name="Label Shortcut L")).to_be_enabled(timeout=WAIT)
    quick = rita.locator(".st-key-quick-2 button").inner_text().split("\n")[0]
    before, _ = press_for_next(rita, "2")  # a digit, not L, right after the choice
    assert last_decision(workspace, "rita") == {"item_id": before, "kind": "label", "label": quick, "note": None}
    any_label(rita).click()
    rita.keyboard.type("card")
    assert focused_tag(rita) == "INPUT"
    rita.keyboard.press("Escape")
    assert focused_tag(rita) not in ("INPUT", "TEXTAREA")
    before, _ = press_for_next(rita, "s")  # S skips: the keys work again
    assert last_decision(workspace, "rita")["item_id"] == before and last_decision(workspace, "rita")["kind"] == "skip"


def test_question_mark_shows_every_key(rita):
    overlay = rita.locator("[data-testid=keys-overlay]")
    expect(overlay).to_be_hidden()
    rita.keyboard.press("?")
    expect(overlay).to_be_visible()
    for what in ("undo your last decision", "skip", "leave the search box or the note", "show these keys"):
        expect(overlay.get_by_text(what, exact=True)).to_be_visible()
    expect(overlay.locator("kbd", has_text="Z")).to_be_visible()
    shot(rita, "3-review-keys")
    rita.keyboard.press("Escape")
    expect(overlay).to_be_hidden()


def test_a_note_from_the_keyboard_is_saved_with_the_label(rita, workspace):
    settle(rita)
    rita.keyboard.press("m")
    note = rita.get_by_label("Note (Enter keeps it", exact=False)
    expect(note).to_be_focused(timeout=WAIT)
    rita.keyboard.type("the user wrote about a bread order, not a card")
    rita.keyboard.press("Enter")
    expect(rita.get_by_text("Note, saved with your next decision", exact=False)).to_be_visible(timeout=WAIT)
    assert focused_tag(rita) not in ("INPUT", "TEXTAREA")
    before, _ = press_for_next(rita, "1")
    assert last_decision(workspace, "rita")["item_id"] == before
    assert last_decision(workspace, "rita")["note"] == "the user wrote about a bread order, not a card"
    expect(rita.get_by_text("Note, saved with your next decision", exact=False)).to_have_count(0)


def test_a_reload_keeps_the_session(rita):
    shown = current_item(rita)
    rita.reload()
    expect(rita.get_by_role("heading", name="Review")).to_be_visible(timeout=30_000)
    expect(rita.get_by_text("signed in as rita (reviewer)")).to_be_visible()
    assert rita.get_by_role("button", name="Sign in").count() == 0
    assert current_item(rita) == shown  # still claimed by her


def test_the_history_fits_its_column_at_1400_px(rita):
    headers, hidden = table_fit(rita, within="[data-testid=stMain] .st-key-history")
    assert headers == ["at", "kind", "label", "by", "score", "note"] and hidden <= 0, (headers, hidden)


def test_sign_out_ends_the_session_even_after_a_reload(rita):
    rita.get_by_role("button", name="Sign out").click()
    expect(rita.get_by_text("You signed out.")).to_be_visible(timeout=WAIT)
    rita.reload()
    expect(rita.get_by_role("button", name="Sign in")).to_be_visible(timeout=30_000)
    assert rita.get_by_role("heading", name="Review").count() == 0


def test_six_wrong_passwords_lock_the_sign_in(browser, server, requested):
    tab = new_tab(browser, server, requested)
    for attempt in range(1, 7):
        sign_in(tab, "lou", f"wrong-{attempt}")
        message = "too many wrong passwords for 'lou'" if attempt == 6 else "unknown user or wrong password"
        expect(tab.get_by_text(message, exact=False)).to_be_visible(timeout=WAIT)
        settle(tab)
    sign_in(tab, "lou", "pw-lou")  # the right password is refused too, for a while
    expect(tab.get_by_text("sign-in is locked for", exact=False)).to_be_visible(timeout=WAIT)
    shot(tab, "0-sign-in-locked")
    assert tab.get_by_role("heading", name="Review").count() == 0
    tab.context.close()


# The lead's pages, as ann.

def table_fit(tab, n=0, within="[data-testid=stMain]") -> tuple[list[str], int]:
    """The column headers of the `n`th data frame `within` the main area (Glide's accessible table mirrors its
    canvas) and how many pixels of its columns are out of sight (its horizontal scroll)."""
    find = f"document.querySelectorAll('{within} [data-testid=stDataFrame]')[n]"
    tab.wait_for_function(f"""n => {{ const d = {find};
        return d && d.querySelector('.dvn-scroller') && d.querySelectorAll('th').length > 0; }}""", arg=n, timeout=WAIT)
    return tuple(tab.evaluate(f"""n => {{ const d = {find};
        const s = d.querySelector('.dvn-scroller');
        return [[...d.querySelectorAll('th')].map(th => th.innerText.trim()), s.scrollWidth - s.clientWidth]; }}""", n))


def test_the_queue_fits_1400_px(ann):
    go(ann, "Queue")
    expect(ann.locator("[data-testid=stMain] [data-testid=stDataFrame]")).to_be_visible(timeout=WAIT)
    headers, hidden = table_fit(ann)
    assert {"conf.", "label"} <= set(headers) and hidden <= 0, (headers, hidden)
    shot(ann, "4-queue")


def test_groups_relabel_a_group_and_show_its_batch(ann, workspace):
    go(ann, "Groups", "Near-duplicate groups")
    bread = next(g for g in near_duplicate_groups(workspace, threshold=90, queued_only=False)
                 if "bread-0" in g["item_ids"])
    choose(ann, ann.locator("[data-testid=stSelectbox]").filter(has_text="Group").first, bread["group_id"], exact=False)
    choose(ann, ann.locator("[data-testid=stSelectbox]").filter(has_text="Label for the whole group"), "card_linking")
    ann.get_by_role("button", name="Relabel 6 items").click()
    expect(ann.get_by_text("Labeled 6 items as card_linking")).to_be_visible(timeout=WAIT)
    expect(ann.get_by_role("heading", name="Recent batches")).to_be_visible()
    expect(ann.get_by_text("· 6 live decisions · ann")).to_be_visible()
    settle(ann)
    shot(ann, "5-groups")


def test_adjudication(ann):
    go(ann, "Adjudication")
    expect(ann.get_by_role("button", name="Settle").first).to_be_visible()
    shot(ann, "6-adjudication")


def test_a_failing_gate_says_which_and_why_and_a_lead_overrides_it(ann):
    go(ann, "Releases")
    ann.get_by_role("button", name="Create a release from the trusted labels").click()
    expect(ann.get_by_text("The quality gates stopped this release", exact=False)).to_be_visible(timeout=60_000)
    expect(ann.get_by_text("Gate conflicts failed")).to_be_visible()
    override = ann.get_by_role("button", name="Create the release with these gates overridden")
    expect(override).to_be_disabled()  # a reason is required
    settle(ann)
    shot(ann, "7-releases-gate-failed")
    ann.get_by_label("Why (required)").fill("twin-1 is being relabeled; ship the bread fixes today")
    ann.get_by_label("Why (required)").press("Control+Enter")
    expect(override).to_be_enabled(timeout=WAIT)
    override.click()
    expect(ann.get_by_text("Released banking77 v2.")).to_be_visible(timeout=60_000)
    expect(ann.get_by_text("Released by ann with conflicts overridden.")).to_be_visible()


def test_releases_show_the_diff_gates_verify_and_how_to_load(ann, workspace):
    folder = str(workspace.root / "releases" / "banking77" / "v2")
    expect(ann.get_by_text("What changed from banking77/v1 to banking77/v2")).to_be_visible(timeout=WAIT)
    for caption in ("Relabeled, from banking77/v1 to banking77/v2", "Label mix, most changed first",
                    "Examples per label, before and after", "Quality gates of banking77/v2"):
        expect(ann.get_by_text(caption, exact=False).first).to_be_visible()
    expect(ann.locator("[data-testid=stVegaLiteChart]").first).to_be_visible()
    expect(ann.locator("[data-testid=stCode]").filter(has_text=folder).first).to_be_visible()
    for tab in ("pandas", "DuckDB", "datasets"):
        ann.get_by_role("tab", name=tab).click()
        expect(ann.locator("[data-testid=stCode]:visible").filter(has_text=folder).last).to_be_visible()
    ann.get_by_role("tab", name="pandas").click()
    ann.get_by_role("button", name="Verify banking77/v2").click()
    expect(ann.get_by_text("banking77/v2 checks out", exact=False)).to_be_visible(timeout=60_000)
    settle(ann)
    shot(ann, "8-releases")


def test_the_sampler_shows_its_yield_per_run(ann):
    go(ann, "Sampler")
    expect(ann.get_by_text("Yield", exact=True).first).to_be_visible()
    headers, hidden = table_fit(ann)
    assert "yield" in headers and hidden <= 0, (headers, hidden)
    shot(ann, "9-sampler")


def test_the_dashboard_shows_counts_yield_and_suspects_at_1400_px(ann):
    go(ann, "Dashboard")
    for heading in ("Most frequent confusions", "Sampler yield per run", "Suspected label errors"):
        expect(ann.get_by_role("heading", name=heading)).to_be_visible(timeout=WAIT)
    for n in range(2):  # the confusions and the suspects by day
        headers, hidden = table_fit(ann, n)
        assert hidden <= 0, (headers, hidden)
    assert table_fit(ann, 0)[0][0] == "items"
    ann.wait_for_timeout(800)  # the charts draw after the run
    shot(ann, "10-dashboard")


def test_a_lead_previews_a_rename_on_the_taxonomy_page_and_applies_it(ann, workspace):
    go(ann, "Taxonomy")
    labeled = workspace.store().value("SELECT count(*) FROM reviews WHERE current_label = 'card_arrival'")
    choose(ann, ann.locator(".st-key-taxonomy-label-from"), "card_arrival")
    ann.get_by_label("New name").fill("card_delivery")
    ann.get_by_label("New name").press("Enter")
    settle(ann)
    ann.get_by_role("button", name="Preview").click()
    expect(ann.get_by_text("Preview, nothing applied yet: rename card_arrival -> card_delivery")).to_be_visible(
        timeout=WAIT)
    expect(ann.locator(".st-key-taxonomy-counts [data-testid=stMetricValue]").first).to_have_text(f"{labeled:,}")
    assert not workspace.store().value("SELECT count(*) FROM taxonomy_changes")  # nothing applied yet
    shot(ann, "11-taxonomy-preview")
    ann.get_by_role("button", name="Apply").click()
    expect(ann.get_by_text("Applied t-", exact=False)).to_be_visible(timeout=WAIT)
    expect(ann.get_by_text("rename card_arrival -> card_delivery · by ann", exact=False)).to_be_visible()
    expect(ann.get_by_role("button", name="Undo")).to_be_visible()
    assert workspace.store().value("SELECT count(*) FROM reviews WHERE current_label = 'card_delivery'") == labeled
    settle(ann)
    choose(ann, ann.locator(".st-key-taxonomy-label-from"), "card_delivery")  # the new name is offered
    shot(ann, "11-taxonomy-applied")


def test_nothing_the_app_shows_needs_the_internet(requested):
    assert requested, "no request recorded"
    away = sorted({u for u in requested if urlsplit(u).hostname not in ("127.0.0.1", None) and
                   not u.startswith(("data:", "blob:"))})
    assert away == []

