"""`feedback run`: one scheduled step of the whole loop, on real processes: the release policy, exit codes a
scheduler acts on, one run at a time, and a SIGKILL after every stage that loses and doubles nothing."""

import getpass
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from feedback import Client, list_releases, run_loop
from feedback.learn.jobs import job_lock
from feedback.loop import STAGES, list_runs
from feedback.review import decide_many
from feedback.roles import Actor
from conftest import REPO, configure

LEAD = Actor("lena", "lead")
LABELS = ("card_arrival", "card_linking", "refund_not_showing_up", "lost_or_stolen_card")
WORDS = {"card_arrival": "my card has not arrived yet", "card_linking": "link my card to the app",
         "refund_not_showing_up": "my refund is not showing", "lost_or_stolen_card": "my card was stolen"}


def feedback(*args, env=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "feedback", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def produce(ws, start: int, n: int) -> None:
    """Production traffic into the spool, as a service's SDK writes it."""
    with Client(ws) as client:
        for k in range(start, start + n):
            label = LABELS[k % 4]
            client.prediction(f"r{k}", text=f"{WORDS[label]} (request {k})", label=label, score=0.3 + (k % 7) / 10,
                              event_id=f"e{k}")


def decide_some(ws, start: int, n: int) -> None:
    rows = [{"item_id": f"r{k}", "label": LABELS[k % 4]} for k in range(start, start + n)]
    assert decide_many(ws, Actor("rita", "reviewer"), enumerate(rows, start=1))["errors"] == []


@pytest.fixture
def looped(ws, tmp_path):
    """A workspace whose loop releases after 8 new labels, with a hook that notes every release it hears of."""
    ws = configure(ws, "loop", release_min_labels=8, sample_budget=5, release_max_days=30)
    ws = configure(ws, "release.gates", min_per_label=1)
    return configure(ws, "hooks", on_release=f"echo $FEEDBACK_RELEASE_VERSION >> {tmp_path / 'hooked.txt'}")


def hooked(tmp_path) -> list[str]:
    path = tmp_path / "hooked.txt"
    return path.read_text().split() if path.exists() else []


@pytest.mark.backends
def test_a_release_appears_when_and_only_when_the_policy_allows_and_its_hook_fires_once(looped, tmp_path):
    produce(looped, 0, 40)
    first = run_loop(looped, by=LEAD)
    assert first["exit_code"] == 0 and [s["stage"] for s in first["stages"]] == list(STAGES)
    assert looped.store().value("SELECT count(*) FROM events") == 40
    assert {s["stage"]: s["status"] for s in first["stages"]}["release"] == "not_due" and not list_releases(looped)
    decide_some(looped, 0, 8)
    second = run_loop(looped, by=LEAD)
    assert second["released"] == ["v1"] and [r["version"] for r in list_releases(looped)] == ["v1"]
    decide_some(looped, 8, 5)  # fewer than the policy asks
    assert run_loop(looped, by=LEAD)["released"] == [] and len(list_releases(looped)) == 1
    decide_some(looped, 13, 3)
    assert run_loop(looped, by=LEAD)["released"] == ["v2"]
    assert hooked(tmp_path) == ["v1", "v2"]
    runs = list_runs(looped)
    assert [r["released"] for r in runs] == [["v2"], [], ["v1"], []] and {r["status"] for r in runs} == {"done"}


def test_exit_codes_a_scheduler_can_act_on(looped, tmp_path):
    produce(looped, 0, 30)
    assert run_loop(looped, by=LEAD, only=("ingest",))["exit_code"] == 0
    decide_some(looped, 0, 8)
    assert run_loop(looped, by=LEAD)["exit_code"] == 0 and len(list_releases(looped)) == 1
    drifting = configure(looped, "drift", min_events=1, max_error_rate=0.0)
    with Client(drifting) as client:
        client.error("r0", kind="timeout", message="upstream timed out")
    failed = run_loop(drifting, by=LEAD, skip=("release",))
    assert failed["exit_code"] == 1 and failed["stages"][2]["status"] == "check_failed"
    decide_some(drifting, 8, 8)
    strict = configure(drifting, "release.gates", min_per_label=50)
    blocked = feedback("run", "-w", strict.root, "--only", "release", "--json")
    assert blocked.returncode == 2, blocked.stderr
    report = json.loads(blocked.stdout)
    assert report["status"] == "blocked" and "min_per_label" in report["stages"][-1]["detail"]["gates"]
    assert len(list_releases(strict)) == 1  # never through an override
    with job_lock(strict, "run"):
        busy = feedback("run", "-w", strict.root)
    assert busy.returncode == 75 and "another `feedback run` run is in progress (pid" in busy.stdout


def test_a_dry_run_changes_and_records_nothing_and_only_or_skip_choose_stages(looped):
    produce(looped, 0, 10)
    dry = feedback("run", "-w", looped.root, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert {s["stage"]: s["status"] for s in report["stages"]}["ingest"] == "dry_run"
    assert report["stages"][0]["detail"] == {"would_ingest": 10}
    assert looped.store().value("SELECT count(*) FROM events") == 0 and not list_runs(looped)
    only = run_loop(looped, by=LEAD, only=("ingest",), skip=())
    assert [s["status"] for s in only["stages"]] == ["done"] + ["skipped"] * 5
    text = feedback("runs", "-w", looped.root).stdout
    assert "done     exit 0  ingest:done" in text and "release" not in text  # stages left out leave no record


KILLED = textwrap.dedent("""
    import sys
    from feedback import Workspace, run_loop
    from feedback.roles import Actor
    print(run_loop(Workspace(sys.argv[1]), by=Actor("lena", "lead"))["status"])
""")


@pytest.mark.parametrize("stage", STAGES)
def test_a_sigkill_after_any_stage_loses_and_doubles_nothing(looped, tmp_path, stage):
    produce(looped, 0, 30)
    feedback("run", "-w", looped.root, "--only", "ingest")
    decide_some(looped, 0, 10)
    produce(looped, 30, 10)
    env = {"FEEDBACK_LOOP_KILL_AFTER": stage}
    killed = subprocess.run([sys.executable, "-c", KILLED, looped.root], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=180)
    assert killed.returncode == -signal.SIGKILL
    resumed = subprocess.run([sys.executable, "-c", KILLED, looped.root], cwd=REPO, capture_output=True, text=True,
                             timeout=180)
    assert resumed.returncode == 0 and resumed.stdout.strip() == "done", resumed.stderr
    store = looped.store()
    assert store.rows("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events")[0] == {"n": 40, "d": 40}
    assert store.value("SELECT count(*) FROM sampler_runs WHERE status = 'done' AND run_key LIKE 'loop:%'") <= 1
    assert store.value("SELECT count(*) FROM queue_reasons WHERE reason = 'active_learning'") == store.value(
        "SELECT count(DISTINCT item_id) FROM queue_reasons WHERE reason = 'active_learning'")
    assert [r["version"] for r in list_releases(looped)] == ["v1"] and hooked(tmp_path) == ["v1"]
    runs = list_runs(looped)
    assert runs[0]["resumes"] == 1 and runs[0]["status"] == "done"
    assert [s["stage"] for s in runs[0]["stages"]].count(stage) == 1  # the killed stage was redone, once


def test_the_loop_on_a_short_schedule_beside_producers_and_a_reviewer(looped, tmp_path):
    """Three processes at once: a service writing traffic, a reviewer deciding what is queued, the loop every
    half second; each release holds the labels the policy asked for, and its hook ran once."""
    producer = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO / 'tests')!r})
        from test_loop import produce
        from feedback import Workspace
        for batch in range(6):
            produce(Workspace({str(looped.root)!r}), batch * 20, 20)
            time.sleep(0.2)
    """)], cwd=REPO)
    for _ in range(5):
        assert feedback("run", "-w", looped.root, "--skip", "suspects").returncode == 0
        queued = [r["item_id"] for r in looped.store().rows(
            "SELECT i.item_id FROM items i LEFT JOIN reviews r USING (item_id) WHERE r.item_id IS NULL "
            "ORDER BY i.item_id LIMIT 12")]
        rows = [{"item_id": i, "label": LABELS[int(i[1:]) % 4]} for i in queued]
        decide_many(looped, Actor("rita", "reviewer"), enumerate(rows, start=1))
    assert producer.wait(timeout=60) == 0
    assert feedback("run", "-w", looped.root, "--skip", "suspects").returncode == 0
    assert looped.store().value("SELECT count(*) FROM events") == 120
    made = list_releases(looped)
    assert made and hooked(tmp_path) == [r["version"] for r in made]
    sizes = [r["examples"] for r in made]
    assert sizes[0] >= 8 and all(b - a >= 8 for a, b in zip(sizes, sizes[1:]))


def test_the_runs_page_shows_each_run_its_stages_and_its_releases(looped, monkeypatch):
    from streamlit.testing.v1 import AppTest

    produce(looped, 0, 20)
    run_loop(looped, by=LEAD, only=("ingest",))
    decide_some(looped, 0, 8)
    run_loop(looped, by=LEAD)
    monkeypatch.setenv("FEEDBACK_WORKSPACE", str(looped.root))
    monkeypatch.setenv("FEEDBACK_USER", "lena")
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.session_state["start_page"] = "runs"
    at.run()
    assert not at.exception and at.title[0].value == "Runs"
    table = at.dataframe[0].value
    assert list(table["released"]) == ["v1", ""] and list(table["ingest"]) == ["nothing_to_do", "done"]
    assert list(table["release"]) == ["done", "-"]
    assert at.expander[0].label.endswith("· done · released v1")


README = (REPO / "README.md").read_text()


def block(language: str, marker: str) -> str:
    (found,) = [b for b in re.findall(rf"^```{language}\n(.*?)^```", README, re.S | re.M) if marker in b]
    return found


def test_the_readme_cron_line_and_kubernetes_cronjob_run_the_loop(looped, tmp_path):
    line = next(x for x in block("cron", "feedback run -w").splitlines() if "feedback run" in x)
    command = line.split("  ", 1)[1].split("#")[0].replace("/srv/feedback/ws", str(looped.root))
    assert subprocess.run(["sh", "-c", command], cwd=REPO, timeout=180).returncode == 0
    job = yaml.safe_load(block("yaml", "name: feedback-loop"))
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    script = pod["containers"][0]["command"][2].replace("/ws", str(looped.root))
    with job_lock(looped, "run"):  # a run in progress: the pod ends well, not as a failure
        assert subprocess.run(["sh", "-c", script], cwd=REPO, capture_output=True, timeout=180).returncode == 0
    assert subprocess.run(["sh", "-c", script], cwd=REPO, capture_output=True, timeout=180).returncode == 0
    assert [r["status"] for r in list_runs(looped)] == ["done", "done"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not on this machine")
def test_the_readme_systemd_units_verify(tmp_path):
    units = re.split(r"^# /etc/systemd/system/(\S+)\n", block("ini", "feedback-loop.timer"), flags=re.M)[1:]
    env = tmp_path / "loop.env"
    env.write_text("FEEDBACK_TOKEN=fbk_x\n")
    paths = []
    for name, text in zip(units[::2], units[1::2]):
        text = (text.replace("/usr/local/bin/feedback", shutil.which("feedback") or sys.executable)
                .replace("User=feedback", f"User={getpass.getuser()}").replace("/etc/feedback/loop.env", str(env)))
        (tmp_path / name).write_text(text)
        paths.append(str(tmp_path / name))
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == ["feedback-loop.service", "feedback-loop.timer"]
    checked = subprocess.run(["systemd-analyze", "verify", "--man=no", *paths], capture_output=True, text=True,
                             cwd=tmp_path, timeout=60)
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr


@pytest.mark.parametrize("values, message", [
    ({"sample_budget": "lots"}, "sample_budget = 'lots': give a number"),
    ({"stages": "ingest"}, "give a list of stage names"),
    ({"stages": ["ingest", "nope"]}, "stages: nope unknown"),
])
def test_a_bad_loop_setting_is_named_before_any_stage_runs(ws, values, message):
    bad = configure(ws, "loop", **values)
    refused = feedback("run", "-w", bad.root)
    assert refused.returncode == 1 and message in refused.stderr and "Traceback" not in refused.stderr
    assert not list_runs(bad)
