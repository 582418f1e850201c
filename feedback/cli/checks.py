"""Monitoring and CI commands: drift of production against the latest release, and data checks with exit codes."""

from __future__ import annotations

from pathlib import Path

import click

from .. import monitor
from ..errors import FeedbackError
from ..workspace import CONFIG_NAME, Workspace, find_workspace
from .shell import emit, output_options, progress_for, warn_failed_hooks, workspace_option


@click.command()
@click.option("--since", type=click.DateTime(), help="The window starts here (UTC); default: [drift] window_days.")
@click.option("--queue", default=0, show_default=True, type=click.IntRange(0),
              help="Queue the items carrying the top N novel terms (reason novelty).")
@workspace_option
@output_options
def drift(ws, since, queue, as_json, quiet):
    """Recent production against the latest release: label mix, confidence, error and correction rates, and
    novel vocabulary; exit 1 when a threshold ([drift] in feedback.toml) is crossed (for cron alerts).

    \b
    Examples:
      feedback drift
      feedback drift --since 2026-11-01 --queue 3 --json
    """
    report = monitor.drift(ws, since=since, queue=queue, alert=True, progress=progress_for(quiet))
    emit(report, as_json=as_json, quiet=quiet, text=_drift_text)
    warn_failed_hooks(report.get("hooks", []), "the drift alert was not passed on")
    if any(c["status"] == "fail" for c in report["checks"]):
        raise click.exceptions.Exit(1)


@click.command()
@click.argument("target", required=False, type=click.Path(exists=True, file_okay=False))
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False), help="Also write the checks as JUnit XML.")
@workspace_option(required=False)
@output_options
def check(ws, target, junit_file, as_json, quiet):
    """Data checks for CI: a workspace (quarantine, failed hooks, release gates with fitness, drift) or a release
    folder (files, schema, labels, leakage, duplicates across splits, on any machine); exit 1 when one fails.

    TARGET is a workspace or a release folder (default: the workspace, as -w finds it). A release folder's
    labels are checked against the taxonomy of the workspace it sits in, else of -w. A WARN (a gate that
    warned) does not fail the run; in JUnit it is a passing testcase with the property status=warn.

    \b
    Examples:
      feedback check -w ws --junit data-checks.xml
      feedback check releases/banking77/v2      # a trainer's CI, no workspace needed
    """
    folder = Path(target) if target else None
    if folder is not None and (folder / "manifest.json").is_file():
        results = monitor.check_release_folder(folder, ws=_workspace_near(folder) or ws, progress=progress_for(quiet))
        suite = f"release {folder}"
    else:
        ws = Workspace(folder) if folder is not None else ws or find_workspace()
        results, suite = monitor.check_workspace(ws, progress=progress_for(quiet)), f"workspace {ws.root}"
    if junit_file:
        Path(junit_file).write_text(monitor.junit_xml(results, suite=suite), encoding="utf-8")
    emit(results, as_json=as_json, quiet=quiet, text=lambda rows: "\n".join(
        f"{r['status'].upper():<4}  {r['group']}: {r['name']}: {r['message']}" for r in rows))
    if any(r["status"] == "fail" for r in results):
        raise click.exceptions.Exit(1)


@click.command()
@click.option("--log", "show_log", is_flag=True, default=True, help="Show what the hooks did (the default).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1))
@workspace_option
@output_options
def hooks(ws, show_log, limit, as_json, quiet):
    """What the [hooks] of feedback.toml did: each command run and webhook attempt, newest first.

    \b
    Example:
      feedback hooks --log
    """
    from ..hooks import hook_log

    emit(hook_log(ws, limit=limit), as_json=as_json, quiet=quiet, text=lambda rows: "\n".join(
        f"{r['ran_at']:%Y-%m-%d %H:%M:%S}  {r['event']:<8} {r['hook']:<8} #{r['attempt']} {r['status']:<7} {r['target']}  "
        f"{r['detail']}" for r in rows) or "No hook has run yet.")


def _workspace_near(folder: Path) -> Workspace | None:
    """The workspace a release folder sits in, if any (its taxonomy is checked too)."""
    for parent in folder.resolve().parents:
        if (parent / CONFIG_NAME).is_file():
            try:
                return Workspace(parent)
            except FeedbackError:
                return None
    return None


def _drift_text(r: dict) -> str:
    window = r["window"]
    lines = [f"Window {window['from'] or '-'} .. {window['to'] or '-'}: {r['requests']:,} requests; "
             f"against {r['release'] or 'no release'}"]
    lines += [f"{c['status'].upper():<4}  {c['name']}: {c['message']}" for c in r["checks"]]
    for mix in r["label_mix"]:
        top = ", ".join(f"{b['label']} {b['release']:.1%}->{b['recent']:.1%}" for b in mix["by_label"][:3])
        lines.append(f"      model {mix['model_version']}: PSI {mix['psi']:.3f}, JS {mix['js']:.3f}; most moved: {top}")
    for term in r["novel_terms"][:10]:
        lines.append(f"      new: {term['term']!r} in {term['recent']} recent texts, {term['release']} in the release "
                     f"(G2 {term['g2']:.0f}), e.g. {', '.join(term['examples'])}")
    if r.get("queued"):
        lines.append(f"Queued {r['queued']} items for novelty.")
    return "\n".join(lines)
