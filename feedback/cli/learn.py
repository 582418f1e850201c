"""The `feedback sample`, `suspects`, `evaluate` and `predict` commands, of the `feedback` command.

A run that finds nothing to do, or finds another run in progress, exits 0 and says so:
both are normal when the commands run from cron.
"""

from __future__ import annotations

import csv

import click

from .. import learn, release
from ..learn.choices import (
    DEFAULT_DIVERSITY,
    DEFAULT_STRATEGY,
    DEFAULT_SUSPECT_METHOD,
    DIVERSITY,
    PROBABILITIES,
    QUOTA_FIELDS,
    STRATEGIES,
    SUSPECT_METHODS,
)
from .shell import emit, output_options, progress_for, workspace_option


def _quotas(ctx, param, values) -> dict[str, int]:
    quotas = {}
    for text in values:
        field, _, cap = text.partition("=")
        if field not in QUOTA_FIELDS or not cap.isdigit():
            raise click.BadParameter(f"{text!r} is not FIELD=N with FIELD one of {', '.join(QUOTA_FIELDS)} "
                                     "(e.g. pred_label=5)")
        quotas[field] = int(cap)
    return quotas


@click.command()
@click.option("--budget", default=100, show_default=True, type=click.IntRange(1), help="Queue at most this many items.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default=DEFAULT_STRATEGY, show_default=True,
              help="Uncertainty: 1 - p1 (least_confidence), 1 - (p1 - p2) (margin), or normalised entropy.")
@click.option("--diversity", type=click.Choice(DIVERSITY), default=DEFAULT_DIVERSITY, show_default=True,
              help="kmeans: cluster the top candidates and pick the best of each cluster; none: top scores only.")
@click.option("--quota", "quotas", multiple=True, metavar="FIELD=N", callback=_quotas,
              help="At most N picks per value of FIELD: pred_label, model_version or source (repeatable).")
@click.option("--probabilities", type=click.Choice(PROBABILITIES), default="auto", show_default=True,
              help="stored: the production probabilities of the latest model version; fit: a model fitted on the "
                   "trusted labels; auto: stored, unless they cover under half the pool and a model can be fitted.")
@click.option("--recent-runs", default=10, show_default=True, type=click.IntRange(0),
              help="Never pick an item picked by this many latest runs.")
@click.option("--key", help="Run key (e.g. the scheduled time): a run with a key that ran before does nothing.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the clustering.")
@click.option("--dry-run", is_flag=True, help="Show the picks; queue and record nothing.")
@click.option("--report", is_flag=True, help="Show the latest runs and their yield instead of sampling.")
@click.option("--runs", default=20, show_default=True, type=click.IntRange(1), help="With --report: how many runs.")
@workspace_option
@output_options
def sample(ws, budget, strategy, diversity, quotas, probabilities, recent_runs, key, seed, dry_run, report, runs,
           as_json, quiet):
    """Queue the unlabeled items a model would learn most from (reason active_learning).

    The pool is the items not queued, not labeled and not picked by recent runs. Each run
    is recorded; one run at a time per workspace; safe to run from cron.

    \b
    Examples:
      feedback sample --budget 200 --dry-run
      feedback sample --budget 200 --quota pred_label=10 --key "$(date -u +%Y-%m-%dT%H)"
      feedback sample --report
    """
    if report:
        return emit(learn.sampler_report(ws, runs=runs), as_json=as_json, quiet=quiet, text=_report_text)
    run = learn.sample(ws, budget=budget, strategy=strategy, diversity=diversity, quotas=quotas,
                       probabilities=probabilities, recent_runs=recent_runs, key=key, dry_run=dry_run, seed=seed,
                       progress=progress_for(quiet))
    emit(run, as_json=as_json, quiet=quiet, text=lambda r: _result_text(r, [
        f"{p['rank']:>4}  {p['score']:.3f}  {p['item_id']:<14} {p['predicted'] or '-':<28} {p['text'][:60]!r}"
        for p in r["picks"]]))


@click.command()
@click.option("--method", type=click.Choice(SUSPECT_METHODS), default=DEFAULT_SUSPECT_METHOD, show_default=True,
              help="ranked: as many as the out-of-fold probabilities expect wrong, most disagreeing first; "
                   "confident_learning: off the confident joint's diagonal; disagreement: prediction is not the label.")
@click.option("--folds", default=5, show_default=True, type=click.IntRange(2), help="Cross-validation folds.")
@click.option("--limit", type=click.IntRange(1), help="Queue at most this many (the most suspicious).")
@click.option("--min-examples", type=click.IntRange(2),
              help="Judge only labels with at least this many trusted examples "
                   "(default: [learn] suspects_min_examples, else 10).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the folds and the model.")
@click.option("--dry-run", is_flag=True, help="Show the suspects; queue nothing.")
@click.option("--scores", is_flag=True,
              help="Also list every judged label's score, flagged or not (to choose your own cutoff); with --json too.")
@workspace_option
@output_options
def suspects(ws, method, folds, limit, min_examples, seed, dry_run, scores, as_json, quiet):
    """Queue trusted labels that look wrong (reason suspected_label_error), most suspicious first.

    Out-of-fold probabilities of the text model over the labeled items, and confident learning.
    A suspect suggests the likeliest other label. An item is flagged at most once.

    \b
    Examples:
      feedback suspects --dry-run
      feedback suspects --limit 100 --json
      feedback suspects --dry-run --scores --json > scores.json
    """
    found = learn.find_suspects(ws, method=method, folds=folds, limit=limit, min_examples=min_examples,
                                dry_run=dry_run, scores=scores, seed=seed, progress=progress_for(quiet))
    emit(found, as_json=as_json, quiet=quiet, text=lambda r: _result_text(r, [
        f"{s['score']:.3f}  {s['item_id']:<14} {s['label']} -> {s['suggested']}  {s['text'][:60]!r}"
        for s in r["suspects"]] + [
        f"{s['score']:.3f}  {s['item_id']:<14} {s['label']:<30} {'flagged' if s['flagged'] else ''}"
        for s in sorted(r.get("scores", []), key=lambda s: -s["score"])]))


