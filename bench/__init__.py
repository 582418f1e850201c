"""Benchmarks of feedback-workbench, each measured against a raw baseline in the same run.

`python -m bench` runs every module of this package that defines `run(scale) -> list[dict]`
and prints one table of their rows (see README.md). Modules build rows with `result`.
"""

from __future__ import annotations

COLUMNS = ("benchmark", "measure", "value", "unit", "baseline", "ratio", "target", "ok")


def result(benchmark: str, measure: str, value: float, unit: str, *, target: str, ok: bool,
           baseline: float | None = None) -> dict:
    """One result row; `ratio` is value / baseline when there is a baseline."""
    ratio = value / baseline if baseline else None
    return {"benchmark": benchmark, "measure": measure, "value": value, "unit": unit,
            "baseline": baseline, "ratio": ratio, "target": target, "ok": bool(ok)}
