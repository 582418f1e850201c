"""Choosing what reviewers see from model probabilities: uncertainty, diversity and quotas.

Score convention, here and in the queue: a float in [0, 1]; higher means a person should
look sooner.

- `uncertainty` scores each item from its label probabilities (least confidence, margin
  or entropy).
- `select` turns scores into an ordered batch. With the k-means diversity step, the top
  `factor` x `budget` candidates are clustered into `budget` clusters and the best of each
  cluster goes first, so one batch is not fifty copies of one phrase. Texts are clustered as
  TF-IDF vectors reduced to 50 dimensions; on BANKING77 a factor of 5 and 50 dimensions pick as
  well as 10 and 100, in half the time.
  Quotas cap how many picks share one value (a predicted label, a model version, a source).

Cold start: a model fitted on a few labels per class ranks uncertainty by noise, and the
low-budget literature (TypiClust, ProbCover) picks typical, representative texts first. Given
the labels per class the scoring model learned from, `select` does both without a setting:
with no labels it draws candidates from five times as deep in the ranking and takes from each
cluster the text nearest its centre; each label per class shifts it towards uncertainty, and
from `COLD_START_LABELS` per class on it is plain uncertainty. On four public intent datasets (7 to
150 classes, `bench/active_learning.py`) this lifted the first round by 2 to 4 points over plain
uncertainty, where 7 intents had been 4 points below random picks, and cost nothing later.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from .choices import DEFAULT_DIVERSITY, DEFAULT_STRATEGY, DIVERSITY, STRATEGIES

_SVD_DIMENSIONS = 50
COLD_START_LABELS = 10  # labels per class from which picks rest on uncertainty alone
_MOST_CANDIDATES = 20_000  # the deepest the cold-start step draws, so a 1M pool clusters in seconds


def uncertainty(probs, strategy: str = DEFAULT_STRATEGY, *, classes: int | None = None) -> np.ndarray:
    """How unsure the model is about each row of `probs` (items x labels), in [0, 1].

    Rows may be truncated to their top labels (as stored from production, padded with zeros): the
    missing mass belongs to the labels left out, each at most the smallest probability the row kept.
    With `classes` (how many labels the model has) it is spread over the `classes - k` labels a row
    left out; without, over as few as that bound allows. So a 150-class row that kept its top 10 is
    ranked by its real margin, not by a runner-up made of the 140 labels it left out.

    - least_confidence: 1 - p1
    - margin: 1 - (p1 - p2)
    - entropy: the entropy of the row, divided by the log of its number of labels (`classes`, else the
      columns or, for a truncated row, the labels it implies)
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or p.shape[1] == 0:
        raise ValueError(f"probs must be a 2-d array with a column per label, not shape {p.shape}")
    rest = np.clip(1.0 - p.sum(axis=1), 0.0, 1.0)
    kept = (p > 0).sum(axis=1)
    smallest = np.where(p > 0, p, np.inf).min(axis=1)
    if classes:
        missing = np.maximum(classes - kept, 0)
        share = np.divide(rest, missing, out=np.zeros_like(rest), where=missing > 0)
    else:
        share = np.minimum(rest, smallest)
        missing = np.ceil(np.divide(rest, share, out=np.zeros_like(rest), where=share > 0) - 1e-9)
    best = -np.sort(-p, axis=1)[:, :2]
    extra = np.stack([share * (missing >= 1), share * (missing >= 2)], axis=1)
    q = -np.sort(-np.hstack([best, extra]), axis=1)
    if strategy == "least_confidence":
        score = 1.0 - q[:, 0]
    elif strategy == "margin":
        score = 1.0 - (q[:, 0] - q[:, 1])
    else:
        logs = np.log(p, out=np.zeros_like(p), where=p > 0)
        spread = np.divide(rest, missing, out=np.ones_like(rest), where=missing > 0)
        entropy = -(p * logs).sum(axis=1) - rest * np.log(spread)
        outcomes = np.maximum(max(classes or 0, p.shape[1], 2), kept + missing)
        score = entropy / np.log(outcomes)
    return np.clip(score, 0.0, 1.0)


