"""The demo: a small, honest picture of a team a week in, built from sample_data/ by the public API.

The story, in the order a team lives it (each step is a library call a user could make; `STEPS`):
1. a workspace with the BANKING77 taxonomy;
2. the production model's original training labels come in with `import_labels`;
3. a lead publishes release v1 from them;
4. a month of production traffic is ingested (predictions, corrections, errors);
5. the sampler queues the items a model would learn most from; the label-error finder queues
   labels that look wrong;
6. reviewers decide a few items and answer a gold one; two disagree on one, which waits for a lead.
Running it again reuses the workspace and adds nothing twice (files already taken are skipped;
the story's decisions are made once); `fresh=True` builds it anew.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .capture.ingest import ingest_files
from .capture.summary import status
from .errors import FeedbackError
from .learn.sampler import sample
from .learn.suspects import find_suspects
from .processes import check_can_listen
from .release.releases import create_release, list_releases
from .review.decisions import decide, decide_many, set_gold
from .review.imports import import_labels
from .review.queue import QueueFilter, queue_page
from .roles import Actor
from .config_file import init_workspace
from .workspace import CONFIG_NAME, Workspace

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO / "sample_data"
APP = REPO / "app.py"
LEAD, ALICE, BOB = Actor("lena", "lead"), Actor("alice", "reviewer"), Actor("bob", "reviewer")
_TOLD = ".demo-story"  # written when the story's one-time steps are done
NEXT = """Try next:
  feedback queue --counts                 what waits for review, by reason and label
  feedback next -r alice                  claim the top item; then: feedback label ITEM LABEL -r alice
  feedback queue --status disputed        the item two reviewers disagree on (a lead adjudicates)
  feedback sample --report                the sampler's run and its yield
  feedback release create -r lena         release v2 once a few more labels are in
  feedback release diff v1 v2             what changed between the two"""


def prepare_demo(directory: str | Path, *, sample_data: Path = SAMPLE_DATA, fresh: bool = False) -> Workspace:
    """Build the demo workspace (or reuse it): the whole story of the module docstring."""
    for name in ("events.jsonl", "training_labels.csv", "taxonomy.json"):
        if not (sample_data / name).is_file():
            raise FeedbackError(f"{sample_data / name} is missing; regenerate it with `python sample_data/make_sample.py`")
    root = Path(directory)
    if fresh and root.exists():
        _remove(root)
    if (root / CONFIG_NAME).exists():
        ws = Workspace(root)
    else:
        labels = json.loads((sample_data / "taxonomy.json").read_text(encoding="utf-8"))
        ws = init_workspace(root, dataset="banking77", labels=labels)
    import_labels(ws, [sample_data / "training_labels.csv"], by=LEAD)
    if not list_releases(ws):
        create_release(ws, by=LEAD)
    ingest_files(ws, [sample_data / "events.jsonl"])
    if not (root / _TOLD).exists():
        _week_of_review(ws)
        (root / _TOLD).write_text("the demo's one-time steps are done\n", encoding="utf-8")
    return ws


def summary(ws: Workspace, seconds: float | None = None) -> dict:
    """What the demo holds now, and what to try next."""
    return {"status": status(ws), "releases": [f"{r['dataset']}/{r['version']}" for r in list_releases(ws)],
            "seconds": seconds, "next": NEXT}


def build(directory: str | Path, *, fresh: bool = False) -> tuple[Workspace, dict]:
    """`prepare_demo`, timed, and its summary."""
    started = time.perf_counter()
    ws = prepare_demo(directory, fresh=fresh)
    return ws, summary(ws, time.perf_counter() - started)


def _week_of_review(ws: Workspace) -> None:
    """The sampler and the label-error finder run once; reviewers decide a few items, answer a gold one, and
    two disagree on one."""
    sample(ws, budget=40, key="demo-week-1")
    find_suspects(ws, limit=20)
    corrected = queue_page(ws, QueueFilter(reason="correction"), limit=10)
    decide_many(ws, ALICE, [(n, {"item_id": r["item_id"], "label": r["corr_label"]})
                            for n, r in enumerate(corrected[:8], start=1)])
    gold, disputed = corrected[8], corrected[9]
    set_gold(ws, LEAD, gold["item_id"], gold["corr_label"])
    decide(ws, ALICE, gold["item_id"], gold["corr_label"])
    decide(ws, ALICE, disputed["item_id"], disputed["corr_label"])
    decide(ws, BOB, disputed["item_id"], disputed["pred_label"])  # bob sides with the model: a dispute for a lead


def _remove(root: Path) -> None:
    if not (root / CONFIG_NAME).exists():
        raise FeedbackError(f"{root} is not a workspace; not removing it (give the demo's folder to --fresh)")
    for path in root.rglob("*"):  # releases are read-only
        if path.is_dir():
            path.chmod(0o755)
    shutil.rmtree(root)


def app_command(ws: Workspace, *, port: int, address: str | None = None, script: Path = APP) -> tuple[list[str], dict]:
    """The command line and environment that serve the Streamlit app (or another `script`) on the workspace (on
    `address`, default all)."""
    if not script.is_file():
        raise FeedbackError(f"{script} is missing: the app ships with the repository checkout")
    env = {**os.environ, "FEEDBACK_WORKSPACE": str(ws.root)}
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]
    if address:
        command += ["--server.address", address]
    return command, env


@contextmanager
def app_server(ws: Workspace, *, port: int, timeout: float = 60.0, script: Path = APP) -> Iterator[str]:
    """The app (or another Streamlit `script`) served on 127.0.0.1:`port` for a browser to drive (the browser
    tests, the app's benchmark): its URL once it answers its health check; stopped on exit."""
    command, env = app_command(ws, port=port, address="127.0.0.1", script=script)
    log = tempfile.TemporaryFile()  # not a pipe: a full pipe would stall the server
    app = subprocess.Popen([*command, "--server.fileWatcherType", "none"], cwd=REPO, env=env,
                           stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                if app.poll() is not None or time.monotonic() > deadline:
                    app.kill()
                    app.wait()
                    log.seek(0)
                    raise FeedbackError(f"the app did not start on {url}: {log.read().decode()[-2000:]}")
                time.sleep(0.25)
        yield url
    finally:
        if app.poll() is None:
            app.terminate()
            try:
                app.wait(timeout=15)
            except subprocess.TimeoutExpired:
                app.kill()
                app.wait()
        log.close()


def run_app(ws: Workspace, *, port: int) -> None:
    """Run the Streamlit app on the workspace until it stops or this process is interrupted or terminated."""
    check_can_listen("0.0.0.0", port)
    command, env = app_command(ws, port=port)
    app = subprocess.Popen(command, env=env)
    previous = signal.signal(signal.SIGTERM, lambda *_: app.terminate())  # stopping the demo stops the app
    try:
        code = app.wait()
    except KeyboardInterrupt:
        app.terminate()
        code = app.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
        if app.poll() is None:
            app.kill()
    if code not in (0, -signal.SIGTERM, -signal.SIGINT):
        raise FeedbackError(f"the app stopped with exit code {code}; see its output above")
