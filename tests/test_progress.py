"""Progress of long jobs: the library's callback (called, monotonic, final count right) and the CLI's bar,
drawn on a terminal only (a real pseudo-terminal here) and never with --quiet."""

import json
import os
import pty
import subprocess
import sys

import pytest

from feedback import ingest_files, learn, monitor, release, review
from feedback.demo import prepare_demo
from feedback.roles import local_actor
from conftest import REPO


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return prepare_demo(tmp_path_factory.mktemp("progress") / "ws")


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, stage, done, total):
        self.calls.append((stage, done, total))

    def assert_a_whole_job(self):
        assert self.calls, "the job reported nothing"
        totals = {total for _, _, total in self.calls}
        assert len(totals) == 1, f"the total changed: {totals}"
        done = [d for _, d, _ in self.calls]
        assert done == sorted(done) and 0 <= done[0], f"not monotonic: {done}"
        assert done[-1] == totals.pop(), "the last call is not the whole job"
        assert all(isinstance(stage, str) and stage for stage, _, _ in self.calls)


def jobs(ws, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps({"type": "prediction", "item_id": f"p-{i}", "input": {"text": f"card {i}"},
                                          "prediction": {"label": "card_arrival", "score": 0.5}}) + "\n"
                              for i in range(3000)))
    labels = tmp_path / "labels.csv"
    labels.write_text("item_id,text,label\n" + "".join(f"imp-{i},where is card {i},card_arrival\n" for i in range(500)))
    me = local_actor()
    return {
        "ingest": lambda p: ingest_files(ws, [events], progress=p),
        "import-labels": lambda p: review.import_labels(ws, [labels], progress=p),
        "label --file": lambda p: review.decide_many(ws, me, [(1, {"item_id": "p-1", "label": "card_linking"}),
                                                          (2, {"item_id": "p-2", "label": "nope"})], progress=p),
        "groups": lambda p: review.near_duplicate_groups(ws, queued_only=False, progress=p),
        "sample": lambda p: learn.sample(ws, budget=20, dry_run=True, progress=p),
        "suspects": lambda p: learn.find_suspects(ws, dry_run=True, folds=3, progress=p),
        "release create": lambda p: release.create_release(ws, progress=p),
        "release verify": lambda p: release.verify_release(ws, "v1", progress=p),
        "drift": lambda p: monitor.drift(ws, progress=p),
        "check": lambda p: monitor.check_workspace(ws, progress=p),
        "check a release folder": lambda p: monitor.check_release_folder(ws.path("releases") / ws.dataset / "v1",
                                                                         progress=p),
        "forget": lambda p: review.forget(ws, me, item_ids=["p-3"], why="ticket-1", progress=p),
    }


def test_every_long_job_reports_monotonic_progress_that_ends_at_its_total(demo, tmp_path):
    for name, job in jobs(demo, tmp_path).items():
        recorder = Recorder()
        job(recorder)
        try:
            recorder.assert_a_whole_job()
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}; calls {recorder.calls}") from None


def test_byte_counted_jobs_end_at_the_files_size(demo, tmp_path):
    path = tmp_path / "more.jsonl"
    path.write_text("".join(json.dumps({"type": "error", "item_id": f"e-{i}", "error": {"kind": "timeout"}}) + "\n"
                            for i in range(2000)))
    recorder = Recorder()
    ingest_files(demo, [path], progress=recorder)
    assert recorder.calls[-1][1:] == (path.stat().st_size, path.stat().st_size)
    assert len(recorder.calls) >= 2


def run_cli(args, ws, *, tty: bool) -> str:
    """The command's stderr, read from a pseudo-terminal (tty) or a pipe."""
    env = {**os.environ, "FEEDBACK_WORKSPACE": str(ws.root), "COLUMNS": "120"}
    command = [sys.executable, "-m", "feedback", *args]
    if not tty:
        return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300).stderr
    leader, follower = pty.openpty()
    proc = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the command closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=300)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def test_the_bar_is_drawn_on_a_terminal_and_never_with_quiet_or_a_pipe(demo):
    args = ["suspects", "--dry-run", "--folds", "3"]
    drawn = run_cli(args, demo, tty=True)
    assert "[" in drawn and "/s" in drawn and "done" in drawn, drawn
    assert drawn.rstrip().endswith("done")  # the bar's last line is the whole job
    assert run_cli([*args, "--quiet"], demo, tty=True).strip() == ""
    assert "/s" not in run_cli(args, demo, tty=False)
