"""Label Studio against ours on the same texts, in one run: a queue page, a text-filtered page, one save, an export.

Label Studio runs from its own virtual environment (`/opt/lsvenv`, never a dependency of the project;
`python3 -m venv /opt/lsvenv && /opt/lsvenv/bin/pip install label-studio==1.23.2`), on a loopback port
with a temporary data folder (SQLite, its default), and is reached through its REST API with a legacy
token on one keep-alive connection. Both sides get the same BANKING77 texts (10,000 at full scale,
cycled past the 10,003 of train.csv), 2,000 of them labeled: Label Studio imports them as tasks
(the 2,000 with an annotation), ours ingests them as predictions and imports the 2,000 labels.

Each phase alternates rounds of theirs and ours:
- first page of 50: `GET /api/tasks?project=&page=1&page_size=50` against `review.queue_page(limit=50)`;
- text-filtered page: the Data Manager's filter `data.text contains 'card'` against `QueueFilter(text='card')`;
- export of the 2,000 annotated tasks (`GET /api/projects/ID/export?exportType=JSON`) against the CLI
  `feedback release create` of the same 2,000 labeled items (a whole process, as a team scripts it);
- one save, 200 sequential at full scale, one of theirs then one of ours, each on an item not saved before:
  `POST /api/tasks/ID/annotations` against `review.decide` in this process; median and p95 of each side.
`measure_label_studio_save(n)` gives Label Studio's save times alone, for other benches to compare with.
"""

from __future__ import annotations

import csv
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench import result

LS_VENV = Path(os.environ.get("LABEL_STUDIO_VENV", "/opt/lsvenv"))
BANKING77 = Path("/work/shared/data/banking77")
TEXTS = 10_000
LABELED = 2_000
SAVES = 200
ROUNDS = 5  # alternating rounds of each page phase
EXPORTS = 3
TOKEN = "feedbackbenchtoken0123456789"
FILTER_WORD = "card"


class LabelStudio:
    """A Label Studio server of this run and its REST API, over one keep-alive connection."""

    def __init__(self, port: int, data_dir: Path):
        self.port, self.data_dir = port, data_dir
        self.con = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def call(self, method: str, path: str, body=None):
        """One API call; its decoded JSON answer, or RuntimeError with the server's words."""
        headers = {"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"}
        self.con.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = self.con.getresponse()
        content = response.read()
        if response.status >= 400:
            raise RuntimeError(f"Label Studio {method} {path}: {response.status} {content[:500]!r}")
        return json.loads(content) if content else None

    def project(self, title: str, label_config: str) -> int:
        return self.call("POST", "/api/projects", {"title": title, "label_config": label_config})["id"]

    def import_tasks(self, project: int, tasks: list[dict]) -> None:
        for start in range(0, len(tasks), 5_000):
            self.call("POST", f"/api/projects/{project}/import", tasks[start:start + 5_000])

    def task_ids(self, project: int) -> list[int]:
        return [t["id"] for t in self.call("GET", f"/api/tasks?project={project}&page_size=100000&fields=all")["tasks"]]

    def annotate(self, task: int, label: str, *, control: str = "label") -> dict:
        return self.call("POST", f"/api/tasks/{task}/annotations", {"result": [
            {"from_name": control, "to_name": "text", "type": "choices", "value": {"choices": [label]}}]})

    def export(self, project: int, kind: str = "JSON"):
        return self.call("GET", f"/api/projects/{project}/export?exportType={kind}")