def select(scores, texts: Sequence[str], *, budget: int, diversity: str = DEFAULT_DIVERSITY, factor: int = 5,
           quotas: Sequence[tuple[Sequence, int]] = (), seed: int = 0,
           labels_per_class: float | None = None) -> np.ndarray:
    """Positions of up to `budget` items to review, in pick order.

    `texts` are the items' texts (used by the diversity step). Each quota is a pair
    (values, cap): the items' values of one attribute and the most picks one value may get.
    `labels_per_class`: how many labels per class the model behind `scores` learned from, when
    known; under `COLD_START_LABELS` the diversity step leans on typical texts (see above).
    """
    if diversity not in DIVERSITY:
        raise ValueError(f"diversity {diversity!r} is not one of {', '.join(DIVERSITY)}")
    scores = np.asarray(scores, dtype=float)
    order = np.argsort(-scores, kind="stable")
    if diversity == "kmeans":
        order = _cluster_first(order, texts, budget=budget, factor=factor, seed=seed,
                               typical=cold_start_weight(labels_per_class))
    if quotas:
        return _within_quotas(order, quotas, budget)
    return order[:budget]


def cold_start_weight(labels_per_class: float | None) -> float:
    """How much picks lean on typical texts rather than uncertain ones: 1 with no labels per class, 0 from
    `COLD_START_LABELS` on, and 0 when the labels behind the scores are unknown (a production model's)."""
    if labels_per_class is None:
        return 0.0
    return float(np.clip(1.0 - labels_per_class / COLD_START_LABELS, 0.0, 1.0))


def _cluster_first(order: np.ndarray, texts: Sequence[str], *, budget: int, factor: int, seed: int,
                   typical: float = 0.0) -> np.ndarray:
    """`order` with one member of each of `budget` clusters of the top candidates moved first: the best-ranked,
    or with `typical` > 0 the best by a blend of rank and nearness to the cluster's centre."""
    depth = max(budget * factor, min(round(budget * factor * (1 + 4 * typical)), _MOST_CANDIDATES))
    candidates = order[:depth]
    if len(candidates) <= budget:
        return order
    features = TfidfVectorizer(sublinear_tf=True).fit_transform([texts[i] for i in candidates])
    # The matrices are small: BLAS threads gain little, and on a busy 2-core machine they thrash
    # (measured: 16 s instead of 1.5 s for 5,000 candidates and 1,000 clusters).
    with threadpool_limits(1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # identical texts make fewer clusters than asked
        if features.shape[1] > _SVD_DIMENSIONS:
            features = normalize(TruncatedSVD(_SVD_DIMENSIONS, random_state=seed).fit_transform(features))
        kmeans = KMeans(n_clusters=budget, n_init=1, random_state=seed).fit(features)
    clusters = kmeans.labels_
    # candidates are in rank order: without `typical` the key is the rank, and each cluster's lead its best
    key = np.arange(len(candidates)) / len(candidates)
    if typical:
        points = features.toarray() if hasattr(features, "toarray") else features
        distance = np.linalg.norm(points - kmeans.cluster_centers_[clusters], axis=1)
        key = (1 - typical) * key + typical * distance / max(distance.max(), 1e-12)
    by_key = np.argsort(key, kind="stable")
    _, first = np.unique(clusters[by_key], return_index=True)  # each cluster's best, by key
    leads = by_key[np.sort(first)]  # in key order
    lead = np.zeros(len(order), dtype=bool)
    lead[leads] = True
    return np.concatenate([order[leads], order[~lead]])


def _within_quotas(order: np.ndarray, quotas: Sequence[tuple[Sequence, int]], budget: int) -> np.ndarray:
    used = [Counter() for _ in quotas]
    picks = []
    for i in order:
        if len(picks) == budget:
            break
        keys = [values[i] for values, _ in quotas]
        if all(count[key] < cap for count, key, (_, cap) in zip(used, keys, quotas)):
            picks.append(i)
            for count, key in zip(used, keys):
                count[key] += 1
    return np.asarray(picks, dtype=np.int64)
