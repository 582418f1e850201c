"""Quality gates, run on the examples before a release is written.

Each gate gives `pass`, `fail`, `warn` (never stops a build) or `skip` (does not apply),
a detail that says what to fix, and up to `SAMPLE` example ids. Thresholds come from
`[release.gates]` in feedback.toml:
- schema: ids unique, text and label present and not blank, columns of the declared types;
- taxonomy: no label was retired or renamed away by a taxonomy change (either taxonomy), and with a fixed
  taxonomy every label is in it;
- conflicts: copies of one text (the same once normalised) carry one label, else `fail`; near-duplicates
  with different labels only `warn` (near-copies may differ in a word that matters; mark them "not
  duplicates", or relabel them);
- leakage: no duplicate group spans splits;
- agreement: Krippendorff's alpha of the workspace's reviewers >= `min_agreement`, once
  at least `min_overlap` items have label decisions by two or more reviewers;
- min_per_label: every label present has >= `min_per_label` examples;
- label_shift: the label distribution moved less than `max_label_shift` (total variation
  distance) from the parent release, else `warn`;
- second_review: `warn` when examples wait for a second reviewer (review status `second_review`): they ship
  the label the rule trusted before the disagreement.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..review.renames import label_map
from ..workspace import Workspace
from .files import DATA_SCHEMA
from .split import spanning

DEFAULTS = {"min_agreement": 0.6, "min_overlap": 10, "min_per_label": 5, "max_label_shift": 0.2, "fitness": False,
            "fitness_margin": 0.02}
SAMPLE = 10


def run_gates(ws: Workspace, examples: pa.Table, *, same_text: np.ndarray, duplicates: np.ndarray, splits: np.ndarray,
              split_names: list[str], counts: dict[str, int], parent_counts: dict[str, int] | None,
              agreement: dict | None, config: dict) -> list[dict]:
    """Every gate's result but fitness's, in the order of `choices.GATES`.

    `counts` and `parent_counts` are examples per label here and in the parent release;
    `agreement` is `review.reviewer_agreement(ws)`, or None where no decisions overlap.
    """
    labels = examples["label"]
    return [
        _schema(examples),
        _taxonomy(ws, examples),
        _conflicts(examples, same_text, duplicates, _codes(labels)),
        _spanning("leakage", examples, duplicates, splits, lambda row: split_names[splits[row]],
                  ("duplicate group spans", "duplicate groups span"), "splits; making one whole would move a "
                  "released example to another split, which releases never do: junk the new near-copy, or override "
                  "the gate"),
        _agreement(agreement, config["min_agreement"], config["min_overlap"]),
        _min_per_label(counts, config["min_per_label"]),
        _label_shift(counts, parent_counts, config["max_label_shift"]),
        _second_review(examples),
    ]


def _count(n: int, one: str, many: str) -> str:
    """`n` and the words that go with it: "1 text appears", "2 texts appear"."""
    return f"{n:,} {one if n == 1 else many}"


def _result(gate: str, status: str, detail: str, ids: list[str] = ()) -> dict:
    return {"gate": gate, "status": status, "detail": detail, "examples": list(ids)}


def _ids(examples: pa.Table, rows: np.ndarray) -> list[str]:
    return examples["id"].take(pa.array(rows[:SAMPLE], pa.int64())).to_pylist()


def _schema(examples: pa.Table) -> dict:
    """Types, blank texts and labels, and repeated ids (adjacent, since examples are sorted by id)."""
    wrong = [f"{f.name} is {examples.schema.field(f.name).type}, not {f.type}" for f in DATA_SCHEMA
             if examples.schema.field(f.name).type != f.type]
    blank = [pc.or_(pc.equal(pc.utf8_length(column), 0), pc.utf8_is_space(column)).fill_null(True)
             for column in (examples["text"], examples["label"])]
    bad = np.flatnonzero(np.asarray(pc.or_(*blank)))
    ids = examples["id"]
    repeated = pc.sum(pc.equal(ids[1:], ids[:-1])).as_py() or 0 if len(ids) > 1 else 0
    problems = wrong + [_count(len(bad), "example has", "examples have") + " a blank text or label"] * bool(len(bad))
    problems += [_count(repeated, "id is", "ids are") + " repeated"] * bool(repeated)
    if problems:
        return _result("schema", "fail", "; ".join(problems) + "; junk those items or fix them", _ids(examples, bad))
    return _result("schema", "pass", f"{examples.num_rows:,} examples: id, text and label present")


def _taxonomy(ws: Workspace, examples: pa.Table) -> dict:
    labels = examples["label"]
    with ws.store().connect() as tx:
        gone = label_map(tx)
    retired = sorted(set(gone) | ws.taxonomy.retired)
    held = _rows_with(labels, retired)
    if len(held):
        found = Counter(labels.take(pa.array(held, pa.int64())).to_pylist())
        names = ", ".join(f"{k} ({v})" + (f" -> {gone[k]}" if gone.get(k) else "") for k, v in sorted(found.items()))
        return _result("taxonomy", "fail", f"labels retired by taxonomy changes: {names}; relabel those items "
                       "(feedback queue --reason taxonomy) or undo the change (feedback taxonomy log)", _ids(examples, held))
    if ws.taxonomy.mode == "open":
        return _result("taxonomy", "skip", "open taxonomy: any label is accepted")
    outside = np.flatnonzero(np.asarray(pc.invert(pc.is_in(labels, pa.array(sorted(ws.taxonomy.names), pa.string())))))
    if len(outside):
        found = Counter(labels.take(pa.array(outside, pa.int64())).to_pylist())
        names = ", ".join(f"{k} ({v})" for k, v in sorted(found.items()))
        return _result("taxonomy", "fail", f"labels not in the taxonomy: {names}; add them to [taxonomy] in "
                       "feedback.toml or relabel the examples", _ids(examples, outside))
    return _result("taxonomy", "pass", f"every label is in the fixed taxonomy of {len(ws.taxonomy.names)}")


def _rows_with(column: pa.ChunkedArray, values: list) -> np.ndarray:
    return np.flatnonzero(np.asarray(pc.is_in(column, pa.array(values, column.type)).fill_null(False)))


def _second_review(examples: pa.Table) -> dict:
    """Examples waiting for a second reviewer (none when the selection carries no `review_status`)."""
    if "review_status" not in examples.column_names:
        return _result("second_review", "pass", "no example waits for a second review")
    waiting = _rows_with(examples["review_status"], ["second_review"])
    if not len(waiting):
        return _result("second_review", "pass", "no example waits for a second review")
    sample = ", ".join(_ids(examples, waiting)[:5])
    return _result("second_review", "warn", f"{_count(len(waiting), 'example waits', 'examples wait')} for a second "
                   f"reviewer and ship the label trusted before the disagreement (e.g. {sample}); see "
                   "`feedback queue --reason second_review`", _ids(examples, waiting))


def _spanning(gate: str, examples: pa.Table, groups: np.ndarray, codes: np.ndarray, show, what: tuple[str, str],
              fix: str) -> dict:
    """Groups whose members differ in `codes`; `what` names one such group and several ("text appears", "texts
    appear"), `fix` goes on."""
    found = spanning(groups, codes)
    if not found:
        return _result(gate, "pass", f"no {gate}")
    ids = examples["id"]
    example = ", ".join(f"{ids[row].as_py()} ({show(row)})" for row in found[0][:SAMPLE])
    return _result(gate, "fail", f"{_count(len(found), *what)} {fix}; for example {example}",
                   _ids(examples, np.concatenate(found[:SAMPLE])))


def _conflicts(examples: pa.Table, same_text: np.ndarray, duplicates: np.ndarray, codes: np.ndarray) -> dict:
    labels = examples["label"]
    copies = _spanning("conflicts", examples, same_text, codes, lambda row: labels[row].as_py(),
                       ("text appears", "texts appear"), "with different labels; relabel the copies to one label "
                       "(feedback groups, feedback relabel)")
    if copies["status"] == "fail":
        return copies
    near = _spanning("conflicts", examples, duplicates, codes, lambda row: labels[row].as_py(),
                     ("near-duplicate group carries", "near-duplicate groups carry"), "different labels; relabel "
                     "them to one label, or mark them not duplicates if a word that differs matters")
    return {**near, "status": "warn"} if near["status"] == "fail" else copies


def _agreement(measured: dict | None, minimum: float, min_overlap: int) -> dict:
    items = measured["items_with_overlap"] if measured else 0
    if items < min_overlap:
        return _result("agreement", "skip", f"{_count(items, 'item', 'items')} decided by two or more reviewers; agreement is judged "
                       f"from {min_overlap} ([release.gates] min_overlap)")
    alpha = measured["alpha"]
    if alpha is None:
        return _result("agreement", "pass", f"{_count(items, 'item', 'items')} with overlap; alpha undefined (one label used)")
    status = "pass" if alpha >= minimum else "fail"
    fix = "" if status == "pass" else "; adjudicate the disputed items or review the guidelines with the reviewers"
    return _result("agreement", status, f"Krippendorff's alpha {alpha:.3f} over {_count(items, 'item', 'items')} with overlap, "
                   f"minimum {minimum} ([release.gates] min_agreement){fix}")


def _min_per_label(counts: dict[str, int], minimum: int) -> dict:
    few = {label: n for label, n in sorted(counts.items()) if n < minimum}
    if few:
        names = ", ".join(f"{k} ({v})" for k, v in few.items())
        return _result("min_per_label", "fail", f"labels with fewer than {minimum} examples: {names}; label more "
                       "of them, or lower [release.gates] min_per_label")
    return _result("min_per_label", "pass", f"{_count(len(counts), 'label', 'labels')}, each with at least {minimum} examples")


def _label_shift(counts: dict[str, int], parent: dict[str, int] | None, maximum: float) -> dict:
    if parent is None:
        return _result("label_shift", "skip", "no parent release to compare with")
    shift = total_variation(parent, counts)
    status = "warn" if shift > maximum else "pass"
    return _result("label_shift", status, f"label distribution moved {shift:.3f} (total variation) from the parent, "
                   f"threshold {maximum} ([release.gates] max_label_shift)")


def total_variation(before: dict[str, int], after: dict[str, int]) -> float:
    """Half the L1 distance between two label distributions given as counts (0: same, 1: disjoint)."""
    a, b = sum(before.values()) or 1, sum(after.values()) or 1
    return 0.5 * sum(abs(before.get(k, 0) / a - after.get(k, 0) / b) for k in set(before) | set(after))


def _codes(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.dictionary_encode(column).combine_chunks().indices)
