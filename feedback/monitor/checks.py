"""Data tested like code: checks with a status each (pass, warn, fail, skip), for CI, without the app.

A workspace's checks: the quarantine (rows quarantined since the last check: a producer broke the
contract), the hooks (any that failed or timed out since the last check: the training run a release
should have started did not), the release gates on the trusted labels as they stand (the release that
would be made now, the fitness gate included, or a skip saying it is off), and the drift thresholds
(`learn.drift`). A release folder's checks, on any machine (a
trainer's CI needs no workspace): its files and digests (`verify`), the data files' schema,
labels among the release's classes (and in the taxonomy, given a workspace), no duplicate group
across splits (leakage), no text in two splits once normalised.

Each check is {"name", "group", "status": pass | warn | fail | skip, "message"}; only `fail` fails a
run (a gate's `warn` never stops a release), but `warn` is never shown as `pass`. `junit_xml` writes
them as JUnit testcases, so a pipeline shows a data bug like a code bug.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from xml.etree import ElementTree

import pyarrow.compute as pc

from .. import hooks
from ..capture.quarantine import OPEN
from ..errors import FeedbackError
from ..learn.drift import drift_report
from ..progress import Progress, Steps
from ..release.files import DATA_SCHEMA, INDEX, MANIFEST, Destination, read_splits
from ..release.releases import candidate_gates, list_releases, load_release
from ..release.verify import check_release
from ..review.similar import normalise
from ..workspace import Workspace


def check_workspace(ws: Workspace, *, progress: Progress | None = None) -> list[dict]:
    """The workspace's checks; the run is recorded, so the next one counts quarantine rows from here.

        failed = [c for c in feedback.monitor.check_workspace(ws) if c["status"] == "fail"]
    """
    with Steps(progress, 3, "checking the quarantine") as job:
        checks = _workspace_checks(ws, job)
    return checks


def _workspace_checks(ws: Workspace, job: Steps) -> list[dict]:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with ws.store().connect() as tx:
        last = tx.value("SELECT max(ran_at) FROM check_runs WHERE target = 'workspace'")
        fresh = tx.rows(f"SELECT q.reason, count(*) AS n FROM quarantine q WHERE ({OPEN}) "
                        "AND (?::TIMESTAMP IS NULL OR q.quarantined_at > ?) GROUP BY 1 ORDER BY 2 DESC", [last, last])
    since = f"since the last check ({last:%Y-%m-%d %H:%M} UTC)" if last else "so far"
    failed = hooks.failed_hooks(ws, since=last)
    checks = [_check("quarantine", "capture", not fresh,
                     f"{sum(r['n'] for r in fresh):,} events quarantined {since}: "
                     + ", ".join(f"{r['reason']} {r['n']:,}" for r in fresh) + "; see `feedback quarantine`"
                     if fresh else f"no events quarantined {since}"),
              _check("hooks", "hooks", not failed, f"hooks failed {since} ({len(failed)}): "
                     + "; ".join(hooks.describe(f) for f in failed[-3:]) if failed else f"no hook failed {since}")]
    job.advance(stage="running the release gates")
    try:
        gates = candidate_gates(ws)
    except FeedbackError as exc:  # nothing to release yet
        checks.append({"name": "release gates", "group": "release", "status": "skip", "message": str(exc)})
    else:
        checks += [{"name": f"gate {g['gate']}", "group": "release", "status": g["status"], "message": g["detail"]}
                   for g in gates]
        if not any(g["gate"] == "fitness" for g in gates):
            checks.append({"name": "gate fitness", "group": "release", "status": "skip", "message":
                           "off: set [release.gates] fitness = true to compare a model trained on the release "
                           "with one trained on its parent"})
    job.advance(stage="measuring drift")
    checks += [{"name": f"drift {d['name']}", "group": "drift", "status": d["status"], "message": d["message"]}
               for d in drift(ws)["checks"]]
    _record(ws, "workspace", checks, now)
    return checks


def drift(ws: Workspace, *, since: datetime | None = None, queue: int = 0, alert: bool = False,
          progress: Progress | None = None) -> dict:
    """Recent production against the latest release (the measures and checks of `learn.drift`); with `alert`,
    a failed check runs the `on_drift` hooks.

        report = feedback.monitor.drift(ws, queue=3)
        print([t["term"] for t in report["novel_terms"]])
    """
    made = list_releases(ws)
    name = f"{made[-1]['dataset']}/{made[-1]['version']}" if made else None
    with Steps(progress, 4, "reading the release") as job:
        release = load_release(name, ws=ws, format="arrow", verify=False) if name else None
        report = drift_report(ws, release, release_name=name, since=since, queue=queue, job=job)
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    if alert and failed:
        report["hooks"] = hooks.fire(ws, "drift", {"release": name, "window": report["window"], "failed": failed})
    return report


def check_release_folder(path: str | Path, *, ws: Workspace | None = None,
                         progress: Progress | None = None) -> list[dict]:
    """A release folder's checks, read from the folder alone (and the taxonomy, given `ws`)."""
    with Steps(progress, 2, "verifying the files") as job:
        return _release_checks(Destination(str(path)), ws, job)


