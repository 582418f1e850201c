"""Text-model candidates for the sampler and the label-error finder, on every dataset of `bench.datasets`, in one run.

Pure scikit-learn, one core (`n_jobs=1`). The candidates (`CANDIDATES`), each fitted on labeled texts
and, where it says so, given the pool's texts (labeled and unlabeled) to fit its vocabulary on:

- `library default`: `feedback.learn.text_classifier()` as the library has it now;
- `word+char`: word TF-IDF and character 2-5-gram TF-IDF (`char_wb`) side by side, logistic regression;
- `pool vocabulary`: the default's word TF-IDF with its vocabulary and idf fitted on the pool;
- `calibrated`: the default with sigmoid calibration (`CalibratedClassifierCV`, 2 or 3 folds);
- `ensemble`: the mean of the probabilities of the default and of a character 2-5-gram model.

Two measures per dataset (the train split, at most POOL texts, the same for every candidate):
1. low labels: 2, 5 and 10 labels per class drawn from the pool (3 seeds), test accuracy; the pool
   variants fit their vocabulary on the whole pool;
2. probability quality: out-of-fold probabilities (5 folds) on NOISY_SIZE pool texts with 20% of the
   labels moved to another class at random; log loss and expected calibration error (15 bins, top
   label) against the labels given, and the AUROC of 1 - p(given label) for finding the wrong ones
   (what the label-error finder ranks by). Plus the seconds to fit on the noisy set and score the pool.

Ranking: the mean over datasets (each dataset weighs the same) of the low-label accuracy over the
three regimes; candidates within TIE (half a point) of the best are ranked by their mean out-of-fold
log loss. Informational: no targets. `word_char_model` is the `word+char` candidate as a `[learn] model`
factory (`bench.active_learning --model bench.text_models:word_char_model`).

    python -m bench.text_models --datasets snips,hwu64   # a subset
    python -m bench --only text_models                   # every dataset (about 4 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from bench import datasets, result
from feedback.learn import text_classifier

POOL, NOISY_SIZE, NOISE, FOLDS, SEEDS = 3000, 1500, 0.20, 5, 3
TIE = 0.005  # mean accuracies this close are a tie, broken by the out-of-fold log loss
PER_CLASS = (2, 5, 10)


def logreg() -> LogisticRegression:
    """The library's classifier settings."""
    return LogisticRegression(C=10.0, solver="saga", max_iter=100, tol=1e-3, random_state=0)


def word() -> TfidfVectorizer:
    return TfidfVectorizer(sublinear_tf=True)


def char() -> TfidfVectorizer:
    return TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(2, 5), min_df=2)


def word_char() -> FeatureUnion:
    return FeatureUnion([("word", word()), ("char", char())])


def word_char_model():
    """The `word+char` candidate as a `[learn] model` factory: `model = "bench.text_models:word_char_model"`."""
    return make_pipeline(word_char(), logreg())


def fixed(vectorizer, pool: list[str]) -> FunctionTransformer:
    """`vectorizer` fitted on the pool's texts, applied as it is (a pipeline's fit does not refit it)."""
    return FunctionTransformer(vectorizer.fit(pool).transform, accept_sparse=True)


class Mean:
    """The mean of fitted models' probabilities (the same classes, in sorted order)."""

    def __init__(self, models):
        self.models = models

    def fit(self, texts, labels):
        for model in self.models:
            model.fit(texts, labels)
        self.classes_ = self.models[0].classes_
        return self

    def predict_proba(self, texts):
        return np.mean([m.predict_proba(texts) for m in self.models], axis=0)


def calibrated(fewest: int):
    folds = max(2, min(3, fewest))
    return make_pipeline(word(), CalibratedClassifierCV(logreg(), method="sigmoid", cv=folds))


#: name -> (labeled texts' fewest examples per class, pool texts) -> an unfitted model with predict_proba
CANDIDATES = {
    "library default": lambda fewest, pool: text_classifier(seed=0),
    "word+char": lambda fewest, pool: word_char_model(),
    "pool vocabulary": lambda fewest, pool: make_pipeline(fixed(word(), pool), logreg()),
    "calibrated": lambda fewest, pool: calibrated(fewest),
    "ensemble": lambda fewest, pool: Mean([text_classifier(seed=0), make_pipeline(char(), logreg())]),
}


