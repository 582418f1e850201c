"""The demo: a workspace seeded from the repository's sample_data/, and the app on top of it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from .capture.ingest import ingest_files
from .errors import FeedbackError
from .processes import check_can_listen
from .workspace import CONFIG_NAME, Workspace, init_workspace

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DATA = REPO / "sample_data"
APP = REPO / "app.py"


def prepare_demo(directory: str | Path, *, sample_data: Path = SAMPLE_DATA) -> Workspace:
    """Create the demo workspace (or reuse it) and ingest the sample log; re-running adds nothing twice."""
    events = sample_data / "events.jsonl"
    if not events.is_file():
        raise FeedbackError(f"{events} is missing; regenerate it with `python sample_data/make_sample.py`")
    root = Path(directory)
    if (root / CONFIG_NAME).exists():
        ws = Workspace(root)
    else:
        labels = json.loads((sample_data / "taxonomy.json").read_text(encoding="utf-8"))
        ws = init_workspace(root, dataset="banking77", labels=labels)
    ingest_files(ws, [events])
    return ws


def run_app(ws: Workspace, *, port: int) -> None:
    """Run the Streamlit app on the workspace until it stops or this process is interrupted or terminated."""
    if not APP.is_file():
        raise FeedbackError(f"{APP} is missing: the app ships with the repository checkout")
    check_can_listen("0.0.0.0", port)
    env = {**os.environ, "FEEDBACK_WORKSPACE": str(ws.root)}
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]
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
