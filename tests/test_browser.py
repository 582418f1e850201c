"""A reviewer's day in a real browser: Debian's chromium driven by Playwright against `streamlit run app.py`.

Screenshots of each page go to test-artifacts/ (look at them), with the measured keypress-to-next-item times.
"""

import json
from datetime import datetime, timezone
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest
from playwright.sync_api import expect, sync_playwright

from feedback import ingest_files
from feedback.demo import prepare_demo
from feedback.roles import Actor, add_user, authenticate
from feedback.review import add_to_queue, near_duplicate_groups
from conftest import REPO, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"
HOSTILE = ('<script>window.__pwned = 1</script><img src="http://127.0.0.1:9/evil.png" onerror="window.__pwned = 2"> '
           '![tracker](http://127.0.0.1:9/evil.png) [click me](javascript:window.__pwned=3) **not bold**')
BREAD = [f"my bread sit order {n} never came" for n in range(6)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    ws = prepare_demo(tmp / "ws")
    events = [{"type": "prediction", "item_id": f"bread-{i}", "input": {"text": t},
               "prediction": {"label": "card_arrival", "score": 0.3}} for i, t in enumerate(BREAD)]
    events.append({"type": "prediction", "item_id": "hostile", "input": {"text": HOSTILE},
                   "prediction": {"label": "card_arrival", "score": 0.1}})
    events.append({"type": "error", "item_id": "hostile", "error": {"kind": "bad_request", "message": HOSTILE}})
    path = tmp / "extra.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    ingest_files(ws, [path])
    add_to_queue(ws, Actor("ann", "admin"), ["hostile"], reason="manual")
    add_user(ws, None, "ann", role="admin", password="pw-ann")
    add_user(ws, authenticate(ws, "ann", "pw-ann"), "rita", role="reviewer", password="pw-rita")
    return ws


@pytest.fixture(scope="module")
def server(workspace):
    port = free_port()
    env = {**os.environ, "FEEDBACK_WORKSPACE": str(workspace.root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                break
        except OSError:
            time.sleep(0.25)
    else:
        proc.kill()
        pytest.fail(proc.stdout.read().decode())
    yield url
    proc.terminate()
    proc.wait(timeout=15)


@pytest.fixture(scope="module")
def page(server):
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        tab = browser.new_page(viewport={"width": 1440, "height": 1000})
        tab.goto(server)
        yield tab
        browser.close()


def shot(page, name):
    page.wait_for_timeout(400)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def current_item(page) -> str:
    caption = page.get_by_text("Item ", exact=False).filter(has_text="priority").first.inner_text()
    return caption.split()[1]


def go(page, title):
    page.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", name=title).first).to_be_visible(timeout=20_000)


def test_a_reviewers_day(page, workspace):
    started_at = datetime.now(timezone.utc).replace(tzinfo=None)
    expect(page.get_by_text("Sign in").first).to_be_visible(timeout=30_000)
    shot(page, "0-sign-in")
    page.get_by_label("User").fill("rita")
    page.get_by_role("textbox", name="Password").fill("pw-rita")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Review")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("signed in as rita (reviewer)")).to_be_visible()
    assert page.get_by_role("link", name="Adjudication").count() == 0

    # The hostile item comes first: its text shows literally and nothing in it runs or loads.
    assert current_item(page) == "hostile"
    expect(page.get_by_text("<script>window.__pwned = 1</script>", exact=False)).to_be_visible()
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src*='evil']").count() == 0
    assert page.locator("a[href^='javascript']").count() == 0
    shot(page, "1-review")

    seen, timings = [], []
    for _ in range(10):
        before = current_item(page)
        seen.append(before)
        page.evaluate("document.activeElement && document.activeElement.blur()")
        started = time.perf_counter()
        page.keyboard.press("1")
        page.wait_for_function(
            "before => { const items = [...document.querySelectorAll('[data-testid=stCaptionContainer]')]"
            ".map(e => e.innerText).filter(t => t.startsWith('Item '));"
            " return items.length > 0 && !items.some(t => t.startsWith('Item ' + before + ' ')); }",
            arg=before, timeout=20_000)
        timings.append(time.perf_counter() - started)
    page.keyboard.press("z")
    expect(page.get_by_text(f"Undid your last decision on {seen[-1]}")).to_be_visible(timeout=20_000)
    shot(page, "2-review-after-undo")

    go(page, "Queue")
    shot(page, "3-queue")

    go(page, "Groups")
    bread = next(g for g in near_duplicate_groups(workspace, threshold=90, queued_only=False) if "bread-0" in g["item_ids"])
    page.locator("[data-testid=stSelectbox]").filter(has_text="Group").first.click()
    page.get_by_role("option", name=bread["group_id"], exact=False).click()
    page.locator("[data-testid=stSelectbox]").filter(has_text="Label for the whole group").click()
    page.keyboard.type("card_linking")
    page.get_by_role("option", name="card_linking", exact=True).click()
    page.get_by_role("button", name="Relabel 6 items").click()
    expect(page.get_by_text("Labeled 6 items as card_linking")).to_be_visible(timeout=20_000)
    shot(page, "4-groups")

    go(page, "Dashboard")
    page.wait_for_timeout(1500)
    shot(page, "5-dashboard")
    drift = page.get_by_text("Drift against the latest release")
    drift.scroll_into_view_if_needed(timeout=30_000)
    expect(page.get_by_text("Label mix: predictions of")).to_be_visible(timeout=20_000)
    shot(page, "6-dashboard-drift")

    rows = workspace.store().rows("SELECT item_id, kind, label, reviewer, batch_id FROM decisions "
                                  "WHERE decided_at > ? ORDER BY decided_at", [started_at])
    assert {r["reviewer"] for r in rows} == {"rita"}  # the demo's own decisions came before
    singles = [r for r in rows if r["batch_id"] is None]
    assert [r["item_id"] for r in singles if r["kind"] == "label"] == seen
    assert [r["kind"] for r in singles][-1] == "undo"
    batch = [r for r in rows if r["batch_id"]]
    assert sorted(r["item_id"] for r in batch) == bread["item_ids"] and {r["label"] for r in batch} == {"card_linking"}
    (ARTIFACTS / "keypress-to-next-item.json").write_text(json.dumps(
        {"seconds": timings, "median": sorted(timings)[len(timings) // 2]}, indent=2))
