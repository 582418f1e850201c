"""What every subcommand shares: the error translation, the common options, rendering and progress.

Exit codes: 0 success, 1 a user-facing error (`Error: ...`), 2 misuse.
"""

from __future__ import annotations

import functools
import json

import click

from ..errors import FeedbackError
from ..workspace import find_workspace


class Shell(click.Group):
    """Translates library errors into `Error: ...` and exit code 1, once for every command."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FeedbackError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)


def workspace_option(fn):
    @click.option("--workspace", "-w", type=click.Path(file_okay=False), envvar="FEEDBACK_WORKSPACE",
                  help="Workspace folder (default: $FEEDBACK_WORKSPACE, else the current folder or a parent).")
    @functools.wraps(fn)
    def wrapper(*args, workspace=None, **kwargs):
        return fn(*args, ws=find_workspace(workspace), **kwargs)

    return wrapper


def reviewer_option(fn):
    return click.option("--reviewer", "-r", envvar="FEEDBACK_USER",
                        help="Who is acting (default: $FEEDBACK_USER); their role comes from the workspace.")(fn)


def output_options(fn):
    fn = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(fn)
    return click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")(fn)


def emit(data, *, as_json: bool, quiet: bool, text=None) -> None:
    """Render a command's result: JSON, the text renderer's lines, or nothing."""
    if quiet:
        return
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(text(data) if text else str(data))




def parse_pair(text: str, option: str = "--map") -> tuple[str, str]:
    field, sep, column = text.partition("=")
    if not sep or not field or not column:
        raise click.BadParameter(f"{text!r} is not FIELD=VALUE (e.g. input.text=message)", param_hint=option)
    return field, column


def progress_bar(done: int, total: int) -> None:
    width = 40
    filled = int(width * done / total) if total else width
    click.echo(f"\r[{'#' * filled}{'.' * (width - filled)}] {done / 1e6:,.1f}/{total / 1e6:,.1f} MB", err=True, nl=False)


