"""The fitness gate: would a model trained on this release be worse than one trained on its parent?

Off by default (`[release.gates] fitness = true`). Before a release is written, the workspace's text
model (`learn.model`, `[learn] model`) is trained on the candidate's train split and on the parent
release's train split, and both are scored on the candidate's test split, and on its pinned test
examples (a frozen test set imported with `split = test`) when there are any. The gate records
accuracy and macro-F1 of both and their deltas, and each label's accuracy delta; it fails when the
candidate's accuracy falls more than `fitness_margin` (0.02) below the parent's.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def fitness_gate(config: dict, candidate: pa.Table, split: np.ndarray, names: list[str], parent_train: pa.Table | None,
                 *, margin: float) -> dict:
    """The gate's result (`examples` empty), with `metrics`; `split` holds each candidate row's split code."""
    train, test = names.index("train") if "train" in names else 0, names.index("test") if "test" in names else -1
    tests = {"test split": np.flatnonzero(split == test)} if test >= 0 else {}
    pinned = np.flatnonzero(np.asarray(pc.equal(candidate["pinned_split"], "test").fill_null(False)))
    if len(pinned):
        tests["pinned test set"] = pinned
    if parent_train is None or not parent_train.num_rows or not tests or not len(tests.get("test split", pinned)):
        return {"gate": "fitness", "status": "skip", "examples": [],
                "detail": "fitness needs a parent release and test examples: nothing to compare yet"}
    rows = np.flatnonzero(split == train)
    models = {"candidate": _fit(config, candidate["text"].take(pa.array(rows)), candidate["label"].take(pa.array(rows))),
              "parent": _fit(config, parent_train["text"], parent_train["label"])}
    metrics = {}
    for name, where in tests.items():
        texts, truth = candidate["text"].take(pa.array(where)).to_pylist(), np.asarray(
            candidate["label"].take(pa.array(where)).to_pylist(), dtype=object)
        scored = {side: _scores(model.predict(texts), truth) for side, model in models.items()}
        metrics[name] = {**scored, "accuracy_delta": scored["candidate"]["accuracy"] - scored["parent"]["accuracy"],
                         "macro_f1_delta": scored["candidate"]["macro_f1"] - scored["parent"]["macro_f1"],
                         "by_label": _per_label(scored)}
    worst = min(metrics.items(), key=lambda kv: kv[1]["accuracy_delta"])
    drop = -worst[1]["accuracy_delta"]
    detail = ("; ".join(f"{name}: accuracy {m['parent']['accuracy']:.3f} -> {m['candidate']['accuracy']:.3f}, macro-F1 "
                        f"{m['parent']['macro_f1']:.3f} -> {m['candidate']['macro_f1']:.3f}" for name, m in metrics.items()))
    failed = drop > margin
    if failed:
        detail += f"; on the {worst[0]} a model trained on this release is {drop:.3f} less accurate than on the parent " \
                  f"(more than [release.gates] fitness_margin = {margin:g}): look at the labels changed since"
    return {"gate": "fitness", "status": "fail" if failed else "pass", "detail": detail, "examples": [],
            "metrics": metrics}


def _fit(config: dict, texts: pa.ChunkedArray, labels: pa.ChunkedArray):
    from ..learn.model import reference_model  # scikit-learn: only when the gate is on and fits a model

    return reference_model(config, texts.to_pylist(), labels.to_pylist())


def _scores(predicted, truth: np.ndarray) -> dict:
    from sklearn.metrics import f1_score

    predicted = np.asarray(predicted, dtype=object)
    labels = sorted(set(truth))
    recall = {label: float(np.mean(predicted[truth == label] == label)) for label in labels}
    return {"accuracy": float(np.mean(predicted == truth)),
            "macro_f1": float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
            "recall": recall}


def _per_label(scored: dict) -> list[dict]:
    candidate, parent = scored["candidate"]["recall"], scored["parent"]["recall"]
    deltas = sorted(((candidate[k] - parent[k], k) for k in candidate))
    return [{"label": label, "accuracy_delta": delta} for delta, label in deltas[:10]]
