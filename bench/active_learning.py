"""Choosing what reviewers see, measured on BANKING77 (77 intents; train 10,003, test 3,080 texts).

learning curves: the active-learning loop simulated. From a random seed of 100 labeled train
texts, each round fits the sampler's model (`feedback.learn.model`) on the labels so far,
measures test accuracy, and "labels" a batch of 100 more texts with the dataset's labels,
chosen by each strategy (`feedback.learn.strategies`) or at random; 30 rounds. Measure: how
many labels each strategy needs to reach the accuracy random sampling has at the full
budget (linear between rounds). Target: the default strategy needs at least 30% fewer.

label errors: 10% of the train labels flipped to another label at random (seeded); the
out-of-fold probabilities of `feedback.learn.model.out_of_fold_proba` (5 folds); the flags
of each method of `feedback.learn.suspects.label_issues` against the flipped set, and those of
`cleanlab.filter.find_label_issues` (defaults) on the same probabilities. Target: the
default method's F1 at least cleanlab's. cleanlab is AGPL and never a dependency: install
it only to run this comparison (`pip install cleanlab`); without it the row says so. The
same measures, informational, for systematic errors: for a third of the labels, 30% of
their texts relabeled to the label a clean model confuses them with most.

`scale` below 1 subsamples the train texts and shortens the loop, for smoke runs: the targets
are set for the full data, so there the rows only show the measures ("... at scale 1").
The data is read from $BANKING77_DIR, by default /work/shared/data/banking77 (train.csv and
test.csv with columns text, category).
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bench import result
from feedback.learn import (DEFAULT_DIVERSITY, DEFAULT_STRATEGY, DEFAULT_SUSPECT_METHOD, STRATEGIES, SUSPECT_METHODS,
                            label_issues, out_of_fold_proba, select, text_classifier, uncertainty)

DATA = Path(os.environ.get("BANKING77_DIR", "/work/shared/data/banking77"))
SEED_LABELS, BATCH, ROUNDS = 100, 100, 30
SAVING_TARGET = 0.30
FLIPPED = 0.10
SYSTEMATIC_LABELS, SYSTEMATIC_SHARE = 1 / 3, 0.30
DEFAULT = (DEFAULT_STRATEGY, DEFAULT_DIVERSITY)
ARMS = [(s, "none") for s in STRATEGIES] + ([DEFAULT] if DEFAULT[1] != "none" else [])


def run(scale: float) -> list[dict]:
    train, test = load()
    rng = np.random.default_rng(0)
    keep = min(1.0, scale)
    if keep < 1:
        train = train.iloc[np.sort(rng.choice(len(train), max(2_000, round(len(train) * keep)), replace=False))]
    rounds = max(3, round(ROUNDS * keep))
    texts, labels = train["text"].tolist(), train["category"].to_numpy()
    rows = (learning_curves(texts, labels, test, rounds)
            + label_errors(texts, labels, "10% random flips", random_flips(labels, rng))
            + label_errors(texts, labels, "systematic", systematic_flips(texts, labels, test, rng)))
    if keep < 1:  # the targets are set for the full data; a smoke run only shows the measures
        rows = [r if r["target"] == "informational" else {**r, "target": f"{r['target']} at scale 1", "ok": True}
                for r in rows]
    return rows


def load() -> tuple[pd.DataFrame, pd.DataFrame]:
    try:
        return pd.read_csv(DATA / "train.csv"), pd.read_csv(DATA / "test.csv")
    except FileNotFoundError:
        raise FileNotFoundError(f"BANKING77 is not in {DATA} (train.csv, test.csv with columns text, category); "
                                "set BANKING77_DIR to its folder") from None


def learning_curves(texts: list[str], labels: np.ndarray, test: pd.DataFrame, rounds: int) -> list[dict]:
    curves = {"random": loop(texts, labels, test, rounds, None)}
    for arm in ARMS:
        curves[name(arm)] = loop(texts, labels, test, rounds, arm)
    sizes = [n for n, _ in curves["random"]]
    print("learning curves: test accuracy by labels used")
    print("labels  " + "  ".join(f"{k:>24}" for k in curves))
    for i, n in enumerate(sizes):
        print(f"{n:>6}  " + "  ".join(f"{c[i][1]:>24.3f}" for c in curves.values()))

    budget, goal = curves["random"][-1]
    rows = []
    for arm in ARMS:
        needed = labels_to_reach(curves[name(arm)], goal)
        is_default = arm == DEFAULT
        rows.append(result(
            "active learning", f"labels to reach random's {goal:.3f} (at {budget:,} labels): {name(arm)}",
            needed, "labels", baseline=budget,
            target=f"<= {1 - SAVING_TARGET:.2f}x random's" if is_default else "informational",
            ok=not is_default or needed <= (1 - SAVING_TARGET) * budget))
    early = min(3, rounds)
    ours, random_ = curves[name(DEFAULT)][1:early + 1], curves["random"][1:early + 1]
    dips = [round(a - r, 3) for (_, a), (_, r) in zip(ours, random_)]
    rows.append(result("active learning", f"cold start, accuracy minus random's, rounds 1-{early}: {dips}",
                       min(dips), "accuracy", target="informational", ok=True))
    return rows


def name(arm) -> str:
    strategy, diversity = arm
    return strategy if diversity == "none" else f"{strategy} + {diversity}"


def loop(texts: list[str], labels: np.ndarray, test: pd.DataFrame, rounds: int, arm) -> list[tuple[int, float]]:
    """Test accuracy after each round: (labels used, accuracy)."""
    rng = np.random.default_rng(0)
    labeled = rng.choice(len(texts), SEED_LABELS, replace=False)
    curve = []
    for round_ in range(rounds + 1):
        with warnings.catch_warnings():  # a seed of 100 labels over 77 classes looks like regression to sklearn
            warnings.simplefilter("ignore", UserWarning)
            model = text_classifier(seed=0).fit([texts[i] for i in labeled], labels[labeled])
        curve.append((len(labeled), float((model.predict(test["text"]) == test["category"]).mean())))
        if round_ == rounds:
            return curve
        pool = np.setdiff1d(np.arange(len(texts)), labeled)
        if arm is None:
            picks = rng.choice(pool, BATCH, replace=False)
        else:
            pool_texts = [texts[i] for i in pool]
            scores = uncertainty(model.predict_proba(pool_texts), arm[0])
            picks = pool[select(scores, pool_texts, budget=BATCH, diversity=arm[1], seed=0)]
        labeled = np.concatenate([labeled, picks])


def labels_to_reach(curve: list[tuple[int, float]], goal: float) -> float:
    """Labels at which the curve first reaches `goal`, linear between rounds; infinite if it never does."""
    for (n0, a0), (n1, a1) in zip(curve, curve[1:]):
        if a1 >= goal:
            return float(n0) if a0 >= goal else n0 + (n1 - n0) * (goal - a0) / (a1 - a0)
    return math.inf


def random_flips(labels: np.ndarray, rng) -> np.ndarray:
    classes = np.unique(labels)
    noisy = labels.copy()
    flip = rng.choice(len(labels), round(FLIPPED * len(labels)), replace=False)
    for i in flip:
        noisy[i] = rng.choice(classes[classes != labels[i]])
    return noisy


def systematic_flips(texts: list[str], labels: np.ndarray, test: pd.DataFrame, rng) -> np.ndarray:
    """For a third of the labels, 30% of their texts moved to the label a clean model most confuses them with."""
    predicted = text_classifier(seed=0).fit(texts, labels).predict(test["text"])
    confusion = pd.crosstab(test["category"], predicted)
    noisy = labels.copy()
    classes = np.unique(labels)
    for label in rng.choice(classes, round(SYSTEMATIC_LABELS * len(classes)), replace=False):
        target = confusion.loc[label].drop(label, errors="ignore").idxmax()
        members = np.flatnonzero(labels == label)
        noisy[rng.choice(members, round(SYSTEMATIC_SHARE * len(members)), replace=False)] = target
    return noisy


def label_errors(texts: list[str], labels: np.ndarray, noise: str, noisy: np.ndarray) -> list[dict]:
    wrong = noisy != labels
    probs, classes = out_of_fold_proba(texts, noisy, seed=0)
    given = np.searchsorted(classes, noisy)
    flags = {method: label_issues(given, probs, method=method)[0] for method in SUSPECT_METHODS}
    try:
        from cleanlab.filter import find_label_issues
    except ImportError:
        print("cleanlab is not installed: the comparison with cleanlab is skipped (pip install cleanlab to run it)")
        baseline = None
    else:
        baseline = np.flatnonzero(find_label_issues(given, probs))
    scored = {m: prf(f, wrong) for m, f in flags.items()}
    theirs = prf(baseline, wrong) if baseline is not None else None
    described = f"{noise} ({wrong.sum():,} of {len(labels):,})"
    rows = []
    for method, (p, r, f1) in scored.items():
        gated = noise.startswith("10%") and method == DEFAULT_SUSPECT_METHOD
        target = "informational"
        if gated:
            target = ">= cleanlab's F1" if theirs else "cleanlab not installed: comparison skipped"
        rows.append(result("label errors", f"{described}, suspects {method}: P {p:.3f} R {r:.3f}",
                           f1, "F1", baseline=theirs and theirs[2], target=target,
                           ok=not (gated and theirs) or f1 >= theirs[2]))
    if theirs:
        p, r, f1 = theirs
        rows.append(result("label errors", f"{described}, cleanlab find_label_issues: P {p:.3f} R {r:.3f}",
                           f1, "F1", target="informational", ok=True))
    return rows


def prf(flagged: np.ndarray, wrong: np.ndarray) -> tuple[float, float, float]:
    hits = wrong[flagged].sum()
    precision = hits / len(flagged) if len(flagged) else 0.0
    recall = hits / wrong.sum()
    return precision, recall, 2 * precision * recall / (precision + recall) if hits else 0.0
