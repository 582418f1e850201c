"""The reference model on a release: trained on its train split, scored on its test split, or asked about texts.

The reference model is the workspace's text model (`[learn] model`, else tf-idf + logistic regression:
`learn.model`), the one the sampler, the suspects and the fitness gate fit. Labels come in the
release's class order (its manifest's `class_names`), those of its train and test splits; macro-F1
averages the labels of the test split, as the fitness gate does.

    report = feedback.evaluate(ws, "v2")          # accuracy, macro_f1, per_label, confusion
    feedback.predict(ws, ["where is my card?"], top=3)
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import FeedbackError
from ..workspace import Workspace
from .releases import _ref, list_releases, load_release, resolve


def evaluate(ws: Workspace, release: str | None = None) -> dict:
    """How the reference model trained on `release`'s train split (default: the latest release) does on its test
    split: `accuracy`, `macro_f1`, `per_label` precision, recall, F1 and support, and `confusion`, a matrix whose
    rows are the true labels and columns the predicted ones, both in the order of `labels`."""
    record, train, test = _splits(ws, release, need_test=True)
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    model, description = _fit(ws, record, train)
    truth, predicted = test["label"].tolist(), [str(p) for p in model.predict(test["text"].tolist())]
    present = set(train["label"]) | set(truth)
    names = record["manifest"].get("class_names") or []
    labels = [c for c in names if c in present] + sorted(present - set(names))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    tested = [float(f) for f, n in zip(f1, support) if n]
    return {"release": _ref(record), "release_id": record["release_id"],
            "parent": record["parent"] and f"{record['dataset']}/{record['parent']}", "model": description,
            "train": len(train), "test": len(test), "labels": labels,
            "accuracy": sum(t == p for t, p in zip(truth, predicted)) / len(truth),
            "macro_f1": sum(tested) / len(tested),
            "per_label": [{"label": label, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
                          for label, p, r, f, n in zip(labels, precision, recall, f1, support)],
            "confusion": confusion_matrix(truth, predicted, labels=labels).tolist()}


def predict(ws: Workspace, texts: Sequence[str], *, release: str | None = None, top: int = 3) -> list[dict]:
    """For each text, the reference model's `top` labels with their probabilities, most probable first
    (`{"text", "release", "labels": [{"label", "probability"}, ...]}`); the model is trained on `release`'s
    train split (default: the latest release)."""
    if isinstance(texts, str) or not texts:
        raise FeedbackError("give one text or more, as a list")
    if top < 1:
        raise FeedbackError(f"top = {top}: give 1 or more")
    record, train, _ = _splits(ws, release, need_test=False)
    model, description = _fit(ws, record, train)
    if not hasattr(model, "predict_proba"):
        raise FeedbackError(f"the reference model ({description}) gives no probabilities: its last step needs "
                            "predict_proba")
    import numpy as np

    probs, classes = model.predict_proba(list(texts)), model.classes_
    return [{"text": text, "release": _ref(record), "labels": [
        {"label": str(classes[i]), "probability": float(row[i])} for i in np.argsort(-row, kind="stable")[:top]]}
        for text, row in zip(texts, probs)]


def _splits(ws: Workspace, release: str | None, *, need_test: bool):
    """The release's record and its train and test examples (pandas), checked for what a model needs."""
    if release is None:
        made = list_releases(ws, ws.dataset)
        if not made:
            raise FeedbackError(f"no release of {ws.dataset} yet: make one with `feedback release create`")
        release = made[-1]["version"]
    record = resolve(ws, release)
    ref = _ref(record)
    examples = load_release(ref, ws=ws)
    train, test = (examples[examples["split"] == name] for name in ("train", "test"))
    sizes = ", ".join(f"{name} {info['rows']:,}" for name, info in record["manifest"]["splits"].items())
    for name, rows in ({"train": train, "test": test} if need_test else {"train": train}).items():
        if not len(rows):
            raise FeedbackError(f"release {ref} has no {name} examples (its splits: {sizes}); give [release] splits "
                                f"a {name} share (e.g. {name} = 0.1) and make a release")
    labels = sorted(set(train["label"]))
    if len(labels) < 2:
        raise FeedbackError(f"the train split of {ref} has one label only ({labels[0]}): the model needs two or more")
    return record, train, test


def _fit(ws: Workspace, record: dict, train):
    from ..learn.model import model_factory, reference_model

    _, description = model_factory(ws.config)
    try:
        return reference_model(ws.config, train["text"].tolist(), train["label"].tolist()), description
    except ValueError as exc:  # a custom model that cannot take these examples
        raise FeedbackError(f"could not train the reference model ({description}) on {_ref(record)}: {exc}") from None
