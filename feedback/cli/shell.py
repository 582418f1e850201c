"""What every subcommand shares: the error translation, the common options, rendering and progress.

Exit codes: 0 success, 1 a user-facing error (`Error: ...`), 2 misuse.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from datetime import datetime

import click

from .. import roles
from ..errors import FeedbackError, WorkspaceError
from ..workspace import Workspace, find_workspace


class Shell(click.Group):
    """Translates library errors into `Error: ...` and exit code 1, once for every command."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FeedbackError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)


def workspace_option(fn=None, *, required: bool = True):
    """The shared --workspace option, found as `find_workspace` says; `required=False` passes None when there is none."""
    def decorate(fn):
        @click.option("--workspace", "-w", type=click.Path(file_okay=False), envvar="FEEDBACK_WORKSPACE",
                      help="Workspace folder (default: $FEEDBACK_WORKSPACE, else the current folder or a parent).")
        @functools.wraps(fn)
        def wrapper(*args, workspace=None, **kwargs):
            try:
                ws = find_workspace(workspace)
            except WorkspaceError:
                if required or workspace:
                    raise
                ws = None
            return fn(*args, ws=ws, **kwargs)

        return wrapper

    return decorate(fn) if fn else decorate


def reviewer_option(fn):
    return click.option("--reviewer", "-r", envvar="FEEDBACK_USER",
                        help="Who is acting (default: $FEEDBACK_USER). Where the workspace has users, sign in with "
                             "$FEEDBACK_TOKEN, $FEEDBACK_PASSWORD or the password prompt.")(fn)


def signed_in(ws: Workspace, name: str | None) -> roles.Actor:
    """The acting user: anyone by name in an open workspace; else proven by $FEEDBACK_TOKEN or a password."""
    with ws.store().connect():  # the reads of the users join one opening of the store (none held at a prompt)
        if not roles.users(ws):
            return roles.actor(ws, name)
    token = os.environ.get("FEEDBACK_TOKEN")
    if token:
        who = roles.authenticate_token(ws, token)
        if name and name != who.name:
            raise FeedbackError(f"$FEEDBACK_TOKEN signs in {who.name}, not {name}")
        return who
    if not name:
        raise FeedbackError("who is acting? pass --reviewer NAME (or set FEEDBACK_USER) and sign in")
    password = os.environ.get("FEEDBACK_PASSWORD")
    if password is None:
        if not sys.stdin.isatty():
            raise FeedbackError(f"sign in as {name}: set FEEDBACK_PASSWORD, or FEEDBACK_TOKEN "
                                "(make one with `feedback token create`), or run on a terminal to be asked")
        password = click.prompt(f"Password for {name}", hide_input=True, err=True)
    return roles.authenticate(ws, name, password)


def output_options(fn):
    fn = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(fn)
    return click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")(fn)


def emit(data, *, as_json: bool, quiet: bool, text=None) -> None:
    """Render a command's result: JSON, the text renderer's lines, or nothing."""
    if quiet:
        return
    if as_json:
        click.echo(json.dumps(data, indent=2, default=_json_value))
    else:
        click.echo(text(data) if text else str(data))


def warn_failed_hooks(attempts: list[dict], outcome: str) -> None:
    """Say on stderr, whatever the output options, which hooks the command fired failed or timed out."""
    from ..hooks import describe, failures  # subprocess and urllib: only for the commands that fire hooks

    for failure in failures(attempts):
        click.echo(f"Warning: {describe(failure)}; {outcome}", err=True)


def _json_value(value) -> str:
    """Times as ISO 8601 (the store keeps UTC), the same form everywhere; anything else as text."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds") + ("Z" if value.tzinfo is None else "")
    return str(value)


def parse_pair(text: str, option: str = "--map") -> tuple[str, str]:
    field, sep, column = text.partition("=")
    if not sep or not field or not column:
        raise click.BadParameter(f"{text!r} is not FIELD=VALUE (e.g. input.text=message)", param_hint=option)
    return field, column


class ProgressBar:
    """Draws a job's progress callbacks (`feedback.progress`) on stderr: a bar, the counts, the rate, the stage."""

    WIDTH, EVERY = 30, 0.1

    def __init__(self):
        self.started = self.drawn = time.monotonic()
        self.line, self.closed = "", False

    def __call__(self, stage: str, done: int, total: int) -> None:
        moment = time.monotonic()
        last = done >= total
        if self.closed or (moment - self.drawn < self.EVERY and not last):
            return
        self.drawn = moment
        filled = int(self.WIDTH * done / total) if total else self.WIDTH
        rate = done / max(moment - self.started, 1e-6)
        line = (f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {_count(done)}/{_count(total)} "
                f"{_count(rate)}/s  {stage}")
        click.echo("\r" + line.ljust(len(self.line)), err=True, nl=last)
        self.line, self.closed = line, last


def progress_for(quiet: bool) -> ProgressBar | None:
    """A progress bar for a long command: on a terminal, unless --quiet."""
    return ProgressBar() if sys.stderr.isatty() and not quiet else None


def _count(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


