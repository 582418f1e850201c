"""Hooks and checks that cannot fail silently: the library runs the hooks, the command that fired a failing
or timed-out hook names it on stderr, `feedback check` fails on it, and a warning is never shown as a pass."""

import csv
import json
import os
import subprocess
import sys
import time
from xml.etree import ElementTree

import pytest
from streamlit.testing.v1 import AppTest

from feedback import Workspace
from feedback.hooks import DEFAULTS, failed_hooks, failures, hook_log
from feedback.processes import alive
from feedback.release import create_release
from feedback.review import import_labels
from conftest import LABELS, REPO, configure

pytestmark = pytest.mark.backends

PHRASES = {"card_arrival": "where is my new card {n}", "card_linking": "how do i link card number {n}",
           "refund_not_showing_up": "my refund {n} is not in my account", "lost_or_stolen_card": "i lost my card {n}"}


def labelled(ws, tmp_path, *, start=0, n=20, extra=()):
    """The workspace with `n` imported labels per label (ids from `start`), and any `extra` (id, text, label)."""
    path = tmp_path / f"labels-{start}.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["item_id", "text", "label"])
        writer.writerows((f"i{k}-{m}", PHRASES[label].format(n=m), label) for k, label in enumerate(LABELS)
                         for m in range(start, start + n))
        writer.writerows(extra)
    import_labels(ws, [path])
    return Workspace(ws.root)