@click.command()
@click.argument("ref", metavar="[RELEASE]", required=False)
@click.option("--csv", "csv_file", type=click.File("w", encoding="utf-8"), metavar="FILE",
              help="Also write each label's precision, recall, F1, support and confusion row to FILE (- for stdout).")
@workspace_option
@output_options
def evaluate(ws, ref, csv_file, as_json, quiet):
    """Train the reference model on a release's train split and score it on its test split.

    Accuracy, macro-F1, each label's precision, recall and F1, and the confusion matrix (rows the
    true label, columns the predicted one, in the release's class order). RELEASE defaults to the
    latest. The model is `[learn] model` of feedback.toml, else tf-idf + logistic regression.

    \b
    Examples:
      feedback evaluate
      feedback evaluate v2 --json
      feedback evaluate v2 --csv v2-metrics.csv
    """
    report = release.evaluate(ws, ref)
    if csv_file:
        _write_csv(report, csv_file)
    emit(report, as_json=as_json, quiet=quiet or getattr(csv_file, "name", None) == "<stdout>", text=_evaluate_text)


@click.command()
@click.argument("texts", metavar="TEXT...", nargs=-1, required=True)
@click.option("--release", "ref", metavar="RELEASE", help="Train on this release (default: the latest).")
@click.option("--top", default=3, show_default=True, type=click.IntRange(1), help="Show this many labels per text.")
@workspace_option
@output_options
def predict(ws, texts, ref, top, as_json, quiet):
    """The reference model's likeliest labels for each TEXT, trained on a release's train split.

    \b
    Examples:
      feedback predict "where is my new card" "I was charged twice"
      feedback predict --release v2 --top 5 --json "my card was stolen"
    """
    emit(release.predict(ws, list(texts), release=ref, top=top), as_json=as_json, quiet=quiet,
         text=lambda rows: "\n".join(f"{r['text']!r}\n" + "\n".join(
             f"  {p['probability']:.3f}  {p['label']}" for p in r["labels"]) for r in rows))


def _evaluate_text(r: dict) -> str:
    lines = [f"{r['release']}: {r['model']} trained on {r['train']:,} train examples, scored on {r['test']:,} test "
             f"examples", f"accuracy {r['accuracy']:.3f}, macro-F1 {r['macro_f1']:.3f}", ""]
    width = max(len(label) for label in r["labels"])
    lines.append(f"{'label':<{width}}  precision  recall     f1  support")
    lines += [f"{p['label']:<{width}}  {p['precision']:>9.3f}  {p['recall']:>6.3f}  {p['f1']:>5.3f}  {p['support']:>7,}"
              for p in r["per_label"]]
    lines.append("")
    if len(r["labels"]) <= _MATRIX_LABELS:
        lines.append("confusion (rows: true label, columns: predicted, numbered as above):")
        lines.append(" " * (width + 4) + "".join(f"{n:>6}" for n in range(1, len(r["labels"]) + 1)))
        lines += [f"{n:>2}  {label:<{width}}" + "".join(f"{c:>6,}" for c in row)
                  for n, (label, row) in enumerate(zip(r["labels"], r["confusion"]), start=1)]
    else:
        errors = sorted(((count, true, predicted) for true, row in zip(r["labels"], r["confusion"])
                         for predicted, count in zip(r["labels"], row) if count and true != predicted), reverse=True)
        lines.append("most frequent confusions (the whole matrix: --csv FILE or --json):")
        lines += [f"{count:>6,}  {true} -> {predicted}" for count, true, predicted in errors[:_MATRIX_LABELS]]
    return "\n".join(lines)


_MATRIX_LABELS = 12  # beyond, the text shows the most frequent confusions instead of the whole matrix


def _write_csv(r: dict, file) -> None:
    """One row per true label: its metrics, then how many of its test examples went to each predicted label."""
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(["label", "precision", "recall", "f1", "support", *(f"predicted:{label}" for label in r["labels"])])
    writer.writerows([p["label"], f"{p['precision']:.6f}", f"{p['recall']:.6f}", f"{p['f1']:.6f}", p["support"], *row]
                     for p, row in zip(r["per_label"], r["confusion"]))


def _result_text(result: dict, lines: list[str]) -> str:
    head = result["message"][:1].upper() + result["message"][1:] + "."
    if result["status"] == "dry_run":
        head = f"Dry run, nothing queued or recorded. {head}"
    return "\n".join([head, *lines])


def _report_text(report: dict) -> str:
    if not report["runs"]:
        return "No sample runs yet; run `feedback sample`."
    row = "{:<27} {:<16} {:<13} {:<16} {:>6} {:>8} {:>9} {:>5}".format

    def counts(r):
        return r["picked"], r["reviewed"], r["relabeled"], "-" if r["yield"] is None else f"{r['yield']:.2f}"

    lines = [row("run", "started (UTC)", "status", "strategy", "picked", "reviewed", "relabeled", "yield")]
    lines += [row(r["run_id"], f"{r['started_at']:%Y-%m-%d %H:%M}", r["status"], r["strategy"], *counts(r))
              for r in report["runs"]]
    lines.append(row("total", "", "", "", *counts(report["total"])))
    lines.append("Yield: the share of reviewed picks whose label differs from the model's prediction.")
    return "\n".join(line.rstrip() for line in lines)
