"""A reviewer's keypress in the browser: from pressing a number key to the next item on screen.

Setup (timed, reported, not a target): a workspace with the BANKING77 taxonomy and 100,000 × scale items,
written with SQL as `bench.review` writes them, and the first sync of `items`.

Then `streamlit run app.py` on it and Debian's chromium (Playwright, headless, 1400x1000) on its Review
page: after a few untimed presses, PRESSES presses of "1" (label with the first quick label), each timed
from the keypress to the caption of another item on screen, and to the end of the page's run (the
no element stale and the script's last element drawn: similar items, history and all).

baseline (the floor): the same browser code on a one-button Streamlit app (FLOOR_APP, written to a temp
file), served the same way in the same run: a press of its shortcut "1" shows the next number. That is
Streamlit's own cost of a keypress on this machine (the websocket, a rerun, drawing), which no app beats;
the ratio is how many floors a keypress of ours costs.

Beside it, what the app's script asks of the library for one keypress, called in this process on the same
workspace: `review.decide` of the shown item, then `screens.review_screen` for the next (claim, session
counter, similar items, history, probabilities).
"""

from __future__ import annotations

import json
import shutil
import socket
import statistics
import tempfile
import time
from pathlib import Path

from bench import result
from bench.review import generate
from feedback import init_workspace
from feedback.app import screens
from feedback.demo import APP, app_server
from feedback.review import decide, queue_page
from feedback.roles import local_actor

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
ITEMS = 100_000
PRESSES = 50
WARMUP = 3
TARGET_MS = 300
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ITEM_JS = ("() => { const c = [...document.querySelectorAll('[data-testid=stCaptionContainer]')]"
           ".map(e => e.innerText).find(t => t.startsWith('Item ') && t.includes(' · priority '));"
           " return c ? c.split(' ')[1] : null; }")
NEXT_JS = f"before => {{ const now = ({ITEM_JS})(); return now !== null && now !== before; }}"
# The page's run is done (every element drawn anew) when none is stale, Streamlit's status widget (shown
# after 500 ms of a run) is gone, and the script's last element is on the page.
# Streamlit's floor: one button whose shortcut shows the next number in a caption shaped like the Review page's,
# then an element with the key the Review page's script draws last.
FLOOR_APP = """\
import streamlit as st

st.session_state.setdefault("n", 1)


def step():
    st.session_state.n += 1


st.caption(f"Item {st.session_state.n} · priority 0.00")
st.button("Next", shortcut="1", on_click=step)
with st.container(key="session-cookie"):
    st.caption("end")
"""
DONE_JS = ("() => !document.querySelector('[data-stale=true]') && !document.querySelector('[data-testid=stStatusWidget]')"
           " && !!document.querySelector('.st-key-session-cookie')")


def run(scale: float) -> list[dict]:
    n = max(1_000, round(ITEMS * scale))
    labels = json.loads((SAMPLE / "taxonomy.json").read_text())
    with tempfile.TemporaryDirectory(prefix="feedback-bench-") as tmp:
        ws = init_workspace(Path(tmp) / "ws", dataset="bench", labels=labels)
        start = time.perf_counter()
        events = generate(ws.path("store"), n, labels)
        queue_page(ws, limit=1)
        setup = time.perf_counter() - start
        library = library_per_key(ws, PRESSES)
        floor_app = Path(tmp) / "floor_app.py"
        floor_app.write_text(FLOOR_APP)
        floor, _ = browser_per_key(ws, PRESSES, script=floor_app)
        shown, done = browser_per_key(ws, PRESSES)
    size = f"{n:,} items, {PRESSES} presses"
    return [
        result("app keys", f"setup: {events:,} events for {n:,} items and the first sync", setup, "s",
               target="informational", ok=True),
        result("app keys", f"floor: keypress -> next number shown, one-button Streamlit app, median ({PRESSES} "
               "presses)", median(floor), "ms", target="informational", ok=True),
        result("app keys", f"floor: keypress -> next number shown, one-button Streamlit app, p95 ({PRESSES} "
               "presses)", p95(floor), "ms", target="informational", ok=True),
        result("app keys", f"library calls behind one keypress, in process, median ({size})", median(library), "ms",
               target="informational", ok=True),
        result("app keys", f"library calls behind one keypress, in process, p95 ({size})", p95(library), "ms",
               target="informational", ok=True),
        result("app keys", f"keypress -> next item shown, median ({size})", median(shown), "ms",
               baseline=median(floor), target="informational", ok=True),
        result("app keys", f"keypress -> next item shown, p95 ({size})", p95(shown), "ms", baseline=p95(floor),
               target=f"p95 under {TARGET_MS} ms", ok=p95(shown) < TARGET_MS),
        result("app keys", f"keypress -> page's run done, median ({size})", median(done), "ms",
               baseline=median(floor), target="informational", ok=True),
        result("app keys", f"keypress -> page's run done, p95 ({size})", p95(done), "ms", baseline=p95(floor),
               target="informational", ok=True),
    ]


def library_per_key(ws, presses: int) -> list[float]:
    """Milliseconds of the library calls behind one keypress: decide the shown item, gather the next screen."""
    actor = local_actor()
    screen = screens.review_screen(ws, actor)
    times = []
    for _ in range(presses):
        item = screen["item"]
        start = time.perf_counter()
        decide(ws, actor, item["item_id"], screen["quick"][0], based_on=item["last_decision_id"], check_stale=True)
        screen = screens.review_screen(ws, actor)
        times.append(1000 * (time.perf_counter() - start))
    return times


def browser_per_key(ws, presses: int, *, script: Path = APP) -> tuple[list[float], list[float]]:
    """Milliseconds from a keypress to the next item's caption, and to the end of the page's run, in the app (or
    another Streamlit `script`) on `ws`."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright  # a test dependency: only this benchmark needs it

    shown, done = [], []
    with app_server(ws, port=_free_port(), script=script) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.wait_for_function(DONE_JS, timeout=120_000)
            page.wait_for_timeout(1_500)  # Streamlit ignores keys until a load's first run has finished (README)
            for _ in range(WARMUP):  # untimed; a key lost after the load (README) is pressed again
                _settle(page)
                before = page.evaluate(ITEM_JS)
                for attempt in range(3):
                    page.keyboard.press("1")
                    try:
                        page.wait_for_function(NEXT_JS, arg=before, polling="raf", timeout=10_000)
                        break
                    except PlaywrightTimeout:
                        if attempt == 2:
                            raise
            for _ in range(presses):
                _settle(page)
                before = page.evaluate(ITEM_JS)
                start = time.perf_counter()
                page.keyboard.press("1")
                page.wait_for_function(NEXT_JS, arg=before, polling="raf", timeout=30_000)
                at_item = time.perf_counter()
                page.wait_for_function(DONE_JS, polling="raf", timeout=30_000)
                shown.append(1000 * (at_item - start))
                done.append(1000 * (time.perf_counter() - start))
        finally:
            browser.close()
    return shown, done


def _settle(page) -> None:
    page.wait_for_function(DONE_JS, timeout=30_000)
    page.wait_for_timeout(200)  # a reviewer reads before the next key; the next run starts from rest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]
