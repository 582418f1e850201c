"""The `feedback run` and `feedback runs` commands: one scheduled step of the whole loop, and the runs it left.

`feedback run` exits with a code a scheduler can act on: 0 done, 1 a stage failed or a check crossed its
threshold, 2 blocked (a release was due and a gate refused it), 75 busy (another run holds the lock).
"""

from __future__ import annotations

import click

from .. import loop, roles
from .shell import emit, output_options, reviewer_option, signed_in, warn_failed_hooks, workspace_option


@click.command("run")
@click.option("--only", multiple=True, type=click.Choice(loop.STAGES), help="Run only this stage (repeatable).")
@click.option("--skip", multiple=True, type=click.Choice(loop.STAGES), help="Leave this stage out (repeatable).")
@click.option("--dry-run", is_flag=True, help="Say what each stage would do; change nothing, record nothing.")
@reviewer_option
@workspace_option
@output_options
def run_command(ws, only, skip, dry_run, reviewer, as_json, quiet):
    """One step of the loop: ingest, retry quarantine, drift, sample, suspects, then a release when the policy
    says ([loop] in feedback.toml); safe under any scheduler.

    \b
    Examples:
      feedback run -w /srv/feedback -r lena          # from cron or a systemd timer; lena publishes releases
      feedback run --dry-run
      feedback run --only ingest --only sample --json
    """
    who = signed_in(ws, reviewer) if reviewer or roles.users(ws) else None  # open: the local user publishes
    report = loop.run_loop(ws, by=who, only=only, skip=skip, dry_run=dry_run)
    warn_failed_hooks([h for s in report["stages"] for h in s["detail"].get("hooks", [])],
                      "the release stands all the same")
    emit(report, as_json=as_json, quiet=quiet, text=_report_text)
    raise click.exceptions.Exit(report["exit_code"])


@click.command("runs")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1), help="How many runs, newest first.")
@workspace_option
@output_options
def runs_command(ws, limit, as_json, quiet):
    """The latest runs of `feedback run`: when, how each stage ended, the releases they made.

    \b
    Example:
      feedback runs --limit 5
    """
    emit(loop.list_runs(ws, limit=limit), as_json=as_json, quiet=quiet, text=_runs_text)


def _report_text(r: dict) -> str:
    if r["status"] == "busy":
        return f"Busy: {r['message']}"
    head = ("Dry run, nothing changed or recorded" if r["dry_run"] else
            f"Run {r['run_id']}{' (resumed)' if r['resumed'] else ''}: {r['status']}, exit {r['exit_code']}")
    lines = [head] + [f"  {s['stage']:<9} {s['status']:<13} {s['seconds']:7.2f} s  {_detail(s['detail'])}"
                      for s in r["stages"]]
    if r["released"]:
        lines.append(f"Released {', '.join(r['released'])}")
    return "\n".join(lines)


def _runs_text(runs: list[dict]) -> str:
    if not runs:
        return "No runs yet (`feedback run`)."
    lines = []
    for r in runs:
        stages = " ".join(f"{s['stage']}:{s['status']}" for s in r["stages"])
        code = "-" if r["exit_code"] is None else r["exit_code"]
        released = f"  released {', '.join(r['released'])}" if r["released"] else ""
        lines.append(f"{r['run_id']}  {r['started_at']:%Y-%m-%d %H:%M:%S}  {r['status']:<8} exit {code}  {stages}{released}")
    return "\n".join(lines)


def _detail(detail: dict) -> str:
    shown = {k: v for k, v in detail.items() if k not in ("hooks", "released") and v not in (None, [], {})}
    return ", ".join(f"{k} {v}" for k, v in shown.items())
