"""The soak: every kind of process at once on one workspace, and nobody may see "store busy".

For 3 minutes x scale (at least 30 s), on a workspace with the BANKING77 taxonomy and its training labels
imported (6,000 x scale, at least 600), real processes run at once, as a team's machine runs them:
- two SDK producers, each capturing 50 predictions a second of new items (a fifth of them corrected
  by the user), each event with its own id and each item with its own text;
- two ingest loops (`ingest_spool`, then a pause of 5 s);
- a reviewer through the library (`next_item`, then `decide` after a short look) and one through the
  CLI (`feedback next`, then `feedback label`, each a process of its own);
- the sampler every 20 s (`feedback sample --budget 20`, a model fitted on the trusted labels), a
  release every 60 s (`feedback release create --if-changed`), `feedback status --json` every 5 s.
A scheduled command starts at its next slot after the previous run ended, as a non-overlapping cron
entry would. Every action is logged with its outcome; "busy" is a `StoreBusy` in the library or
"is busy" in a command's error. After the stop, each producer and ingest loop finishes, one last
ingest takes what is left, and the store is checked against the logs.

Rows: store-busy errors seen by any process (target 0), other errors (target 0), events lost or
stored twice (target 0), decisions lost (target 0), p99 of the library reviewer's decision, from the
call to the saved decision (target under 1 s), and, informational: p99 of `feedback label` (a process
start included), the slowest `status`, and what each process got done.

`python -m bench.soak ROLE ...` runs one process of the soak (used by `soak` itself).
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import traceback
from itertools import zip_longest
from pathlib import Path

from bench import result

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"
SECONDS = 180.0
SEED_LABELS = 6_000
RATE = 50  # predictions a second per producer
INGEST_PAUSE = 5.0  # seconds between the runs of an ingest loop
LOOK = (0.5, 1.5)  # seconds a reviewer looks at an item before deciding
SCHEDULE = {"sampler": 20.0, "release": 60.0, "status": 5.0}  # seconds between runs
COMMANDS = {"sampler": ["sample", "--budget", "20", "--json"], "release": ["release", "create", "--if-changed", "--json"],
            "status": ["status", "--json"]}
DECIDE_P99_TARGET_S = 1.0


def run(scale: float) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="feedback-bench-") as tmp:
        report = soak(Path(tmp), seconds=max(30.0, SECONDS * scale), seed_labels=max(600, round(SEED_LABELS * scale)))
    for problem in problems(report):
        print(f"soak: {problem}", file=sys.stderr)
    return rows(report)


def soak(root: Path, *, seconds: float, seed_labels: int) -> dict:
    """Run the soak in `root` for `seconds`; return what happened (see `summarise`)."""
    from feedback import init_workspace
    from feedback.review import import_labels

    labels = json.loads((SAMPLE / "taxonomy.json").read_text())
    ws = init_workspace(root / "ws", dataset="soak", labels=labels)
    import_labels(ws, [seed_file(root / "seed.csv", seed_labels)])
    logs, stop, go = root / "logs", root / "stop", root / "go"
    logs.mkdir()
    roles = [("producer", "p1"), ("producer", "p2"), ("ingest", "i1"), ("ingest", "i2"), ("reviewer", "lib-ann"),
             ("cli_reviewer", "cli-bob"), ("scheduled", "sampler"), ("scheduled", "release"), ("scheduled", "status")]
    procs = [subprocess.Popen([sys.executable, "-m", "bench.soak", role, str(ws.root), str(logs), str(stop), name],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=open(logs / f"{name}.stderr", "w"))
             for role, name in roles]
    deadline = time.monotonic() + 120
    while len(list(logs.glob("*.ready"))) < len(roles) and time.monotonic() < deadline:
        time.sleep(0.1)  # every process has started and imported what it needs
    go.touch()
    started = time.monotonic()
    time.sleep(seconds)
    stop.touch()
    crashed = []
    for (role, name), proc in zip(roles, procs):
        try:
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.returncode != 0:
            crashed.append(f"{name} exited {proc.returncode}: {(logs / f'{name}.stderr').read_text()[-2000:]}")
    elapsed = time.monotonic() - started
    from feedback import ingest_spool

    ingest_spool(ws)
    return summarise(ws, logs, elapsed=elapsed, crashed=crashed)


def seed_file(path: Path, n: int) -> Path:
    """`n` rows of the BANKING77 training labels, taken from each label in turn (so every label has several)."""
    with open(SAMPLE / "training_labels.csv", newline="", encoding="utf-8") as f:
        header, *rows_ = csv.reader(f)
    by_label: dict[str, list] = {}
    for row in rows_:
        by_label.setdefault(row[2], []).append(row)
    taken = [row for group in zip_longest(*by_label.values()) for row in group if row][:n]
    with open(path, "w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([header, *taken])
    return path


def summarise(ws, logs: Path, *, elapsed: float, crashed: list[str]) -> dict:
    """The soak's outcome: busy and other errors, what was lost, latencies and the work done, from the logs
    each process kept and from the store."""
    entries = [json.loads(line) for path in sorted(logs.glob("*.jsonl")) for line in path.read_text().splitlines()]
    busy = [e for e in entries if e["outcome"] == "busy"]
    errors = [e for e in entries if e["outcome"] == "error"]
    store = ws.store()
    lost = {}
    for e in entries:
        if e["what"] == "accepted":
            stored = store.rows("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events WHERE event_id LIKE ?",
                                [e["name"] + "-%"])[0]
            lost[e["name"]] = {"accepted": e["n"], "stored": stored["n"], "distinct": stored["d"]}
    decided = [e["decision_id"] for e in entries if e.get("decision_id")]
    found = store.value("SELECT count(*) FROM decisions WHERE decision_id IN (SELECT unnest(?::VARCHAR[]))", [decided])
    done: dict[str, int] = {}
    for e in entries:
        if e["outcome"] == "ok":
            done[f"{e['name']} {e['what']}"] = done.get(f"{e['name']} {e['what']}", 0) + 1
    return {
        "seconds": elapsed, "busy": busy, "errors": errors, "crashed": crashed, "events": lost,
        "decisions": {"logged": len(decided), "stored": found},
        "decide_ms": sorted(e["ms"] for e in entries if e["name"] == "lib-ann" and e["what"] == "decide"
                            and e["outcome"] == "ok"),
        "cli_label_ms": sorted(e["ms"] for e in entries if e["name"] == "cli-bob" and e["what"] == "label"
                               and e["outcome"] == "ok"),
        "status_ms": sorted(e["ms"] for e in entries if e["name"] == "status" and e["outcome"] == "ok"),
        "done": done,
    }


def problems(report: dict) -> list[str]:
    """What the soak must never show: store busy, other errors or crashes, lost or doubled events, lost decisions."""
    found = [f"store busy: {e['name']} {e['what']}: {e['detail']}" for e in report["busy"]]
    found += [f"error: {e['name']} {e['what']}: {e['detail']}" for e in report["errors"]]
    found += report["crashed"]
    found += [f"events of {name}: {n}" for name, n in report["events"].items()
              if not n["accepted"] == n["stored"] == n["distinct"]]
    if report["decisions"]["logged"] != report["decisions"]["stored"]:
        found.append(f"decisions: {report['decisions']}")
    if len(report["events"]) != 2:
        found.append(f"producers that reported: {sorted(report['events'])}")
    return found


def p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(0.99 * len(values)))] if values else float("nan")


def rows(report: dict) -> list[dict]:
    minutes = report["seconds"] / 60
    accepted = sum(n["accepted"] for n in report["events"].values())
    missing = sum(n["accepted"] - n["distinct"] for n in report["events"].values())
    doubled = sum(n["stored"] - n["distinct"] for n in report["events"].values())
    decisions = report["decisions"]
    others = len(report["errors"]) + len(report["crashed"])
    done = ", ".join(f"{k} {v}" for k, v in sorted(report["done"].items()) if not k.startswith(("p1", "p2")))
    return [
        result("soak", f"store-busy errors seen by any process in {minutes:.1f} min", len(report["busy"]), "errors",
               target="0", ok=not report["busy"]),
        result("soak", "other errors and crashed processes", others, "errors", target="0", ok=not others),
        result("soak", f"events lost or stored twice, of {accepted:,} accepted", missing + doubled, "events",
               target="0", ok=missing == doubled == 0 and len(report["events"]) == 2),
        result("soak", f"decisions lost, of {decisions['logged']:,} made", decisions["logged"] - decisions["stored"],
               "decisions", target="0", ok=decisions["logged"] == decisions["stored"] and decisions["logged"] > 0),
        result("soak", f"library reviewer's decision, p99 of {len(report['decide_ms'])} (median "
               f"{_median(report['decide_ms']):.0f} ms)", p99(report["decide_ms"]), "ms",
               target=f"< {DECIDE_P99_TARGET_S * 1000:.0f} ms", ok=p99(report["decide_ms"]) < DECIDE_P99_TARGET_S * 1000),
        result("soak", f"`feedback label` through the CLI, a process start included, p99 of "
               f"{len(report['cli_label_ms'])}", p99(report["cli_label_ms"]), "ms", target="informational", ok=True),
        result("soak", f"`feedback status --json`, slowest of {len(report['status_ms'])}",
               max(report["status_ms"], default=float("nan")), "ms", target="informational", ok=True),
        result("soak", f"work done: {done}", sum(report["done"].values()), "actions", target="informational",
               ok=True),
    ]


def _median(values: list[float]) -> float:
    return values[len(values) // 2] if values else float("nan")


# -- the processes of the soak -------------------------------------------------------------------

class Log:
    """One JSON line per action of this process: what, how long, and its outcome (ok, busy, error).

    Made once the process has imported what it needs: it says so, and waits for the soak's start.
    """

    def __init__(self, logs: str, name: str, stop: Path):
        self.name = name
        self.file = open(Path(logs) / f"{name}.jsonl", "a", buffering=1)
        (Path(logs) / f"{name}.ready").touch()
        while not (stop.parent / "go").exists():
            time.sleep(0.05)

    def write(self, what: str, outcome: str, ms: float | None = None, detail: str = "", **extra) -> None:
        self.file.write(json.dumps({"name": self.name, "what": what, "outcome": outcome, "ms": ms, "at": time.time(),
                                    "detail": detail[-1000:], **extra}) + "\n")

    def call(self, what: str, fn, **extra):
        """Run `fn()`, log its outcome and time; return its value (None when it failed)."""
        from feedback.errors import FeedbackError, StoreBusy

        start = time.perf_counter()
        try:
            value = fn()
        except StoreBusy as exc:
            self.write(what, "busy", _ms(start), str(exc), **extra)
        except FeedbackError as exc:
            self.write(what, "error", _ms(start), f"{type(exc).__name__}: {exc}", **extra)
        except Exception:
            self.write(what, "error", _ms(start), traceback.format_exc(), **extra)
        else:
            self.write(what, "ok", _ms(start), **extra)
            return value
        return None

    def command(self, what: str, args: list[str], ws: str):
        """Run `feedback ARGS -w WS` in a process of its own, log it; return its parsed JSON output or None."""
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "feedback", *args, "-w", ws], cwd=REPO, capture_output=True,
                              text=True)
        ms = _ms(start)
        if done.returncode == 0:
            out = json.loads(done.stdout) if done.stdout.strip() else None
            self.write(what, "ok", ms, decision_id=out.get("decision_id") if isinstance(out, dict) else None)
            return out
        outcome = "busy" if "is busy" in done.stderr else "error"
        self.write(what, outcome, ms, f"exit {done.returncode}: {done.stderr.strip()}")
        return None


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def producer(ws: str, logs: str, stop: Path, name: str) -> None:
    from feedback import Client

    labels = json.loads((SAMPLE / "taxonomy.json").read_text())
    texts = [json.loads(line)["input"]["text"] for line in (SAMPLE / "events.jsonl").open()
             if json.loads(line).get("input", {}).get("text")]
    rng = random.Random(name)
    client, log = Client(ws), Log(logs, name, stop)
    accepted = i = 0
    start = time.monotonic()
    while not stop.exists():
        item = f"{name}-{i}"
        text = f"{texts[rng.randrange(len(texts))]} (order {item})"  # no two items share a text: no label conflicts
        accepted += client.prediction(item, text=text, label=rng.choice(labels),
                                      score=rng.random(), model="clf", model_version="v1", event_id=f"{item}-p")
        if i % 5 == 0:
            accepted += client.correction(item, label=rng.choice(labels), event_id=f"{item}-c")
        i += 1
        time.sleep(max(0.0, start + i / RATE - time.monotonic()))
    client.close()
    log.write("accepted", "ok", n=accepted)


def ingest(ws: str, logs: str, stop: Path, name: str) -> None:
    from feedback import Workspace, ingest_spool

    workspace, log = Workspace(ws), Log(logs, name, stop)
    while not stop.exists():
        log.call("ingest", lambda: ingest_spool(workspace))
        time.sleep(INGEST_PAUSE)
    time.sleep(3.0)  # the producers seal their last segments
    log.call("ingest", lambda: ingest_spool(workspace))


def reviewer(ws: str, logs: str, stop: Path, name: str) -> None:
    from feedback import Workspace
    from feedback.review import decide, next_item
    from feedback.roles import Actor

    workspace, log, actor = Workspace(ws), Log(logs, name, stop), Actor(name, "reviewer")
    labels = sorted(workspace.taxonomy.names)
    rng = random.Random(name)
    while not stop.exists():
        item = log.call("next", lambda: next_item(workspace, actor))
        if not item:
            time.sleep(0.5)
            continue
        time.sleep(rng.uniform(*LOOK))  # a look at the item
        label = item["pred_label"] if rng.random() < 0.7 and item["pred_label"] else rng.choice(labels)
        start = time.perf_counter()
        try:
            decision = decide(workspace, actor, item["item_id"], label)
        except Exception as exc:
            from feedback.errors import StoreBusy

            log.write("decide", "busy" if isinstance(exc, StoreBusy) else "error", _ms(start),
                      f"{type(exc).__name__}: {exc}")
        else:
            log.write("decide", "ok", _ms(start), decision_id=decision["decision_id"])


def cli_reviewer(ws: str, logs: str, stop: Path, name: str) -> None:
    log = Log(logs, name, stop)
    labels = json.loads((SAMPLE / "taxonomy.json").read_text())
    rng = random.Random(name)
    while not stop.exists():
        item = log.command("next", ["next", "--reviewer", name, "--json"], ws)
        if not item:
            time.sleep(0.5)
            continue
        time.sleep(rng.uniform(*LOOK))
        log.command("label", ["label", item["item_id"], rng.choice(labels), "--reviewer", name, "--json"], ws)


def scheduled(ws: str, logs: str, stop: Path, name: str) -> None:
    log, every = Log(logs, name, stop), SCHEDULE[name]
    start = time.monotonic()
    while not stop.exists():
        log.command(name, COMMANDS[name], ws)
        slot = start + every * (1 + int((time.monotonic() - start) // every))
        while time.monotonic() < slot and not stop.exists():
            time.sleep(0.1)


ROLES = {"producer": producer, "ingest": ingest, "reviewer": reviewer, "cli_reviewer": cli_reviewer,
         "scheduled": scheduled}

if __name__ == "__main__":
    role, ws, logs, stop, name = sys.argv[1:6]
    os.environ.pop("FEEDBACK_WORKSPACE", None)
    ROLES[role](ws, logs, Path(stop), name)
