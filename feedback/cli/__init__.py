"""The `feedback` command: one subcommand per library function, grouped by the part of the loop.

Each group module (`workspace`, `capture`, `review`, `learn`, `release`, `checks`, `store`) takes its shared options
and error handling from `shell`, never from another group. Library modules load on first use,
so `feedback --help` and `--version` import none of the heavy libraries.
"""

import click

from . import capture, checks, learn, loop, release, review, store, taxonomy, workspace
from .shell import Shell


@click.group(cls=Shell, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="feedback-workbench")
def main():
    """Capture production model feedback, review it, and release versioned datasets.

    \b
    Example:
      feedback init ws --dataset banking77 --labels sample_data/taxonomy.json
      feedback -h
    """


for command in (
    workspace.init, workspace.status, workspace.labels, workspace.user_add, workspace.token_group,
    workspace.label_add, workspace.demo,
    capture.ingest, capture.quarantine, capture.serve, capture.schema,
    review.queue_command, review.next_command, review.label, review.import_labels, review.undo, review.history,
    review.agreement, review.groups, review.not_duplicates, review.relabel, review.adjudicate, review.gold, review.enqueue, review.forget,
    learn.sample, learn.suspects, learn.evaluate, learn.predict, checks.drift, checks.check, checks.hooks,
    release.release_group, store.store_group, taxonomy.taxonomy_group, loop.run_command, loop.runs_command,
):
    main.add_command(command)
