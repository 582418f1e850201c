"""`feedback run` against running its stages by hand, in the same run.

Setup (not timed): two identical workspaces with the BANKING77 taxonomy and the sample's 6,001 training
labels imported; each round, the same production traffic (the sample log's events with fresh item and event
ids, through the SDK into the spool) and the same 200 reviewer decisions go into both. Timed, per round: in
one workspace the stages one after the other by hand (`ingest_spool`, `retry_quarantine`, `monitor.drift`,
`sample`, `find_suspects`, `create_release(if_changed=True)`), in the other one `run_loop` doing the same
work under its policy (a release on any new label, suspects every run), its lock and its records. The
order of the two alternates by round. Target: the loop at most 1.2x the stages by hand.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from bench import result
from feedback import Client, Workspace, ingest_spool, init_workspace, run_loop
from feedback.capture import retry_quarantine
from feedback.learn import find_suspects, sample
from feedback.monitor import drift
from feedback.release import create_release, list_releases
from feedback.review import decide_many
from feedback.review.imports import import_labels
from feedback.roles import Actor

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
LEAD = Actor("lena", "lead")
ROUNDS, DECISIONS, BUDGET, TARGET = 3, 200, 50, 1.2


def run(scale: float) -> list[dict]:
    events = [json.loads(line) for line in (SAMPLE / "events.jsonl").read_text().splitlines()]
    per_round = max(300, round(len(events) * scale))
    by_hand = looped = 0.0
    with tempfile.TemporaryDirectory(prefix="feedback-bench-loop-") as tmp:
        hand_ws, loop_ws = (workspace(Path(tmp) / name) for name in ("hand", "loop"))
        for n in range(ROUNDS):
            for ws in (hand_ws, loop_ws):
                traffic(ws, events, n, per_round)
                decide(ws, n)
            timings = {}
            for which in (("hand", "loop") if n % 2 == 0 else ("loop", "hand")):
                started = time.perf_counter()
                stages_by_hand(hand_ws, n) if which == "hand" else run_loop(loop_ws, by=LEAD)
                timings[which] = time.perf_counter() - started
            by_hand, looped = by_hand + timings["hand"], looped + timings["loop"]
        made = [len(list_releases(ws)) for ws in (hand_ws, loop_ws)]
    ratio = looped / by_hand
    return [
        result("loop", f"feedback run, {ROUNDS} rounds of {per_round:,} events and {DECISIONS} decisions", looped, "s",
               baseline=by_hand, target=f"<= {TARGET:g}x the stages by hand", ok=ratio <= TARGET),
        result("loop", "the same stages called by hand (the baseline)", by_hand, "s", target="informational", ok=True),
        result("loop", f"releases made: by hand {made[0]}, by the loop {made[1]}", made[1], "releases",
               target="the same work", ok=made[0] == made[1] == ROUNDS),
    ]


def workspace(root: Path) -> Workspace:
    """A BANKING77 workspace with the training labels, whose loop releases on any new label and always runs suspects
    (the same work the stages by hand do)."""
    init_workspace(root, dataset="banking77", labels=json.loads((SAMPLE / "taxonomy.json").read_text()))
    path = root / "feedback.toml"
    path.write_text(path.read_text().replace("release_min_labels = 100", "release_min_labels = 1")
                    .replace("suspects_every_hours = 24.0", "suspects_every_hours = 0.0")
                    .replace("sample_budget = 50", f"sample_budget = {BUDGET}"))
    ws = Workspace(root)
    import_labels(ws, [SAMPLE / "training_labels.csv"], by=LEAD)
    return ws


def traffic(ws, events: list[dict], n: int, count: int) -> None:
    with Client(ws) as client:
        for k in range(count):
            event = {**events[k % len(events)]}
            event.pop("event_id", None)
            event["item_id"] = f"round{n}-{event['item_id']}-{k}"
            client.capture(event)


def decide(ws, n: int) -> None:
    rows = ws.store().rows("SELECT item_id, pred_label FROM items WHERE item_id LIKE ? AND pred_label IS NOT NULL "
                           "ORDER BY item_id LIMIT ?", [f"round{n - 1}-%", DECISIONS]) if n else []
    decide_many(ws, Actor("rita", "reviewer"), enumerate(({"item_id": r["item_id"], "label": r["pred_label"]}
                                                          for r in rows), start=1))


def stages_by_hand(ws, n: int) -> None:
    ingest_spool(ws)
    retry_quarantine(ws)
    drift(ws, alert=True)
    sample(ws, budget=BUDGET, key=f"hand:{n}")
    find_suspects(ws, limit=200)
    create_release(ws, if_changed=True, hooks=True, by=LEAD)
