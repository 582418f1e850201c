"""Progress of long jobs: the library reports it through an optional callback and never prints.

A callback is called as `progress(stage, done, total)`: one counter per job that only grows, from
0 to `total` (the last call has done == total), and `stage` saying what the job is doing now
("bytes read", "fitting the model", "fold 2 of 5"). The CLI draws these as a bar on stderr;
a notebook can feed them to tqdm:

    bar = tqdm(total=1)
    def progress(stage, done, total):
        bar.total, bar.n = total, done
        bar.set_description(stage)
        bar.refresh()
    feedback.learn.sample(ws, budget=200, progress=progress)
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]


class Steps:
    """A job of `total` units reported to `progress` (None: reported nowhere); `with Steps(...) as job:`."""

    def __init__(self, progress: Progress | None, total: int, stage: str = "starting"):
        self.progress, self.total, self.done, self.stage = progress, max(0, int(total)), 0, stage
        self._report()

    def advance(self, units: int = 1, *, stage: str | None = None) -> None:
        """`units` more done; `stage`, when given, is what the job does next."""
        self.done = min(self.total, self.done + units)
        self.stage = stage or self.stage
        self._report()

    def at(self, done: int, *, stage: str | None = None) -> None:
        """The job has done `done` units in all (never fewer than before)."""
        self.advance(max(0, min(self.total, done) - self.done), stage=stage)

    def finish(self, stage: str = "done") -> None:
        self.at(self.total, stage=stage)

    def __enter__(self) -> Steps:
        return self

    def __exit__(self, *exc) -> None:
        """Leaving the job (done, or by an error) reports it finished, so a bar closes its line."""
        self.finish()

    def _report(self) -> None:
        if self.progress:
            self.progress(self.stage, self.done, self.total)
