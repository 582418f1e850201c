"""One-shot commands load only the libraries they use: each real command runs under `python -X importtime`
on a small workspace, and a heavy library it does not need (HEAVY of test_codebase: pandas, pyarrow,
scikit-learn, ...) fails the test, named with the modules that imported it. No timing is asserted:
`bench/cli_startup.py` measures the time."""

import json
import re
import subprocess
import sys

import pytest

from feedback import Workspace, init_workspace
from feedback.capture import ingest_files
from feedback.review import queue_page
from feedback.store.migrations import MIGRATIONS
from conftest import LABELS, prediction
from test_codebase import HEAVY, PACKAGE

STORE_ONLY = {"duckdb"}  # what a command that reads or writes the embedded store needs, and nothing more
ONE_SHOT = [  # (command, what it may load of HEAVY)
    (["label", "req-01", LABELS[0], "-r", "alice"], STORE_ONLY),
    (["label", "req-02", "skip", "-r", "alice", "--json"], STORE_ONLY),
    (["queue", "--json"], STORE_ONLY),
    (["queue", "--search", "card", "--status", "new"], STORE_ONLY),
    (["next", "-r", "bob", "--json"], STORE_ONLY),
    (["undo", "--last", "-r", "alice"], STORE_ONLY),
    (["history", "req-01", "--json"], STORE_ONLY),
    (["status", "--json"], STORE_ONLY),
    (["labels"], STORE_ONLY),
    (["quarantine"], STORE_ONLY),
    (["release", "list", "--json"], STORE_ONLY),
]
_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$")
#: Runs the command as `python -m feedback` does, noting the line of feedback's code that first imports each
#: heavy library (importtime cannot say: modules that `feedback.lazy` loads are not in its tree).
_WATCHED = """
import atexit, json, runpy, sys, traceback
heavy, root, first = set(sys.argv[1].split(",")), sys.argv[2], {}
class Watch:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in heavy and top not in first:
            frames = [f for f in traceback.extract_stack() if f.filename.startswith(root + "feedback/")]
            first[top] = f"{frames[-1].filename[len(root):]}:{frames[-1].lineno} ({frames[-1].name})" if frames else "?"
sys.meta_path.insert(0, Watch())
atexit.register(lambda: print("FIRST-IMPORTED " + json.dumps(first), file=sys.stderr))
sys.argv = ["feedback", *sys.argv[3:]]
runpy.run_module("feedback", run_name="__main__")
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A workspace with a fixed taxonomy and 20 predictions ingested (items req-00 ... req-19)."""
    root = tmp_path_factory.mktemp("import-cost")
    ws = init_workspace(root / "ws", dataset="test", labels=LABELS)
    log = root / "log.jsonl"
    log.write_text("".join(json.dumps(prediction(f"req-{n:02d}", LABELS[n % 4], f"card question {n}")) + "\n"
                           for n in range(20)))
    assert ingest_files(ws, [log]).events == 20
    return ws


def imported(args: list[str], ws) -> dict[str, str]:
    """Run `feedback ARGS` under `python -X importtime` (exit 0 asserted); the heavy libraries it loaded, each
    with the line of feedback's code that first imported it."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", _WATCHED, ",".join(HEAVY), f"{PACKAGE.parent}/",
                           *args, "-w", str(ws.root)], capture_output=True, text=True, timeout=120)
    lines = done.stderr.splitlines()
    assert done.returncode == 0, "\n".join(line for line in lines if not _LINE.match(line))
    loaded = {found[1] for found in map(_LINE.match, lines) if found}
    first = json.loads(next(line for line in lines if line.startswith("FIRST-IMPORTED "))[15:])
    return {name: first.get(name, "?") for name in HEAVY if name in loaded}


@pytest.mark.parametrize("args, allowed", ONE_SHOT, ids=[" ".join(args[:2]) for args, _ in ONE_SHOT])
def test_a_one_shot_command_loads_no_heavy_library_it_does_not_use(workspace, args, allowed):
    extra = {name: where for name, where in imported(args, workspace).items() if name not in allowed}
    assert extra == {}, "`feedback {}` imports {}".format(" ".join(args), "; ".join(
        f"{name} (first at {where})" for name, where in sorted(extra.items())))


def test_the_check_sees_what_a_command_that_builds_arrow_data_loads(workspace, tmp_path):
    log = tmp_path / "more.jsonl"
    log.write_text(json.dumps(prediction("req-20", LABELS[1], "card question 20")) + "\n")
    loaded = imported(["ingest", str(log)], workspace)
    assert {"duckdb", "pyarrow"} <= loaded.keys() and "sklearn" not in loaded
    assert loaded["pyarrow"].startswith("feedback/capture/")


def test_the_check_of_the_migrations_waits_for_the_first_unit_of_work(workspace, tmp_path):
    (tmp_path / "feedback.toml").write_bytes((workspace.root / "feedback.toml").read_bytes())
    ws = Workspace(tmp_path)  # a workspace whose store file this process has not seen (nor anybody made)
    store = ws.store()
    assert not store.path.exists()  # the check opened nothing of its own
    assert queue_page(ws) == [] and store.value("SELECT count(*) FROM migrations") == len(MIGRATIONS)