@contextmanager
def label_studio(*, username: str = "bench@example.com"):
    """A fresh Label Studio on a free loopback port, stopped and its data removed afterwards."""
    binary = LS_VENV / "bin" / "label-studio"
    if not binary.exists():
        raise FileNotFoundError(f"no Label Studio at {binary}: python3 -m venv {LS_VENV} && "
                                f"{LS_VENV}/bin/pip install label-studio==1.23.2")
    data_dir = Path(tempfile.mkdtemp(prefix="feedback-bench-ls-"))
    port = _free_port()
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir), "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "",
           "DJANGO_DB": "sqlite", "LOG_LEVEL": "WARNING"}
    log = open(data_dir / "server.log", "wb")
    process = subprocess.Popen([str(binary), "start", "--no-browser", "--host", "127.0.0.1", "--port", str(port),
                                "--data-dir", str(data_dir), "--username", username, "--password", "bench-password",
                                "--user-token", TOKEN, "--enable-legacy-api-token"],
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        server = LabelStudio(port, data_dir)
        _wait_until_up(server, process, data_dir / "server.log")
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def version() -> str:
    """The installed Label Studio's version."""
    return subprocess.run([str(LS_VENV / "bin" / "python"), "-c", "import label_studio; print(label_studio.__version__)"],
                          capture_output=True, text=True, check=True).stdout.strip()


def banking77(n: int) -> list[dict]:
    """`n` BANKING77 training texts with their categories, cycled past the end (a numbered copy)."""
    with open(BANKING77 / "train.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [{"item_id": f"b77-{k:06d}", "text": rows[k % len(rows)]["text"] + ("" if k < len(rows) else f" ({k // len(rows)})"),
             "label": rows[k % len(rows)]["category"]} for k in range(n)]


def labels() -> list[str]:
    return json.loads((BANKING77 / "categories.json").read_text())


def measure_label_studio_save(n: int) -> list[float]:
    """Milliseconds of `n` sequential annotation saves (`POST /api/tasks/ID/annotations`) on a fresh Label Studio
    holding `n` BANKING77 tasks, over one keep-alive connection."""
    from feedback.review.interop import label_studio_config
    examples = banking77(n)
    with label_studio() as ls:
        project = ls.project("save timing", label_studio_config(labels()))
        ls.import_tasks(project, [{"data": {"text": e["text"], "item_id": e["item_id"]}} for e in examples])
        return [_timed_ms(lambda: ls.annotate(task, e["label"])) for task, e in zip(ls.task_ids(project), examples)]


def run(scale: float) -> list[dict]:
    if not (LS_VENV / "bin" / "label-studio").exists():
        print(f"label_studio: skipped, no Label Studio in {LS_VENV} (python3 -m venv {LS_VENV} && "
              f"{LS_VENV}/bin/pip install label-studio==1.23.2)", file=sys.stderr)
        return []
    from feedback.review.interop import label_studio_config, label_studio_tasks
    n, labeled, saves = max(200, round(TEXTS * scale)), max(20, round(LABELED * scale)), max(20, round(SAVES * scale))
    examples, names = banking77(n), labels()
    with tempfile.TemporaryDirectory(prefix="feedback-bench-") as tmp, label_studio() as ls:
        tmp = Path(tmp)
        start = time.perf_counter()
        project = ls.project("bench", label_studio_config(names))
        ls.import_tasks(project, label_studio_tasks(examples[:labeled])
                        + [{"data": {k: v for k, v in e.items() if k != "label"}} for e in examples[labeled:]])
        tasks = dict(zip((e["item_id"] for e in examples), ls.task_ids(project)))
        ls_setup = time.perf_counter() - start
        start = time.perf_counter()
        ws = _our_workspace(tmp, examples, labeled, names)
        our_setup = time.perf_counter() - start
        size = f"{n:,} texts"
        rows = [result("label studio", f"setup: {size}, {labeled:,} labeled (Label Studio {version()}; ours "
                       f"{our_setup:.1f} s)", ls_setup, "s", target="informational", ok=True)]
        rows += _pages(ls, project, ws, size)
        rows.append(_export(ls, project, ws, tmp, size, labeled))
        rows += _saves(ls, tasks, ws, examples[labeled:labeled + 2 * saves], saves, size)
        return rows


def _our_workspace(tmp: Path, examples: list[dict], labeled: int, names: list[str]):
    """Our side: the texts as predictions with a user's correction each (so each is queued), the first `labeled`
    imported as labels."""
    from feedback import ingest_files, init_workspace
    from feedback.capture.readers import write_jsonl
    from feedback.review import import_labels, queue_page
    ws = init_workspace(tmp / "ws", dataset="bench", labels=names)
    write_jsonl(tmp / "predictions.jsonl", (event for k, e in enumerate(examples) for event in (
        {"type": "prediction", "item_id": e["item_id"], "input": {"text": e["text"]},
         "prediction": {"label": names[k % len(names)], "score": 0.3}},
        {"type": "correction", "item_id": e["item_id"], "correction": {"label": e["label"]}})))
    ingest_files(ws, [tmp / "predictions.jsonl"])
    write_jsonl(tmp / "labels.jsonl", examples[:labeled])
    import_labels(ws, [tmp / "labels.jsonl"])
    queue_page(ws, limit=1)
    return ws


def _pages(ls: LabelStudio, project: int, ws, size: str) -> list[dict]:
    from feedback.review import QueueFilter, queue_page
    text_filter = {"filters": {"conjunction": "and", "items": [
        {"filter": "filter:tasks:data.text", "operator": "contains", "type": "String", "value": FILTER_WORD}]}}
    query = json.dumps(text_filter)
    phases = [("first page of 50", lambda: ls.call("GET", f"/api/tasks?project={project}&page=1&page_size=50"),
               lambda: queue_page(ws, limit=50)),
              (f"text-filtered page of 50 ('{FILTER_WORD}')",
               lambda: ls.call("GET", f"/api/tasks?project={project}&page=1&page_size=50&query={_quoted(query)}"),
               lambda: queue_page(ws, QueueFilter(text=FILTER_WORD), limit=50))]
    rows = []
    for what, theirs, ours in phases:
        pages = len(ours()), len(theirs()["tasks"])  # a warm-up, and the pages are full on both sides
        assert pages == (50, 50), f"{what}: pages of {pages[0]} (ours) and {pages[1]} (Label Studio)"
        times = {"theirs": [], "ours": []}
        for _ in range(ROUNDS):
            times["theirs"].append(_timed_ms(theirs))
            times["ours"].append(_timed_ms(ours))
        rows.append(_versus(f"{what}, {size}: queue_page against REST", times))
    return rows


def _export(ls: LabelStudio, project: int, ws, tmp: Path, size: str, labeled: int) -> dict:
    command = [sys.executable, "-m", "feedback", "release", "create", "--no-hooks", "--json"]
    times = {"theirs": [], "ours": []}
    for _ in range(EXPORTS):
        start = time.perf_counter()
        exported = ls.export(project)
        times["theirs"].append((time.perf_counter() - start) * 1000)
        assert len(exported) == labeled, len(exported)
        start = time.perf_counter()
        made = subprocess.run(command, cwd=ws.root, check=True, capture_output=True).stdout
        times["ours"].append((time.perf_counter() - start) * 1000)
        assert json.loads(made)["examples"] == labeled, made
    return _versus(f"export of {labeled:,} labeled ({size}): `feedback release create` CLI against REST export JSON",
                   times, target="ratio < 1")


def _saves(ls: LabelStudio, tasks: dict, ws, unlabeled: list[dict], saves: int, size: str) -> list[dict]:
    from feedback.review import decide
    from feedback.roles import local_actor
    me, times = local_actor(), {"theirs": [], "ours": []}
    for k, example in enumerate(unlabeled[:saves]):  # one of theirs, one of ours, on different items
        side, call = (("theirs", lambda: ls.annotate(tasks[example["item_id"]], example["label"])) if k % 2 == 0
                      else ("ours", lambda: decide(ws, me, example["item_id"], example["label"])))
        times[side].append(_timed_ms(call))
    for extra in unlabeled[saves:saves + 2]:  # untimed: both sides end with as many saves
        decide(ws, me, extra["item_id"], extra["label"])
    each = f"{saves // 2:,} of each side, alternating, on different items ({size})"
    return [_versus(f"one save, median of {each}: decide against REST annotation", times),
            _versus(f"one save, p95 of {each}", times, statistic=_p95)]


def _versus(measure: str, times: dict, *, statistic=statistics.median, target: str = "informational") -> dict:
    ours, theirs = statistic(times["ours"]), statistic(times["theirs"])
    return result("label studio", measure, ours, "ms", baseline=theirs, target=target,
                  ok=target == "informational" or ours < theirs)


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def _timed_ms(call) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def _quoted(text: str) -> str:
    from urllib.parse import quote
    return quote(text)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(server: LabelStudio, process: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Label Studio exited ({process.returncode}): {log.read_text()[-2000:]}")
        try:
            server.call("GET", "/api/projects")
            return
        except (OSError, RuntimeError, http.client.HTTPException):
            server.con.close()
            time.sleep(1)
    raise TimeoutError(f"Label Studio did not answer within {timeout:.0f} s: {log.read_text()[-2000:]}")