def run(scale: float, names: list[str] | None = None) -> list[dict]:
    seeds = SEEDS if scale >= 1 else 1
    figures = {}  # (dataset, candidate) -> measures
    for name in names or list(datasets.NAMES):
        texts, labels = pool_of(name, POOL if scale >= 1 else max(1500, round(POOL * scale)))
        test = datasets.load(name, "test")
        for candidate in CANDIDATES:
            start = time.perf_counter()
            figures[name, candidate] = {**low_labels(candidate, texts, labels, test, seeds),
                                        **noisy(candidate, texts, labels, min(NOISY_SIZE, len(texts)))}
            print(f"  {name} / {candidate}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        table(name, {c: figures[name, c] for c in CANDIDATES})
    return ranking(figures, names or list(datasets.NAMES))


def pool_of(name: str, size: int) -> tuple[list[str], np.ndarray]:
    texts, labels = datasets.load(name, "train")
    keep = np.sort(np.random.default_rng(0).permutation(len(texts))[:size])
    return [texts[i] for i in keep], np.asarray(labels, dtype=object)[keep]


def fit(candidate: str, texts, labels, pool: list[str]):
    fewest = int(np.unique(labels, return_counts=True)[1].min())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CANDIDATES[candidate](fewest, pool).fit(list(texts), np.asarray(labels))


def low_labels(candidate: str, texts: list[str], labels: np.ndarray, test, seeds: int) -> dict:
    """Test accuracy at each PER_CLASS, mean of the seeds."""
    truth = np.asarray(test[1], dtype=object)
    out = {}
    for count in PER_CLASS:
        scores = []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            chosen = np.concatenate([rng.choice(np.flatnonzero(labels == y), min(count, (labels == y).sum()),
                                                replace=False) for y in np.unique(labels)])
            model = fit(candidate, [texts[i] for i in chosen], labels[chosen], texts)
            predicted = model.classes_[model.predict_proba(test[0]).argmax(axis=1)]
            scores.append(float((predicted == truth).mean()))
        out[f"acc@{count}"] = float(np.mean(scores))
    out["acc"] = float(np.mean([out[f"acc@{c}"] for c in PER_CLASS]))
    return out


def noisy(candidate: str, texts: list[str], labels: np.ndarray, size: int) -> dict:
    """Out-of-fold probability quality on `size` pool texts with NOISE of their labels moved at random."""
    rng = np.random.default_rng(0)
    chosen = np.sort(rng.permutation(len(texts))[:size])
    data, truth = np.asarray(texts, dtype=object)[chosen], labels[chosen]
    classes = np.unique(labels)
    given = truth.copy()
    flip = rng.random(size) < NOISE
    for i in np.flatnonzero(flip):
        given[i] = rng.choice(classes[classes != truth[i]])
    kept = np.isin(given, [y for y, n in zip(*np.unique(given, return_counts=True)) if n >= FOLDS])
    data, given, wrong = data[kept], given[kept], flip[kept]
    classes, y = np.unique(given, return_inverse=True)
    probs = np.zeros((len(data), len(classes)))
    for train, held in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(data, y):
        model = fit(candidate, data[train], y[train], list(texts))
        probs[np.ix_(held, model.classes_)] = model.predict_proba(list(data[held]))
    probs = np.clip(probs, 1e-12, None)
    probs /= probs.sum(axis=1, keepdims=True)
    start = time.perf_counter()
    model = fit(candidate, data, given, list(texts))
    model.predict_proba(list(texts))
    seconds = time.perf_counter() - start
    return {"log loss": float(log_loss(y, probs, labels=np.arange(len(classes)))), "ece": ece(probs, y),
            "error auroc": float(roc_auc_score(wrong, 1 - probs[np.arange(len(y)), y])), "seconds": seconds}


def ece(probs: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top label."""
    confidence, right = probs.max(axis=1), probs.argmax(axis=1) == y
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    return float(sum(abs(right[which == b].mean() - confidence[which == b].mean()) * (which == b).mean()
                     for b in range(bins) if (which == b).any()))


COLUMNS = (*(f"acc@{c}" for c in PER_CLASS), "acc", "log loss", "ece", "error auroc", "seconds")


def table(title: str, rows: dict[str, dict]) -> None:
    print(f"\n{title}")
    print(f"{'candidate':<28}" + "".join(f"{c:>12}" for c in COLUMNS))
    for candidate, figures in rows.items():
        print(f"{candidate:<28}" + "".join(f"{figures[c]:>12.3f}" for c in COLUMNS))


def ranking(figures: dict, names: list[str]) -> list[dict]:
    mean = {c: {k: float(np.mean([figures[n, c][k] for n in names])) for k in COLUMNS} for c in CANDIDATES}
    table(f"mean over {len(names)} datasets ({', '.join(names)})", mean)
    best = max(mean[c]["acc"] for c in CANDIDATES)  # within TIE of the best accuracy, the better log loss ranks first
    order = sorted(CANDIDATES, key=lambda c: (mean[c]["acc"] < best - TIE, mean[c]["log loss"] if
                                              mean[c]["acc"] >= best - TIE else -mean[c]["acc"]))
    wins = {c: sum(max(CANDIDATES, key=lambda k: figures[n, k]["acc"]) == c for n in names) for c in CANDIDATES}
    base = mean["library default"]
    print(f"\nranked (mean low-label accuracy; within {TIE} of the best, out-of-fold log loss): "
          + ", ".join(f"{c} ({wins[c]} of {len(names)} datasets best)" for c in order))
    rows = [result("text models", f"{c}: mean low-label accuracy (log loss {mean[c]['log loss']:.3f}, ece "
                   f"{mean[c]['ece']:.3f}, error auroc {mean[c]['error auroc']:.3f}, {mean[c]['seconds']:.1f} s)",
                   mean[c]["acc"], "accuracy", baseline=base["acc"], target="informational", ok=True) for c in order]
    return rows


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import render

    parser = argparse.ArgumentParser(prog="python -m bench.text_models", description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(datasets.NAMES), help="comma-separated (default: all)")
    parser.add_argument("--scale", type=float, default=1.0, help="below 1: one seed and a smaller pool")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = sorted(set(names) - set(datasets.NAMES))
    if unknown:
        parser.error(f"unknown datasets {', '.join(unknown)}; choose from {', '.join(datasets.NAMES)}")
    print(render(run(args.scale, names)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
