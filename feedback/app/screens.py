"""What the app's screens show, each gathered by one call (the app holds no queries or rules)."""

from __future__ import annotations

import difflib
import json
import re
import string
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from ..errors import FeedbackError
from ..hooks import failed_hooks
from ..learn.sampler import sampler_report
from ..loop import STAGES, list_runs
from ..monitor.checks import drift
from ..release.evaluation import evaluate
from ..release.releases import (
    candidate_gates,
    diff_releases,
    list_releases,
    show_release,
)
from ..review.dashboard import dashboard_figures
from ..review.decisions import item_history
from ..review.groups import similar_items
from ..review.queue import QueueFilter, claim_next, progress, queue_counts, queue_page
from ..roles import Actor
from ..workspace import Workspace

#: The keys of the Review page besides the quick labels and the taxonomy's hotkeys, as (key, what it does).
REVIEW_KEYS = [("L", "label with the choice of the search box"), ("S", "skip"), ("J", "junk"), ("U", "unsure"),
               ("M", "write a note; Enter keeps it for your next decision"), ("Z", "undo your last decision"),
               ("N", "pass to the next item"), ("Esc", "leave the search box or the note"), ("?", "show these keys")]


def review_screen(ws: Workspace, actor: Actor, flt: QueueFilter | None = None, *, exclude=(), first: str | None = None,
                  claims: bool = False, timezone: str | None = None, similar_pool: int = 20_000,
                  details: bool = True) -> dict:
    """The reviewer's next item (claimed; `first` if it can be had), its top predicted classes, the labels for
    the number keys and every key; with `details` also what `review_details` adds: one transaction.

    `item` is None when nothing is left for the reviewer. The app asks without `details` and draws the item
    before it asks for them, so a keypress shows the next item sooner.
    """
    with ws.store().atomic(shared=True) as tx:  # a reviewer's unit of work, beside the others' on PostgreSQL
        row = claim_next(tx, ws, actor, flt, exclude=exclude, first=first)
        if row is None:
            screen = {"item": None}
        else:
            probs = _probabilities(tx, row["item_id"])
            quick = quick_labels(ws, row, probs)
            hotkeys = {label.name: label.hotkey for label in ws.taxonomy.labels
                       if label.hotkey and label.status == "active" and label.name not in quick}
            keys = [(str(n), f"label {label}") for n, label in enumerate(quick, start=1)]
            keys += [(key, f"label {name}") for name, key in hotkeys.items()] + REVIEW_KEYS
            screen = {"item": row, "probs": probs, "quick": quick, "hotkeys": hotkeys, "keys": keys}
        if details:
            screen.update(_details(tx, ws, actor, row, exclude=exclude, claims=claims, timezone=timezone,
                                   similar_pool=similar_pool))
    return screen


def review_details(ws: Workspace, actor: Actor, item: dict | None, *, exclude=(), claims: bool = False,
                   timezone: str | None = None, similar_pool: int = 20_000) -> dict:
    """Around the shown `item` (None: nothing left): the reviewer's session counter (their day in `timezone`) as
    `progress`, its `history` (claims only with `claims`; `hidden_claims` counts the others; a decision's batch
    in its note) and `similar` items with the words that differ marked."""
    with ws.store().atomic(shared=True) as tx:  # the counter may bring `items` up to date first
        return _details(tx, ws, actor, item, exclude=exclude, claims=claims, timezone=timezone,
                        similar_pool=similar_pool)


def _details(tx, ws: Workspace, actor: Actor, item: dict | None, *, exclude, claims: bool, timezone: str | None,
             similar_pool: int) -> dict:
    counter = progress(tx, ws, actor, since=day_start(timezone), exclude=exclude)
    if item is None:
        return {"progress": counter}
    item_id, text = item["item_id"], item["text"]
    similar = similar_items(tx, item_id, text, limit=5, max_items=similar_pool, pool_key=str(ws.root)) if text else []
    history = item_history(tx, item_id)
    shown = [{**h, "note": " · ".join(filter(None, [h["note"], h["batch_id"] and f"batch {h['batch_id']}"])) or None}
             for h in history if claims or h["kind"] != "claim"]
    return {"progress": counter, "history": shown, "hidden_claims": len(history) - len(shown),
            "similar": [{**s, "marks": word_marks(text or "", s["text"] or "")} for s in similar]}


def day_start(timezone: str | None) -> datetime:
    """The start of today in a time zone (UTC when unknown), as a naive UTC time like the store's."""
    try:
        zone = ZoneInfo(timezone) if timezone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    local = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    return local.astimezone(UTC).replace(tzinfo=None)


