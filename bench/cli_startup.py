"""One-shot commands, whole process: `feedback label ITEM LABEL` and `feedback queue --json` on a store of
100,000 items, and `feedback release create` of 2,000 labeled items, against `python -c pass` and
`python -c "import duckdb"` in the same run.

Setup (not timed): the items are written with SQL as `bench.review` writes them and synced once; the
release workspace is `bench.release`'s, with the default settings (near-duplicate grouping). Every
command is the installed `feedback` script in a fresh process, as a user or a script runs it; each side
runs once untimed first (Python compiles feedback's modules then, into a temporary PYTHONPYCACHEPREFIX,
as an installed package has them compiled), then RUNS times, the sides alternating in each round; each
`label` decides an item not decided before. Rows give the median wall time; the target is the issue's:
under 0.4 s for `label` and `queue --json`.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import result
from bench.release import seed
from bench.review import SAMPLE, generate
from feedback import init_workspace
from feedback.review import queue_page

ITEMS = 100_000
RELEASED = 2_000
RUNS = 7
RELEASES = 3  # timed `release create` runs, each on a fresh copy of the workspace
TARGET_S = 0.4


def run(scale: float) -> list[dict]:
    n = max(1_000, round(ITEMS * scale))
    labels = json.loads((SAMPLE / "taxonomy.json").read_text())
    with tempfile.TemporaryDirectory(prefix="feedback-bench-") as tmp:
        tmp = Path(tmp)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        ws = init_workspace(tmp / "ws", dataset="bench", labels=labels)
        generate(ws.path("store"), n, labels)
        items = [r["item_id"] for r in queue_page(ws, limit=RUNS + 1)]  # syncs the items table, untimed
        feedback = _feedback()
        sides = {
            "pass": lambda i: [sys.executable, "-c", "pass"],
            "duckdb": lambda i: [sys.executable, "-c", "import duckdb"],
            "label": lambda i: [*feedback, "label", items[i], labels[0], "-r", "bench", "-w", str(ws.root)],
            "queue": lambda i: [*feedback, "queue", "--json", "-w", str(ws.root)],
        }
        times = {name: [] for name in sides}
        for name, command in sides.items():
            _timed(command(RUNS), env)  # untimed: compiles the modules; `label` decides the spare item
        for i in range(RUNS):
            for name, command in (sides.items() if i % 2 == 0 else reversed(sides.items())):
                times[name].append(_timed(command(i), env))
        release_s = _release_create(tmp, feedback, env)
    pass_s, duckdb_s = statistics.median(times["pass"]), statistics.median(times["duckdb"])
    rows = []
    for name, shown in (("label", f"`feedback label ITEM LABEL`, {n:,} items"), ("queue", f"`feedback queue --json`, {n:,} items")):
        median = statistics.median(times[name])
        rows += [
            result("cli startup", f"{shown}, median of {RUNS}, against `python -c pass`", median, "s", baseline=pass_s,
                   target=f"< {TARGET_S:g} s", ok=median < TARGET_S),
            result("cli startup", f"{shown}, against `python -c 'import duckdb'`", median, "s", baseline=duckdb_s,
                   target="informational", ok=True),
        ]
    rows += [
        result("cli startup", "`python -c 'import duckdb'` (the store's floor)", duckdb_s, "s", baseline=pass_s,
               target="informational", ok=True),
        result("cli startup", f"`feedback release create`, {RELEASED:,} labeled items, median of {RELEASES}", release_s,
               "s", baseline=duckdb_s, target="informational (Label Studio's export: 3.1 s in issue 26)", ok=True),
    ]
    return rows


def _feedback() -> list[str]:
    """The installed `feedback` script beside this Python, else `python -m feedback`."""
    script = Path(sys.executable).with_name("feedback")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "feedback"]


def _timed(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def _release_create(tmp: Path, feedback: list[str], env: dict) -> float:
    """Median time of `feedback release create` on fresh copies of a workspace with RELEASED labeled items."""
    source = tmp / "labeled"
    seed(source, RELEASED)
    config = source / "feedback.toml"  # the default near-duplicate grouping, as a small team has it
    config.write_text(config.read_text().replace('\n[release]\ngroup_by = "exact"\n', "\n"))
    seconds = []
    for i in range(RELEASES + 1):
        copy = tmp / f"labeled-{i}"
        shutil.copytree(source, copy)
        took = _timed([*feedback, "release", "create", "-q", "-w", str(copy)], env)
        if i:  # the first run compiles the release modules
            seconds.append(took)
    return statistics.median(seconds)
