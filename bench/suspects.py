"""Finding label errors on BANKING77 with the noise people make, through the public API.

The 10,003 BANKING77 train texts get wrong labels two ways, each in a workspace of its own:
- class-conditional noise, the way annotators err: a label moves to an intent that is easy to confuse
  with it ("top_up_failed" to "top_up_reverted", not to "lost_or_stolen_card"). Which intents are
  confusable, and how often, comes from the out-of-fold confusion matrix of a reference model on the
  clean labels: character 3-5-gram TF-IDF and a ridge classifier, a different model from the word
  TF-IDF logistic regression the finder fits, so the noise is not shaped by the detector's own
  blind spots. A class is flipped in proportion to how much it is confused (the rate varies by class,
  20% overall, at most 50% of a class), each flip to a class drawn from that class's confusions;
- uniform noise: 20% of labels moved to any other intent at random (the easy, unrealistic case).
The noisy labels come in with `import_labels`, and `find_suspects(dry_run=True, scores=True)` runs
with its defaults. On the same out-of-fold probabilities (`out_of_fold_proba`, same order, folds and
seed) two peers run: "argmax differs from the label", and cleanlab's `find_label_issues` with its
defaults (installed only for benchmarks: `pip install -e '.[bench]'`; skipped, saying so, without
it). Measures: precision, recall and F1 against the labels known to be wrong; the share flagged on a
clean set with 10 correct labels per intent and on one with 35 (target at most 5% of each); suggestions
equal to the label (target 0). Target: the default's F1 at least 0.55 on class-conditional noise.

BANKING77's own labels are taken as the truth, though a few of them are wrong: every figure here
counts those as false alarms. `scale` below 1 runs on a stratified fraction of the texts.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline

from bench import result
from bench.active_learning import load
from feedback import init_workspace
from feedback.learn import find_suspects, out_of_fold_proba
from feedback.review import import_labels
from feedback.roles import Actor

NOISE, MAX_CLASS_NOISE, FOLDS = 0.20, 0.50, 5
CLEAN_PER_CLASS = (10, 35)  # labels per intent (or all an intent has): too few to judge, and enough
F1_TARGET, CLEAN_FLAG_TARGET = 0.55, 0.05
LEAD = Actor("lead", "lead")


def run(scale: float) -> list[dict]:
    train, _ = load()
    if scale < 1:
        train = train.groupby("category", group_keys=False).sample(frac=max(scale, 0.4), random_state=0)
    train = train.reset_index(drop=True)
    rng = np.random.default_rng(20261201)
    truth = train["category"].to_numpy()
    rows = []
    with tempfile.TemporaryDirectory(prefix="feedback-suspects-") as tmp:
        for kind, noisy in (("class-conditional", confusable_noise(train, rng)),
                            ("uniform", uniform_noise(truth, rng))):
            rows += judge(Path(tmp) / kind, train, noisy, kind)
        for per_class in CLEAN_PER_CLASS:
            clean = train.sample(frac=1.0, random_state=1).groupby("category").head(per_class)
            found = suspects_of(Path(tmp) / f"clean-{per_class}", clean["text"].tolist(), clean["category"].tolist())
            share = found["flagged"] / len(clean)
            rows.append(result("suspects", f"flagged on a clean set of {len(clean):,} ({per_class} per intent, "
                               f"{found['judged']:,} judged)", share, "share", target=f"<= {CLEAN_FLAG_TARGET:.0%}",
                               ok=share <= CLEAN_FLAG_TARGET))
    return rows


def judge(root: Path, train: pd.DataFrame, noisy: np.ndarray, kind: str) -> list[dict]:
    """The default and its peers on one noisy copy of the labels."""
    wrong = dict(zip(item_ids(len(train)), noisy != train["category"].to_numpy()))
    found = suspects_of(root, train["text"].tolist(), noisy.tolist())
    judged = [s["item_id"] for s in found["scores"]]
    flagged = {s["item_id"] for s in found["suspects"]}
    same = sum(s["suggested"] == s["label"] for s in found["scores"])
    by_id = dict(zip(item_ids(len(train)), zip(train["text"], noisy)))
    texts, labels = zip(*(by_id[i] for i in judged))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probs, classes = out_of_fold_proba(list(texts), list(labels), folds=FOLDS, seed=0)
    given = np.searchsorted(classes, labels)
    peers = {"out-of-fold argmax != label": {judged[i] for i in np.flatnonzero(probs.argmax(axis=1) != given)}}
    try:
        from cleanlab.filter import find_label_issues
        peers["cleanlab find_label_issues (defaults)"] = {
            judged[i] for i in np.flatnonzero(find_label_issues(given, probs))}
    except ImportError:
        print("cleanlab is not installed (pip install -e '.[bench]'): its row is left out")
    truth = {i for i in judged if wrong[i]}
    score = prf(flagged, truth)
    rows = [result("suspects", f"{kind} noise ({len(truth):,} of {len(judged):,} wrong): feedback suspects "
                   f"P {score[0]:.2f} R {score[1]:.2f}", score[2], "F1", baseline=prf(peers[
                       "out-of-fold argmax != label"], truth)[2],
                   target=f">= {F1_TARGET}" if kind == "class-conditional" else "informational",
                   ok=kind != "class-conditional" or score[2] >= F1_TARGET)]
    for name, chosen in peers.items():
        p, r, f = prf(chosen, truth)
        rows.append(result("suspects", f"{kind} noise: {name} P {p:.2f} R {r:.2f}", f, "F1", target="informational",
                           ok=True))
    rows.append(result("suspects", f"{kind} noise: suggestions equal to the label", same, "labels", target="0",
                       ok=same == 0))
    return rows


def suspects_of(root: Path, texts: list[str], labels: list[str]) -> dict:
    """`feedback suspects --dry-run --scores` on a workspace whose trusted labels are these, imported."""
    ws = init_workspace(root, dataset="banking77", labels=sorted(set(labels)))
    path = root.parent / f"{root.name}-labels.csv"
    pd.DataFrame({"item_id": item_ids(len(texts)), "text": texts, "label": labels}).to_csv(path, index=False)
    import_labels(ws, [path], by=LEAD)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return find_suspects(ws, dry_run=True, scores=True)


def confusable_noise(train: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Labels moved between confusable intents, as annotators move them (see the module's docstring)."""
    truth = train["category"].to_numpy()
    classes, y = np.unique(truth, return_inverse=True)
    reference = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True),
                              RidgeClassifier())
    predicted = cross_val_predict(reference, train["text"], y, cv=5)
    confusion = np.zeros((len(classes), len(classes)))
    np.add.at(confusion, (y, predicted), 1)
    np.fill_diagonal(confusion, 0)
    confusion += 0.01  # every intent can be confused a little
    np.fill_diagonal(confusion, 0)
    mass = confusion.sum(axis=1) / np.bincount(y, minlength=len(classes))
    rate = np.minimum(mass / mass[y].mean() * NOISE, MAX_CLASS_NOISE)
    noisy = y.copy()
    for i in np.flatnonzero(rng.random(len(y)) < rate[y]):
        noisy[i] = rng.choice(len(classes), p=confusion[y[i]] / confusion[y[i]].sum())
    return classes[noisy]


def uniform_noise(truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    classes = np.unique(truth)
    noisy = truth.copy()
    for i in np.flatnonzero(rng.random(len(truth)) < NOISE):
        noisy[i] = rng.choice(classes[classes != truth[i]])
    return noisy


def prf(chosen: set, truth: set) -> tuple[float, float, float]:
    hits = len(chosen & truth)
    precision, recall = hits / max(len(chosen), 1), hits / max(len(truth), 1)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-12)


def item_ids(n: int) -> list[str]:
    return [f"t{i:05d}" for i in range(n)]