def word_marks(base: str, other: str) -> list[dict]:
    """`other` cut into runs of text, each marked `differs` where its words are not in `base` in the same order
    (compared without case and surrounding punctuation); the runs joined give `other` back."""
    tokens = re.findall(r"\s+|\S+", other)
    words = [i for i, t in enumerate(tokens) if not t.isspace()]
    same = set()
    matcher = difflib.SequenceMatcher(None, [_word(w) for w in base.split()], [_word(tokens[i]) for i in words],
                                      autojunk=False)
    for block in matcher.get_matching_blocks():
        same.update(words[block.b:block.b + block.size])
    runs: list[dict] = []
    for i, token in enumerate(tokens):
        differs = runs[-1]["differs"] if token.isspace() and runs else i not in same
        if runs and runs[-1]["differs"] == differs:
            runs[-1]["text"] += token
        else:
            runs.append({"text": token, "differs": differs})
    return runs


def _word(token: str) -> str:
    return token.strip(string.punctuation).lower()


def _probabilities(tx, item_id: str) -> dict[str, float]:
    """The latest prediction's per-class probabilities, highest first."""
    raw = tx.value("SELECT arg_max(pred_probs, seq) FROM events WHERE item_id = ? AND type = 'prediction'", [item_id])
    probs = json.loads(raw) if raw else {}
    return dict(sorted(probs.items(), key=lambda kv: -kv[1]))


def quick_labels(ws: Workspace, item: dict, probs: dict[str, float], *, size: int = 9) -> list[str]:
    """Labels for the number keys: the user's correction, the prediction, then the likeliest alternatives."""
    picks = [item.get("corr_label"), item.get("pred_label"), *probs]
    allowed = [p for p in dict.fromkeys(picks) if p and ws.taxonomy.refusal(p) is None]
    return allowed[:size]


def queue_options(ws: Workspace) -> dict[str, dict]:
    """What each filter of the queue page offers: the values the whole queue holds, with counts."""
    return queue_counts(ws)


def queue_filter(*, since: date | datetime | None = None, until: date | datetime | None = None,
                 **fields) -> QueueFilter:
    """A queue filter from the page's widgets: days as dates, `until` inclusive (the CLI's --until is exclusive)."""
    if isinstance(until, date) and not isinstance(until, datetime):
        until = datetime.combine(until + timedelta(days=1), time())
    if isinstance(since, date) and not isinstance(since, datetime):
        since = datetime.combine(since, time())
    return QueueFilter(since=since, until=until, **fields)


