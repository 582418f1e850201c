"""The README's Python examples run as tests, the public API they use is importable from `feedback`, and
the notebook example type-checks with mypy against the package's own annotations (py.typed)."""

import os
import re
import subprocess
import sys
import textwrap

import pytest

import feedback
from feedback.demo import prepare_demo
from feedback.release import create_release
from conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README, re.S | re.M)


def block_with(marker: str) -> str:
    found = [b for b in python_blocks() if marker in b]
    assert len(found) == 1, f"one README block with {marker!r}"
    return found[0]


def run(code: str, cwd, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_every_feedback_name_the_readme_uses_is_public():
    names = set(re.findall(r"\bfeedback((?:\.[a-z_A-Z]\w*)+)", "\n".join(python_blocks())))
    assert names, "the README's examples use the package"
    for dotted in sorted(names):
        target = feedback
        for part in dotted.strip(".").split("."):
            target = getattr(target, part)  # an AttributeError names what is missing
    assert {"next_item", "decide", "decide_many", "undo_last", "sample", "find_suspects", "create_release",
            "load_release", "Client", "ingest_spool"} <= set(feedback.__all__)


def test_the_notebook_example_runs_the_whole_loop(tmp_path):
    result = run(block_with("feedback.init_workspace"), tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "91 events stored"
    assert lines[1] == "{'decided': 60, 'waiting': 0, 'errors': []}"
    assert lines[2].startswith("queued 10 of ")
    assert re.match(r"v1 60 examples; \d+ in train: \['id', 'text', 'label'\]", lines[-1])


def test_the_notebook_example_type_checks_and_the_checker_sees_the_api(tmp_path):
    (tmp_path / "example.py").write_text(block_with("feedback.init_workspace"))
    (tmp_path / "wrong.py").write_text(textwrap.dedent("""\
        import feedback
        ws = feedback.find_workspace()
        feedback.decide(ws, feedback.local_actor(), 1, "refund")
        feedback.sample(ws, budgett=3)
    """))
    env = {**os.environ, "MYPYPATH": str(REPO)}  # an editable install hides the package from mypy's search

    def mypy(name):
        return subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-error-summary",
                               "--cache-dir", str(tmp_path / ".mypy"), name], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)

    clean = mypy("example.py")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    wrong = mypy("wrong.py")
    assert 'Argument 3 to "decide" has incompatible type "int"; expected "str"' in wrong.stdout
    assert 'Unexpected keyword argument "budgett" for "sample"' in wrong.stdout


def test_the_sdk_example_captures_what_it_says(tmp_path):
    feedback.init_workspace(tmp_path / "ws")
    setup = textwrap.dedent("""\
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(
            ["card late", "card lost", "refund please", "card missing"], ["card_arrival", "lost_or_stolen_card",
                                                                          "request_refund", "card_arrival"])
        text = "my card is late"
    """)
    result = run(setup + block_with("feedback.Client(\"ws\")"), tmp_path, env={"FEEDBACK_WORKSPACE": str(tmp_path / "ws")})
    assert result.returncode == 0, result.stderr
    stored = feedback.ingest_spool(feedback.Workspace(tmp_path / "ws"))  # the clients sealed their segments at exit
    assert (stored.events, stored.quarantined) == (5, 0)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_release_loading_example_loads_a_real_release(tmp_path):
    ws = prepare_demo(tmp_path / "ws")
    assert create_release(ws)["version"] == "v2"
    code = "import datasets, duckdb, pandas, feedback\n" + block_with("load_release(\"releases/banking77/v2\"")
    code = code.replace("duckdb.sql(", "print(duckdb.sql(").replace(".parquet'\")", ".parquet'\").count('*').fetchall())")
    result = run(code, ws.root)
    assert result.returncode == 0, result.stderr
    assert re.search(r"\[\(\d+,\)\]", result.stdout)