def _release_checks(dest: Destination, ws: Workspace | None, job: Steps) -> list[dict]:
    folder = dest.root
    problems = check_release(dest, folder)
    job.advance(stage="checking the examples")
    checks = [_check("verify", "release", not problems, "; ".join(f"{p['file']}: {p['problem']}" for p in problems)
                     or "every file matches SHA256SUMS; every split's rows and digest match the manifest")]
    if problems:  # the other checks read the files: they would judge what the build did not write
        return checks + [{"name": name, "group": "release", "status": "skip", "message": "the folder failed verify"}
                         for name in ("schema", "labels", "leakage", "duplicates across splits")]
    manifest = json.loads(dest.read(f"{folder}/{MANIFEST}"))
    data = read_splits(dest, folder, manifest["splits"], list(manifest["splits"]))
    wrong = [f"{f.name} is {data.schema.field(f.name).type}" for f in DATA_SCHEMA
             if f.name not in data.schema.names or data.schema.field(f.name).type != f.type]
    checks.append(_check("schema", "release", not wrong, "; ".join(wrong) or "id, text and label are strings"))
    classes = set(manifest.get("class_names") or [])
    if ws is not None and ws.taxonomy.mode == "fixed":
        classes &= ws.taxonomy.names
    outside = sorted(set(pc.unique(data["label"]).to_pylist()) - classes)
    checks.append(_check("labels", "release", not outside, f"labels outside the classes: {', '.join(outside[:10])}"
                         if outside else f"every label is one of the {len(classes)} classes"))
    index = dest.read_parquet(f"{folder}/{INDEX}", columns=["id", "split", "group"])
    checks.append(_across_splits("leakage", index["group"].to_pylist(), index["split"].to_pylist(),
                                 "duplicate groups"))
    checks.append(_across_splits("duplicates across splits", [normalise(t) for t in data["text"].to_pylist()],
                                 data["split"].to_pylist(), "texts (once normalised)"))
    return checks


def junit_xml(checks: list[dict], *, suite: str) -> str:
    """The checks as a JUnit XML report: one testcase each, a failure (or skipped) with its message.

    Every testcase carries `<properties><property name="status" value="pass|warn|fail|skip"/>`; a warning
    passes (JUnit has no warning) but says so in its system-out (`WARN: ...`), and the suite counts them
    in a `warnings` property.
    """
    failures = sum(c["status"] == "fail" for c in checks)
    skipped = sum(c["status"] == "skip" for c in checks)
    root = ElementTree.Element("testsuite", name=suite, tests=str(len(checks)), failures=str(failures),
                               skipped=str(skipped))
    ElementTree.SubElement(ElementTree.SubElement(root, "properties"), "property", name="warnings",
                           value=str(sum(c["status"] == "warn" for c in checks)))
    for c in checks:
        case = ElementTree.SubElement(root, "testcase", classname=f"feedback.{c['group']}", name=c["name"])
        ElementTree.SubElement(ElementTree.SubElement(case, "properties"), "property", name="status", value=c["status"])
        if c["status"] == "fail":
            ElementTree.SubElement(case, "failure", message=c["message"][:1000]).text = c["message"]
        elif c["status"] == "skip":
            ElementTree.SubElement(case, "skipped", message=c["message"][:1000])
        else:
            ElementTree.SubElement(case, "system-out").text = ("WARN: " if c["status"] == "warn" else "") + c["message"]
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)


def _check(name: str, group: str, ok: bool, message: str) -> dict:
    return {"name": name, "group": group, "status": "pass" if ok else "fail", "message": message}


def _across_splits(name: str, keys: list, splits: list[str], what: str) -> dict:
    seen: dict = {}
    for key, split in zip(keys, splits):
        if key is not None:
            seen.setdefault(key, set()).add(split)
    spanning = [key for key, found in seen.items() if len(found) > 1]
    return _check(name, "release", not spanning, f"{len(spanning):,} {what} appear in two splits or more, e.g. "
                  f"{str(spanning[0])[:80]!r}" if spanning else f"no {what} in two splits")


def _record(ws: Workspace, target: str, checks: list[dict], at: datetime) -> None:
    failed = sum(c["status"] == "fail" for c in checks)
    with ws.store().atomic() as tx:
        tx.execute("INSERT INTO check_runs VALUES (?, ?, ?, ?, ?)",
                   [at, target, len(checks) - failed, failed, json.dumps(checks)])