def feedback(*args, cwd):
    """The real `feedback` command in a process of its own."""
    env = {k: v for k, v in os.environ.items() if k != "FEEDBACK_WORKSPACE"}
    return subprocess.run([sys.executable, "-m", "feedback", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_failing_hook_is_named_on_stderr_recorded_and_fails_the_next_check(ws, tmp_path):
    command = "echo the trainer broke >&2; exit 3"
    labelled(configure(ws, "hooks", on_release=command), tmp_path)
    made = feedback("release", "create", "-w", ws.root, cwd=tmp_path)
    assert made.returncode == 0, made.stderr  # the release stands
    assert made.stderr == (f"Warning: the on_release hook {command!r} failed (exit 3: the trainer broke); "
                           "see `feedback hooks --log`; test/v1 was released all the same\n")
    assert f"hook on_release {command} #1: failed (exit 3: the trainer broke)" in made.stdout
    assert [(r["event"], r["status"], r["detail"]) for r in hook_log(ws)] == [("release", "failed", "exit 3: the trainer broke")]

    report = tmp_path / "checks.xml"
    checked = feedback("check", "-w", ws.root, "--json", "--junit", report, cwd=tmp_path)
    assert checked.returncode == 1
    hooks = next(c for c in json.loads(checked.stdout) if c["name"] == "hooks")
    assert hooks["status"] == "fail" and hooks["message"].startswith("hooks failed so far (1): the on_release hook")
    case = next(c for c in ElementTree.parse(report).getroot().iter("testcase") if c.get("name") == "hooks")
    assert case.find("failure") is not None and case.find("properties/property").get("value") == "fail"
    again = feedback("check", "-w", ws.root, cwd=tmp_path)  # counted once: nothing failed since the last check
    assert again.returncode == 0 and "PASS  hooks: hooks: no hook failed since the last check" in again.stdout


def test_a_hook_past_its_timeout_is_stopped_with_its_children_and_said_so(ws, tmp_path):
    child = tmp_path / "child.pid"
    command = f"sleep 60 & echo $! > {child}; wait"
    labelled(configure(ws, "hooks", on_release=command, timeout=1), tmp_path)
    started = time.monotonic()
    made = feedback("release", "create", "-w", ws.root, "--json", cwd=tmp_path)
    assert made.returncode == 0 and time.monotonic() - started < 30
    assert f"the on_release hook {command!r} failed (timed out after 1 s)" in made.stderr
    assert json.loads(made.stdout)["hooks"][0]["detail"] == "timed out after 1 s"
    pid = int(child.read_text())
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:  # a zombie until init reaps it
        time.sleep(0.1)
    assert not alive(pid) or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert [f["detail"] for f in failed_hooks(ws, event="release")] == ["timed out after 1 s"]


def test_a_hook_that_succeeds_and_the_library_runs_them_waits_skips_or_runs_them_behind(ws, tmp_path):
    assert DEFAULTS["timeout"] >= 6 * 3600  # a training run fits
    seen = tmp_path / "seen"
    ws = labelled(configure(ws, "hooks", on_release=f"echo $FEEDBACK_RELEASE_VERSION >> {seen}"), tmp_path)
    made = create_release(ws)
    assert [(h["hook"], h["status"]) for h in made["hooks"]] == [("command", "ok")] and not failures(made["hooks"])
    assert seen.read_text() == "v1\n"

    ws = labelled(ws, tmp_path, start=20, n=2)
    assert create_release(ws, hooks=False)["hooks"] == [] and seen.read_text() == "v1\n"

    ws = labelled(ws, tmp_path, start=30, n=2)
    assert create_release(ws, hooks="background")["hooks"] == []  # returns before the hook has run
    deadline = time.monotonic() + 30
    while len(hook_log(ws)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [r["status"] for r in hook_log(ws)] == ["ok", "ok"] and seen.read_text() == "v1\nv3\n"
    checked = feedback("check", "-w", ws.root, cwd=tmp_path)
    assert checked.returncode == 0 and "PASS  hooks: hooks: no hook failed so far" in checked.stdout


def test_a_webhook_counts_as_failed_only_when_its_last_try_failed():
    def attempt(target, n, status, event="release"):
        return {"event": event, "hook": "webhook", "target": target, "attempt": n, "status": status, "detail": "HTTP 500"}

    retried = [attempt("a", 1, "failed"), attempt("a", 2, "ok"), attempt("b", 1, "failed"), attempt("b", 2, "failed"),
               attempt("a", 1, "failed")]  # a later firing of a
    assert [(f["target"], f["attempt"], f["name"]) for f in failures(retried)] == [("b", 2, "webhook"), ("a", 1, "webhook")]


def test_warn_is_never_shown_as_pass_in_text_json_or_junit(ws, tmp_path):
    near = [("near-1", "please tell me where is my new card 12345", "card_arrival"),
            ("near-2", "please tell me where is my new card 12346", "card_linking")]
    labelled(ws, tmp_path, extra=near)
    report = tmp_path / "checks.xml"
    checked = feedback("check", "-w", ws.root, "--json", "--junit", report, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout  # a warning never fails the run
    conflicts = next(c for c in json.loads(checked.stdout) if c["name"] == "gate conflicts")
    assert conflicts["status"] == "warn"
    suite = ElementTree.parse(report).getroot()
    case = next(c for c in suite.iter("testcase") if c.get("name") == "gate conflicts")
    assert case.find("properties/property").attrib == {"name": "status", "value": "warn"}
    assert case.find("system-out").text.startswith("WARN: ") and case.find("failure") is None
    assert suite.find("properties/property").attrib == {"name": "warnings", "value": "1"}
    clean = next(c for c in suite.iter("testcase") if c.get("name") == "gate leakage")
    assert clean.find("properties/property").get("value") == "pass" and not clean.find("system-out").text.startswith("WARN")
    text = feedback("check", "-w", ws.root, cwd=tmp_path).stdout
    assert "WARN  release: gate conflicts: " in text and "PASS  release: gate leakage" in text


def test_release_create_prints_the_fitness_gate_and_check_reports_it(ws, tmp_path):
    ws = labelled(configure(ws, "release", group_by="item"), tmp_path)  # the phrases are near-duplicates
    off = feedback("check", "-w", ws.root, "--json", cwd=tmp_path)
    assert off.returncode == 0, off.stderr
    assert next(c for c in json.loads(off.stdout) if c["name"] == "gate fitness")["message"].startswith(
        "off: set [release.gates] fitness = true")
    create_release(ws)
    ws = labelled(configure(ws, "release.gates", fitness=True), tmp_path, start=20, n=5)
    made = feedback("release", "create", "-w", ws.root, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    line = next(line for line in made.stdout.splitlines() if line.startswith("gate fitness: "))
    assert line.startswith("gate fitness: pass: test split: accuracy "), made.stdout
    checked = feedback("check", "-w", ws.root, "--json", cwd=tmp_path)
    fitness = next(c for c in json.loads(checked.stdout) if c["name"] == "gate fitness")
    assert fitness["status"] == "pass" and fitness["message"].startswith("test split: accuracy ")


def test_check_takes_the_workspace_option_like_the_other_commands(ws, tmp_path):
    labelled(ws, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert feedback("check", "-w", ws.root, cwd=elsewhere).returncode == 0
    nowhere = feedback("check", cwd=elsewhere)
    assert nowhere.returncode == 1 and nowhere.stderr.startswith("Error: ")


def test_the_releases_page_releases_without_waiting_for_the_hooks_and_warns_when_one_failed(ws, tmp_path, monkeypatch):
    go = tmp_path / "go"
    command = f"while [ ! -e {go} ]; do sleep 0.1; done; echo no GPU left >&2; exit 4"
    labelled(configure(ws, "hooks", on_release=command), tmp_path)
    monkeypatch.setenv("FEEDBACK_WORKSPACE", str(ws.root))
    monkeypatch.setenv("FEEDBACK_USER", "lena")
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.session_state["start_page"] = "releases"
    at.run()
    next(b for b in at.button if b.label.startswith("Create a release")).click().run()
    assert not at.exception and at.success[0].value == "Released test v1."  # the hook still waits for `go`
    assert not at.warning and hook_log(ws) == []
    go.touch()
    deadline = time.monotonic() + 30
    while not hook_log(ws) and time.monotonic() < deadline:
        time.sleep(0.1)
    at.run()
    assert [w.value for w in at.warning] == [f"After the latest release, the on_release hook `{command}` failed "
                                             "(exit 4: no GPU left); see `feedback hooks --log`."]


def test_a_hook_that_fails_after_a_check_began_is_counted_by_the_next_check(ws, tmp_path):
    go = tmp_path / "go"
    ws = labelled(configure(ws, "hooks", on_release=f"while [ ! -e {go} ]; do sleep 0.1; done; exit 5"), tmp_path)
    create_release(ws, hooks="background")  # a long training run, still going
    during = feedback("check", "-w", ws.root, cwd=tmp_path)
    assert during.returncode == 0 and "PASS  hooks: hooks: no hook failed so far" in during.stdout
    go.touch()
    deadline = time.monotonic() + 30
    while not hook_log(ws) and time.monotonic() < deadline:
        time.sleep(0.1)
    after = feedback("check", "-w", ws.root, cwd=tmp_path)
    assert after.returncode == 1 and "FAIL  hooks: hooks: hooks failed since the last check" in after.stdout
