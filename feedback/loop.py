"""The loop, one scheduled step at a time (`feedback run`): from production traffic to a release, under a policy.

A run takes the stages of `[loop] stages` in order, each optional:
- `ingest`: the spool into the store; `retry`: quarantined rows validated again;
- `drift`: production against the latest release, the items with the top `novelty_queue` novel terms queued;
- `sample`: the sampler, `sample_budget` picks, keyed by the run (a resumed run picks nothing twice);
- `suspects`: the label-error finder, every `suspects_every_hours`;
- `release`: when the policy says: at least `release_min_labels` labels decided since the last release,
  or any after `release_max_days` days; through every gate (never an override; the fitness gate when
  `[release.gates] fitness` is on); then its `on_release` hooks, once.

One run at a time per workspace (a lock the kernel or the server releases when the process dies). Every
run is recorded (`loop_runs`, and a row per stage in `loop_stages`); a run that finds the last one
unfinished (killed) resumes it under its id, skipping the stages it finished: each stage is safe to run
again (ingest skips recorded segments, the sampler's key repeats nothing, suspects flag an item once, a
release is made only from changed content, and the hooks of a release the run made fire once).

Exit codes (`EXIT`): 0 done, 1 a stage failed or a check crossed its threshold, 2 blocked (a release was
due but a gate refused it: a person must act), 75 busy (another run holds the lock).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from datetime import datetime, timedelta, timezone

from .errors import FeedbackError
from .roles import Actor, local_actor
from .workspace import Workspace

STAGES = ("ingest", "retry", "drift", "sample", "suspects", "release")
LOOP_DEFAULTS = {"stages": list(STAGES), "sample_budget": 50, "suspects_every_hours": 24.0, "suspects_limit": 200,
                 "novelty_queue": 0, "release_min_labels": 100, "release_max_days": 7.0}
EXIT = {"done": 0, "failed": 1, "blocked": 2, "busy": 75}
#: Stage outcomes that let a resumed run skip the stage
_FINISHED = ("done", "nothing_to_do", "not_due", "check_failed", "blocked")
#: For crash tests: the stage after whose work (before its record) the process kills itself
_KILL_AFTER = "FEEDBACK_LOOP_KILL_AFTER"


def loop_config(ws: Workspace) -> dict:
    """`[loop]` over its defaults, checked: a bad value is named before any stage runs."""
    cfg = {**LOOP_DEFAULTS, **ws.config.get("loop", {})}
    if not isinstance(cfg["stages"], list) or not all(isinstance(s, str) for s in cfg["stages"]):
        raise FeedbackError(f"[loop] stages = {cfg['stages']!r}: give a list of stage names, e.g. {list(STAGES)}")
    unknown = sorted(set(cfg["stages"]) - set(STAGES))
    if unknown:
        raise FeedbackError(f"[loop] stages: {', '.join(unknown)} unknown; the stages are {', '.join(STAGES)}")
    for key in LOOP_DEFAULTS:
        value = cfg[key]
        if key != "stages" and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise FeedbackError(f"[loop] {key} = {value!r}: give a number, 0 or more")
    return cfg


def run_loop(ws: Workspace, *, by: Actor | None = None, only: tuple[str, ...] = (), skip: tuple[str, ...] = (),
             dry_run: bool = False) -> dict:
    """One step of the whole loop; returns the run's report ({run_id, status, exit_code, stages, released}).
    `by` publishes the releases (a lead; in an open workspace, the local user).

        report = feedback.run_loop(ws, by=lead)
        sys.exit(report["exit_code"])
    """
    from .learn.jobs import JobBusy, job_lock

    by = by or local_actor()
    cfg = loop_config(ws)
    for name in (*only, *skip):
        if name not in STAGES:
            raise FeedbackError(f"stage {name!r} is not one of {', '.join(STAGES)}")
    chosen = [s for s in STAGES if s in cfg["stages"] and (not only or s in only) and s not in skip]
    try:
        with job_lock(ws, "run"):
            return _run(ws, cfg, chosen, dry_run, by)
    except JobBusy as exc:
        return {"run_id": None, "status": "busy", "exit_code": EXIT["busy"], "stages": [], "released": [],
                "message": str(exc)}


def list_runs(ws: Workspace, *, limit: int = 20) -> list[dict]:
    """The latest runs, newest first, each with its stages."""
    with ws.store().connect() as tx:
        runs = tx.rows("SELECT * FROM loop_runs ORDER BY started_at DESC LIMIT ?", [limit])
        stages = tx.rows("SELECT * FROM loop_stages WHERE run_id IN (SELECT unnest(?::VARCHAR[])) "
                         "ORDER BY finished_at", [[r["run_id"] for r in runs]])
    for run in runs:
        run["stages"] = [{**s, "detail": json.loads(s["detail"] or "{}")} for s in stages if s["run_id"] == run["run_id"]]
        run["released"] = [v for s in run["stages"] for v in s["detail"].get("released", [])]
    return runs


def _run(ws: Workspace, cfg: dict, chosen: list[str], dry_run: bool, by: Actor) -> dict:
    run = None if dry_run else _resume_or_start(ws, by)
    finished = {} if run is None else {s["stage"]: s for s in _stages_of(ws, run["run_id"])}
    report = {"run_id": run and run["run_id"], "resumed": bool(run and run["resumed"]), "dry_run": dry_run,
              "stages": [], "released": []}
    for stage in STAGES:
        if stage not in chosen:
            report["stages"].append({"stage": stage, "status": "skipped", "seconds": 0.0, "detail": {}})
            continue
        if stage in finished and finished[stage]["status"] in _FINISHED:
            report["stages"].append({"stage": stage, "status": finished[stage]["status"], "seconds": 0.0,
                                     "detail": {**json.loads(finished[stage]["detail"] or "{}"), "resumed": True}})
            continue
        started = time.monotonic()
        try:
            status, detail = _STAGE_RUNNERS[stage](ws, cfg, run, dry_run, by)
        except FeedbackError as exc:
            status, detail = "failed", {"error": str(exc)}
        if os.environ.get(_KILL_AFTER) == stage:
            os.kill(os.getpid(), signal.SIGKILL)
        entry = {"stage": stage, "status": status, "seconds": round(time.monotonic() - started, 3), "detail": detail}
        report["stages"].append(entry)
        if run is not None:
            _record_stage(ws, run["run_id"], entry)
    report["released"] = [v for s in report["stages"] for v in s["detail"].get("released", [])]
    statuses = {s["status"] for s in report["stages"]}
    report["status"] = ("blocked" if "blocked" in statuses else "failed" if statuses & {"failed", "check_failed"}
                        else "done")
    report["exit_code"] = EXIT[report["status"]]
    if run is not None:
        _write(ws, "UPDATE loop_runs SET finished_at = ?, status = ?, exit_code = ? WHERE run_id = ?",
               [_now(), report["status"], report["exit_code"], run["run_id"]])
    return report


def _resume_or_start(ws: Workspace, by: Actor) -> dict:
    """The unfinished run a killed process left (this one holds the lock, so that process is gone), or a new one."""
    left = ws.store().rows("SELECT run_id, started_at FROM loop_runs WHERE finished_at IS NULL "
                           "ORDER BY started_at DESC LIMIT 1")
    if left:
        _write(ws, "UPDATE loop_runs SET resumes = resumes + 1 WHERE run_id = ?", [left[0]["run_id"]])
        return {**left[0], "resumed": True}
    run = {"run_id": f"run-{_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}", "started_at": _now(), "resumed": False}
    _write(ws, "INSERT INTO loop_runs VALUES (?, ?, NULL, ?, ?, 'running', NULL, 0)",
           [run["run_id"], run["started_at"], f"{socket.gethostname()} pid {os.getpid()}", by.name])
    return run


def _stages_of(ws: Workspace, run_id: str) -> list[dict]:
    return ws.store().rows("SELECT * FROM loop_stages WHERE run_id = ? ORDER BY finished_at", [run_id])


def _record_stage(ws: Workspace, run_id: str, entry: dict) -> None:
    _write(ws, "INSERT INTO loop_stages VALUES (?, ?, ?, ?, ?)",
           [run_id, entry["stage"], _now(), entry["status"], json.dumps(entry["detail"], default=str)])


def _write(ws: Workspace, sql: str, params: list) -> None:
    with ws.store().atomic() as tx:
        tx.execute(sql, params)


def _ingest(ws: Workspace, cfg: dict, run: dict | None, dry_run: bool, by: Actor) -> tuple[str, dict]:
    from .capture import ingest_spool, spool

    if dry_run:
        return "dry_run", {"would_ingest": spool.pending_events(ws.path("spool"))}
    report = ingest_spool(ws)
    return ("done" if report.events or report.quarantined else "nothing_to_do"), {
        "events": report.events, "quarantined": report.quarantined, "duplicates": report.duplicates}


def _retry(ws: Workspace, cfg: dict, run: dict | None, dry_run: bool, by: Actor) -> tuple[str, dict]:
    from .capture import list_quarantine, retry_quarantine

    if dry_run:
        return "dry_run", {"would_retry": len(list_quarantine(ws))}
    result = retry_quarantine(ws)
    return ("done" if result["ingested"] else "nothing_to_do"), result


def _drift(ws: Workspace, cfg: dict, run: dict | None, dry_run: bool, by: Actor) -> tuple[str, dict]:
    from .monitor import drift

    report = drift(ws, queue=0 if dry_run else int(cfg["novelty_queue"]), alert=not dry_run)
    failed = [c["name"] for c in report["checks"] if c["status"] == "fail"]
    detail = {"failed_checks": failed, "novel_terms": [t["term"] for t in report["novel_terms"][:10]]}
    return ("dry_run" if dry_run else "check_failed" if failed else "done"), detail


def _sample(ws: Workspace, cfg: dict, run: dict | None, dry_run: bool, by: Actor) -> tuple[str, dict]:
    from .learn import sample

    result = sample(ws, budget=int(cfg["sample_budget"]), dry_run=dry_run, key=run and f"loop:{run['run_id']}")
    detail = {"picked": len(result.get("picks", [])), "message": result.get("message")}
    return {"busy": "failed", "repeat": "done"}.get(result["status"], result["status"]), detail


def _suspects(ws: Workspace, cfg: dict, run: dict | None, dry_run: bool, by: Actor) -> tuple[str, dict]:
    from .learn import find_suspects

    last = ws.store().value("SELECT max(finished_at) FROM loop_stages WHERE stage = 'suspects' AND status = 'done'")
    due_at = last and last + timedelta(hours=float(cfg["suspects_every_hours"]))
    if due_at and due_at > _now():
        return "not_due", {"due_at": due_at.isoformat()}
    if dry_run:
        return "dry_run", {"due": True}
    result = find_suspects(ws, limit=int(cfg["suspects_limit"]))
    status = {"busy": "failed", "nothing_to_do": "done"}.get(result["status"], result["status"])
    return status, {"queued": result.get("queued", 0), "message": result.get("message")}


def release_due(ws: Workspace, cfg: dict | None = None) -> dict:
    """Whether the policy calls for a release now: {due, labels (decided since the last release), why}."""
    from .release import list_releases

    cfg = cfg or loop_config(ws)
    made = list_releases(ws, ws.dataset)
    since = made[-1]["created_at"] if made else datetime.min
    labels = ws.store().value("SELECT count(*) FROM reviews WHERE current_label IS NOT NULL AND last_decided_at > ?",
                              [since])
    age = (_now() - since).total_seconds() / 86400 if made else None
    minimum, days = int(cfg["release_min_labels"]), float(cfg["release_max_days"])
    if labels >= minimum:
        return {"due": True, "labels": labels, "why": f"{labels:,} labels decided since the last release (>= {minimum:,})"}
    if labels and age is not None and age >= days:
        return {"due": True, "labels": labels, "why": f"{age:.1f} days since the last release (>= {days:g}) and "
                                                      f"{labels:,} new labels"}
    return {"due": False, "labels": labels, "why": f"{labels:,} labels decided since the last release "
                                                   f"(a release needs {minimum:,}, or any after {days:g} days)"}


def _release(ws: Workspace, cfg: dict, run: dict | None, dry_run: bool, by: Actor) -> tuple[str, dict]:
    from .release import GateFailed, create_release

    pending = [] if run is None else _unhooked_releases(ws, run, by)
    hooks = [attempt for version in pending for attempt in _hooks_of(ws, run, version)]
    policy = release_due(ws, cfg)
    detail = {"released": pending, "policy": policy["why"], "hooks": hooks}
    if not policy["due"]:
        return ("done" if pending else "not_due"), detail
    if dry_run:
        return "dry_run", detail
    try:
        made = create_release(ws, if_changed=True, hooks=False, by=by)
    except GateFailed as exc:
        return "blocked", {**detail, "gates": str(exc)}
    if not made["created"]:
        return ("done" if pending else "nothing_to_do"), {**detail, "message": made.get("message")}
    return "done", {**detail, "released": [*pending, made["version"]], "hooks": hooks + _hooks_of(ws, run, made["version"])}


def _unhooked_releases(ws: Workspace, run: dict, by: Actor) -> list[str]:
    """Releases this run's actor made since the run began whose hooks have not run (the process died between
    the release and its hooks): their hooks run now."""
    return [r["version"] for r in ws.store().rows(
        "SELECT version FROM releases WHERE dataset = ? AND created_by = ? AND created_at >= ? "
        "AND version NOT IN (SELECT version FROM loop_releases WHERE run_id = ?) ORDER BY number",
        [ws.dataset, by.name, run["started_at"], run["run_id"]])]


def _hooks_of(ws: Workspace, run: dict, version: str) -> list[dict]:
    """Fire a release's hooks and record that they ran (at least once: a death while they run repeats them)."""
    from .hooks import fire
    from .release import show_release

    made = show_release(ws, version)
    attempts = fire(ws, "release", {
        "dataset": made["dataset"], "version": version, "release_id": made["release_id"], "location": made["location"],
        "examples": made["examples"], "parent": made["parent"],
        "splits": {name: split["rows"] for name, split in made["splits"].items()}})
    _write(ws, "INSERT INTO loop_releases VALUES (?, ?, ?)", [run["run_id"], version, _now()])
    return attempts


_STAGE_RUNNERS = {"ingest": _ingest, "retry": _retry, "drift": _drift, "sample": _sample, "suspects": _suspects,
                  "release": _release}


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