def queue_screen(ws: Workspace, flt: QueueFilter | None = None, *, sort: str = "priority", page: int = 1,
                 size: int = 50) -> dict:
    """The queue page: the counts of what matches, the number of pages and the rows of page `page` (kept
    within the pages there are)."""
    flt = flt or QueueFilter()
    matching = queue_counts(ws, flt)
    pages = max(1, -(-matching["total"]["items"] // size))
    page = min(max(page, 1), pages)
    return {"matching": matching, "pages": pages, "page": page,
            "rows": queue_page(ws, flt, sort=sort, limit=size, offset=(page - 1) * size)}


def adjudication_queue(ws: Workspace, *, limit: int = 50) -> list[dict]:
    """Disputed items with each reviewer's live decision side by side."""
    with ws.store().connect() as tx:
        items = tx.rows(
            "SELECT i.item_id, i.text, i.pred_label, i.corr_label FROM reviews r JOIN items i USING (item_id) "
            "WHERE r.status = 'disputed' ORDER BY i.priority DESC, i.item_id LIMIT ?", [limit])
        votes = tx.rows(
            "SELECT item_id, reviewer, arg_max(coalesce(label, kind), decided_at) AS decision, max(decided_at) AS last_at "
            "FROM decisions WHERE item_id IN (SELECT unnest(?::VARCHAR[])) AND kind IN ('label', 'unsure', 'skip', 'junk') "
            "AND decision_id NOT IN (SELECT undoes FROM decisions WHERE kind = 'undo') GROUP BY item_id, reviewer "
            "ORDER BY last_at", [[i["item_id"] for i in items]])
    by_item: dict[str, dict[str, str]] = {i["item_id"]: {} for i in items}
    for v in votes:
        by_item[v["item_id"]][v["reviewer"]] = v["decision"]
    return [{**i, "decisions": by_item[i["item_id"]]} for i in items]


def recent_batches(ws: Workspace, *, limit: int = 20) -> list[dict]:
    """Group relabel batches, newest first, with how many of their decisions are still live."""
    return ws.store().rows(
        "SELECT batch_id, any_value(label) FILTER (WHERE kind <> 'undo') AS label, "
        "any_value(reviewer) AS reviewer, min(decided_at) AS started, "
        "count(*) FILTER (WHERE kind <> 'undo') - count(*) FILTER (WHERE kind = 'undo') AS live "
        "FROM decisions WHERE batch_id IS NOT NULL GROUP BY batch_id ORDER BY started DESC LIMIT ?", [limit])


def releases_screen(ws: Workspace, *, ref: str | None = None, old: str | None = None, new: str | None = None) -> dict:
    """The releases page: every release (oldest first) with its gates in short; the hooks that failed since the
    latest release (`hook_failures`); for release `ref` (default the latest) its folder, gate results,
    overrides and how to load it; and the diff from `old` to `new` (default the two latest) as tables.
    `releases` is empty before the first release."""
    made = list_releases(ws)
    refs = [f"{r['dataset']}/{r['version']}" for r in made]
    if not made:
        return {"releases": [], "refs": []}
    manifests = {r: show_release(ws, r) for r in refs}
    rows = [{"release": r, "examples": m["examples"], "created_at": m["created_at"], "created_by": m["created_by"],
             "parent": (m["parent"] or {}).get("version"), "gates": _gate_summary(m["gates"]),
             "overridden": ", ".join((m.get("overrides") or {}).get("gates", [])), "release_id": m["release_id"]}
            for r, m in manifests.items()]
    ref = ref if ref in manifests else refs[-1]
    chosen = manifests[ref]
    screen = {"releases": rows, "refs": refs, "ref": ref, "path": chosen["location"],
              "gates": [{"gate": g["gate"], "status": "overridden" if g.get("overridden") else g["status"],
                         "detail": g["detail"], "examples": ", ".join(g.get("examples", []))} for g in chosen["gates"]],
              "overrides": chosen.get("overrides"), "snippets": load_snippets(chosen), "diff": None,
              "hook_failures": failed_hooks(ws, since=max(r["created_at"] for r in made), event="release")}
    if len(refs) >= 2:
        old = old if old in manifests else refs[-2]
        new = new if new in manifests else refs[-1]
        screen["diff"] = diff_tables(diff_releases(ws, old, new))
    return screen


def gate_check(ws: Workspace) -> list[dict]:
    """The quality gates of the release that would be made now (nothing written), failing ones first."""
    order = {"fail": 0, "warn": 1, "pass": 2, "skip": 3}
    gates = candidate_gates(ws)
    return sorted(({"gate": g["gate"], "status": g["status"], "detail": g["detail"],
                    "examples": ", ".join(g.get("examples", []))} for g in gates), key=lambda g: order.get(g["status"], 4))


def _gate_summary(gates: list[dict]) -> str:
    counts: dict[str, int] = {}
    for g in gates:
        status = "overridden" if g.get("overridden") else g["status"]
        counts[status] = counts.get(status, 0) + 1
    return " · ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def load_snippets(manifest: dict) -> dict[str, str]:
    """Copyable code that loads a release's folder: with pandas, DuckDB and Hugging Face `datasets`."""
    path = manifest["location"]
    split = "train" if "train" in manifest["splits"] else next(iter(manifest["splits"]))
    files = f"{path}/data/{split}-*.parquet"
    return {
        "pandas": (f"import glob\nimport pandas as pd\n\n{split} = pd.concat(map(pd.read_parquet, "
                   f"sorted(glob.glob({files!r}))))\n\n# or, checked against SHA256SUMS first:\nimport feedback\n"
                   f"{split} = feedback.load_release({path!r}, split={split!r})"),
        "duckdb": (f"import duckdb\n\n{split} = duckdb.sql(\"SELECT * FROM read_parquet({files!r})\").df()\n"
                   f"duckdb.sql(\"SELECT label, count(*) FROM read_parquet({path + '/data/*.parquet'!r}) GROUP BY label\")"),
        "datasets": (f"import datasets\n\nds = datasets.load_dataset({path!r})  # splits: "
                     f"{', '.join(manifest['splits'])}; labels as ClassLabel\nds[{split!r}][0]"),
    }


def diff_tables(change: dict) -> dict:
    """A release diff as what the page shows: the counts, the relabel matrix, the label mix before and after
    (as a table and as rows for a chart), and the split sizes."""
    labels = pd.DataFrame(change["labels"], columns=["label", "before", "after", "change"])
    mix = labels.melt(id_vars="label", value_vars=["before", "after"], var_name="release", value_name="examples")
    mix["release"] = mix["release"].map({"before": change["from"], "after": change["to"]})
    return {"from": change["from"], "to": change["to"],
            "counts": {k: change[k] for k in ("added", "removed", "relabeled", "split_moves")},
            "examples": change["examples"],
            "relabeled": pd.DataFrame(change["relabel_matrix"], columns=["from", "to", "count"]),
            "labels": labels.sort_values(["change", "label"], key=lambda c: c.abs() if c.name == "change" else c,
                                         ascending=[False, True]),
            "mix": mix, "splits": pd.DataFrame(change["splits"], columns=["split", "before", "after", "change"]),
            "samples": change["samples"]}


def evaluation_screen(ws: Workspace, ref: str) -> dict:
    """The reference model on release `ref` (`evaluate`): its scores and the parent release's, the confusion matrix
    as rows for a heat map (`cells`: actual, predicted, examples; `labels` in the release's class order), and each
    label's F1 beside the parent's, most fallen first (`parent_error` says why the parent has no scores)."""
    report = evaluate(ws, ref)
    parent, parent_error = None, None
    if report["parent"]:
        try:
            parent = evaluate(ws, report["parent"])
        except FeedbackError as exc:  # the parent had no test split, or one label: this release still shows
            parent_error = str(exc)
    labels = report["labels"]
    cells = pd.DataFrame([(actual, predicted, n) for actual, row in zip(labels, report["confusion"])
                          for predicted, n in zip(labels, row)], columns=["actual", "predicted", "examples"])
    f1 = pd.DataFrame(report["per_label"], columns=["label", "support", "precision", "recall", "f1"])
    f1["parent_f1"] = f1["label"].map({p["label"]: p["f1"] for p in parent["per_label"]} if parent else {})
    f1["change"] = f1["f1"] - f1["parent_f1"]
    return {**{k: report[k] for k in ("release", "parent", "model", "train", "test", "accuracy", "macro_f1")},
            "labels": labels, "cells": cells, "f1": f1.sort_values("change", na_position="last", kind="stable"),
            "parent_scores": parent and {k: parent[k] for k in ("accuracy", "macro_f1")},
            "parent_error": parent_error}


def dashboard_screen(ws: Workspace) -> dict:
    """The dashboard: the review figures, the sampler's yield per run, suspected label errors found and confirmed
    by day (as rows for a chart), and drift against the latest release."""
    figures = dashboard_figures(ws)
    runs = sampler_report(ws)["runs"]
    sampler = pd.DataFrame([{"run": f"{r['started_at']:%m-%d %H:%M} {r['run_id'][-6:]}", "started_at": r["started_at"],
                             "picked": r["picked"], "reviewed": r["reviewed"], "relabeled": r["relabeled"],
                             "yield %": None if r["yield"] is None else round(100 * r["yield"], 1)}
                            for r in reversed(runs)],
                           columns=["run", "started_at", "picked", "reviewed", "relabeled", "yield %"])
    suspects = figures["suspects"]
    found = suspects.melt(id_vars="day", value_vars=["found", "confirmed"], var_name="suspects", value_name="items")
    return {**figures, "sampler": sampler, "suspects_by_day": found, "drift": drift_figures(ws)}


def drift_figures(ws: Workspace) -> dict:
    """The drift report of recent production against the latest release, shaped for the dashboard's charts:
    the label mix is that of the model version that moved most, its labels with the largest PSI parts."""
    report = drift(ws)
    worst = max(report["label_mix"], key=lambda m: m["psi"], default={"model_version": None, "by_label": []})
    mix = [{"label": b["label"], "source": source, "share": b[source]}
           for b in worst["by_label"] for source in ("recent", "release")]
    return {"window": report["window"], "release": report["release"], "checks": report["checks"],
            "model_version": worst["model_version"], "label_mix": pd.DataFrame(mix, columns=["label", "source", "share"]),
            "confidence": pd.DataFrame(report["confidence"], columns=["model_version", "ks", "median", "median_before"]),
            "novel_terms": pd.DataFrame([{**{k: t[k] for k in ("term", "recent", "release")}, "g2": round(t["g2"], 1),
                                          "examples": ", ".join(t["examples"])} for t in report["novel_terms"]],
                                        columns=["term", "recent", "release", "g2", "examples"])}


def runs_screen(ws: Workspace, *, limit: int = 50) -> dict:
    """The Runs page: the latest runs of `feedback run`, newest first, one row each with every stage's outcome,
    and each run's stages in full."""
    runs = list_runs(ws, limit=limit)
    rows = [{"started": r["started_at"], "run": r["run_id"], "status": r["status"], "exit": r["exit_code"],
             "resumed": r["resumes"], **{stage: next((s["status"] for s in r["stages"] if s["stage"] == stage), "-")
                                         for stage in STAGES},
             "released": ", ".join(r["released"])} for r in runs]
    details = [{"title": f"{r['run_id']} · {r['status']}" + (f" · released {', '.join(r['released'])}" if r["released"] else ""),
                "stages": [{"stage": s["stage"], "status": s["status"], "at": s["finished_at"],
                            "detail": json.dumps(s["detail"], default=str)} for s in r["stages"]]} for r in runs]
    return {"rows": rows, "runs": details}
