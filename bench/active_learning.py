"""Choosing what reviewers see, on every dataset of `bench.datasets`, through the public API the way a team would.

Protocol, per dataset, seed and arm, each in a workspace of its own (the dataset's fixed taxonomy):
1. a pool of at most POOL train texts (the same for every seed) comes in as unlabeled production items
   (`item` events, ingested from a JSONL file: no probabilities, so the sampler fits its own model every
   round);
2. a seed of SEED_PER_CLASS labeled pool texts per class (drawn by the seed) comes in with `import_labels`;
3. every round, an evaluator fits a fixed model (`evaluator`: TF-IDF + logistic regression, defined here so
   that a change of the library's model does not move the yardstick) on `feedback.trusted_labels(ws)` and
   scores it on the test texts: the round's point; then the arm picks the dataset's batch of items and a
   reviewer labels them with their true labels through `decide_many` (what `feedback label --file` runs).
Arms: `random` (the reviewer picks at random) and `sampler` (`feedback sample` with its defaults), in the
same process. Measures, per dataset, from the mean curve over the seeds: the labels the sampler needs to
reach random's final accuracy (linear between rounds; target at least 50% fewer), each round where it is
below random (target: never more than 1 point, first round included), the worst seed-round, and how picks
spread over the true classes (the most picks one class gets in a round, and the classes a round covers).

The realistic production log (`production_log`): CLINC150's 150 intents, 5 trusted labels per intent
imported, then a production model fitted on them logs a prediction for every pool text, keeping only its
top 10 probabilities, and 30% of the events carry the score alone (no probabilities). One round of
`feedback sample` picks (defaults) against as many random pool items; both labeled, the evaluator
refitted. Target: the sampler's round at least as good as random's (mean of the seeds).

    python -m bench.active_learning --datasets clinc150,hwu64 --seeds 1   # a quick subset
    python -m bench --only active_learning                                  # everything, 3 seeds

About 12 minutes at scale 1 on 2 cores. `scale` below 1 runs one seed and fewer rounds: the measures
show, but the targets hold only at scale 1.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
import warnings
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from bench import datasets, result
from feedback import ingest_files, init_workspace, trusted_labels
from feedback.config_file import CONFIG_NAME
from feedback.learn import sample
from feedback.review import decide_many, import_labels
from feedback.roles import Actor
from feedback.workspace import Workspace

SEED_PER_CLASS, POOL, SEEDS = 2, 6000, 3
#: dataset -> (picks per round, rounds): about 1,500 to 3,000 labels at the end, 20x the classes or more
ROUNDS = {"banking77": (250, 10), "clinc150": (300, 10), "hwu64": (200, 10), "snips": (40, 10)}
SAVING_TARGET, GAP_TARGET = 0.50, -0.01
LOG_DATASET, LOG_TRUSTED, LOG_BATCH, LOG_TOP_K, LOG_SCORE_ONLY = "clinc150", 5, 300, 10, 0.3
REVIEWER, LEAD = Actor("reviewer", "reviewer"), Actor("lead", "lead")
ARMS = ("random", "sampler")
_SAID: set[str] = set()  # the sampler's messages of short rounds, printed once


def run(scale: float, names: list[str] | None = None, seeds: int | None = None,
        seed_per_class: int = SEED_PER_CLASS, model: str | None = None) -> list[dict]:
    full = scale >= 1
    seeds = seeds or (SEEDS if full else 1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="feedback-al-") as tmp:
        for name in names or list(datasets.NAMES):
            batch, rounds = ROUNDS[name]
            rounds = rounds if full else max(2, round(rounds * scale))
            curves = {arm: [loop(Path(tmp) / f"{name}-{arm}-{seed}", name, arm, seed=seed, rounds=rounds,
                                 batch=batch, seed_per_class=seed_per_class, model=model) for seed in range(seeds)]
                      for arm in ARMS}
            rows += measures(name, curves)
        if not names or LOG_DATASET in names:
            rows += production_log(Path(tmp) / "log", seeds, model)
    if not full:  # the targets are set for the full protocol; a smoke run only shows the measures
        rows = [r if r["target"] == "informational" else {**r, "target": f"{r['target']} at scale 1", "ok": True}
                for r in rows]
    return rows


def load() -> tuple[pd.DataFrame, pd.DataFrame]:
    """BANKING77's train and test splits as frames with columns text, category (what bench/suspects.py reads)."""
    return tuple(pd.DataFrame(dict(zip(("text", "category"), datasets.load("banking77", split))))
                 for split in ("train", "test"))


def evaluator() -> Pipeline:
    """The fixed yardstick: the library's model as of issue 25, whatever the library's model becomes."""
    return Pipeline([
        ("tfidf", TfidfVectorizer(sublinear_tf=True)),
        ("logreg", LogisticRegression(C=10.0, solver="saga", max_iter=100, tol=1e-3, random_state=0)),
    ])


def pool_of(name: str) -> tuple[list[str], list[str]]:
    """At most POOL train texts of `name`, the same for every seed and arm."""
    texts, labels = datasets.load(name, "train")
    keep = np.sort(np.random.default_rng(0).permutation(len(texts))[:POOL])
    return [texts[i] for i in keep], [labels[i] for i in keep]


def workspace(root: Path, labels: list[str], model: str | None = None) -> Workspace:
    """A workspace of the labels' fixed taxonomy; `model` sets its `[learn] model` (the sampler's text model)."""
    ws = init_workspace(root, dataset=root.name, labels=sorted(set(labels)))
    if not model:
        return ws
    config = ws.root / CONFIG_NAME
    config.write_text(config.read_text().replace("[learn]\n", f"[learn]\nmodel = {json.dumps(model)}\n", 1))
    return Workspace(ws.root)


def seed_labels(ws, root: Path, rows: list[tuple[str, str, str]]) -> None:
    """Import (item_id, text, label) rows as trusted labels, as a lead would."""
    path = root.parent / f"{root.name}-seed.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "text", "label"])
        writer.writerows(rows)
    import_labels(ws, [path], by=LEAD)


def per_class(labels: list[str], count: int, rng: np.random.Generator) -> list[int]:
    """Positions of `count` items of every label (all of a label's items when it has fewer)."""
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    return sorted(j for label in sorted(by_label)
                  for j in rng.choice(by_label[label], min(count, len(by_label[label])), replace=False))


def loop(root: Path, name: str, arm: str, *, seed: int, rounds: int, batch: int, seed_per_class: int,
         model: str | None) -> list[dict]:
    """One arm's curve: per round, the trusted labels, the evaluator's test accuracy and the picks' true labels."""
    texts, labels = pool_of(name)
    test = datasets.load(name, "test")
    rng = np.random.default_rng(seed)
    ids = [f"t{i:05d}" for i in range(len(texts))]
    truth = dict(zip(ids, labels))
    ws = workspace(root, labels, model)
    items = root.parent / f"{root.name}-items.jsonl"
    items.write_text("".join(json.dumps({"type": "item", "item_id": i, "event_id": i, "input": {"text": t}}) + "\n"
                             for i, t in zip(ids, texts)))
    ingest_files(ws, [items])
    seeded = per_class(labels, seed_per_class, rng)
    seed_labels(ws, root, [(ids[i], texts[i], labels[i]) for i in seeded])
    labeled, curve = {ids[i] for i in seeded}, []
    for round_ in range(rounds + 1):
        point = {"labels": len(labeled), "accuracy": accuracy(ws, test)}
        curve.append(point)
        if round_ == rounds:
            return curve
        picks = pick(ws, arm, sorted(set(ids) - labeled), batch, rng, seed)
        label(ws, [(i, truth[i]) for i in picks])
        point["picked"] = [truth[i] for i in picks]
        labeled |= set(picks)


def pick(ws, arm: str, unlabeled: list[str], batch: int, rng: np.random.Generator, seed: int) -> list[str]:
    if arm == "random":
        return rng.choice(unlabeled, batch, replace=False).tolist()
    run = sample(ws, budget=batch, seed=seed)
    if len(run["picks"]) < batch and run["message"] not in _SAID:
        _SAID.add(run["message"])
        print(f"  sampler picked {len(run['picks'])} of {batch}: {run['message']}", file=sys.stderr)
    return [p["item_id"] for p in run["picks"]]


def label(ws, decisions: list[tuple[str, str]]) -> None:
    decided = decide_many(ws, REVIEWER, [(k, {"item_id": i, "label": y}) for k, (i, y) in enumerate(decisions)])
    if decided["errors"]:
        raise RuntimeError(f"labeling failed: {decided['errors'][:3]}")


def accuracy(ws, test: tuple[list[str], list[str]]) -> float:
    """The evaluator fitted on the workspace's trusted labels (public API), scored on the test texts."""
    trusted = trusted_labels(ws).to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = evaluator().fit(trusted["text"], trusted["label"])
    return float((model.predict(test[0]) == np.asarray(test[1], dtype=object)).mean())


def measures(name: str, curves: dict[str, list[list[dict]]]) -> list[dict]:
    """Print the dataset's mean curves and return its rows (targets: saving, gap at every round)."""
    acc = {arm: np.array([[p["accuracy"] for p in c] for c in runs]) for arm, runs in curves.items()}
    mean = {arm: a.mean(axis=0) for arm, a in acc.items()}
    sizes = [p["labels"] for p in curves["random"][0]]
    gaps = mean["sampler"] - mean["random"]
    print(f"\n{name} ({datasets.NAMES[name]}): test accuracy by labels, mean of {len(acc['random'])} seeds")
    print(f"{'labels':>7} {'random':>8} {'sampler':>8} {'gap':>7}")
    for i, n in enumerate(sizes):
        print(f"{n:>7} {mean['random'][i]:>8.3f} {mean['sampler'][i]:>8.3f} {gaps[i]:>+7.3f}")
    budget, goal = sizes[-1], float(mean["random"][-1])
    own = np.mean([[p["labels"] for p in c] for c in curves["sampler"]], axis=0)  # fewer when a round picks less
    needed = labels_to_reach(list(zip(own, mean["sampler"])), goal)
    saving = 1 - needed / budget if math.isfinite(needed) else -math.inf
    below = [(sizes[i], float(gaps[i])) for i in range(1, len(sizes)) if gaps[i] < 0]
    worst = min(float(np.min(s[1:] - r[1:])) for s, r in zip(acc["sampler"], acc["random"]))
    spread = {arm: concentration(runs) for arm, runs in curves.items()}
    print(f"rounds below random: {', '.join(f'{n:,} ({g:+.3f})' for n, g in below) or 'none'}")
    trend = [1 - labels_to_reach(list(zip(own, mean["sampler"])), float(a)) / n
             for n, a in zip(sizes[1:], mean["random"][1:])]
    print("labels saved to reach random's accuracy at each round: "
          + ", ".join(f"{n:,} {t:.0%}" if math.isfinite(t) else f"{n:,} never" for n, t in zip(sizes[1:], trend)))
    for arm, (most, covered, first) in spread.items():
        print(f"{arm}: most picks from one class per round {most:.1f}, classes covered {covered:.1f} "
              f"(first round {first[0]} and {first[1]}; rounds with picks: "
              f"{sum(bool(p.get('picked')) for c in curves[arm] for p in c)} of {sum(len(c) - 1 for c in curves[arm])})")
    rows = [
        result("active learning", f"{name}: labels to reach random's final {goal:.3f} (at {budget:,}), "
               + (f"{saving:.0%} fewer" if math.isfinite(needed) else "never reached"), needed, "labels", baseline=budget, target=f">= {SAVING_TARGET:.0%} fewer",
               ok=saving >= SAVING_TARGET),
        result("active learning", f"{name}: worst round of the mean curve vs random ({len(below)} of "
               f"{len(sizes) - 1} rounds below)", float(gaps[1:].min()), "accuracy",
               target=f">= {GAP_TARGET:+.2f} at every round", ok=bool(gaps[1:].min() >= GAP_TARGET)),
        result("active learning", f"{name}: worst seed-round vs random", worst, "accuracy", target="informational",
               ok=True),
    ]
    (most, covered, _), (r_most, r_covered, _) = spread["sampler"], spread["random"]
    rows.append(result("active learning", f"{name}: most picks from one class per round (classes covered "
                       f"{covered:.1f}, random {r_covered:.1f})", most, "picks", baseline=r_most,
                       target="informational", ok=True))
    return rows


def concentration(runs: list[list[dict]]) -> tuple[float, float, tuple[int, int]]:
    """Mean over seeds and rounds of the most picks one true class got and of the classes covered; and the
    first round's (most, covered) of the first seed."""
    counts = [Counter(p["picked"]) for c in runs for p in c if p.get("picked")]
    first = Counter(runs[0][0]["picked"])
    return (float(np.mean([max(c.values()) for c in counts])) if counts else 0.0,
            float(np.mean([len(c) for c in counts])) if counts else 0.0, (max(first.values(), default=0), len(first)))


def labels_to_reach(curve: list[tuple[int, float]], goal: float) -> float:
    """Labels at which the curve first reaches `goal`, linear between rounds; infinite if it never does."""
    for (n0, a0), (n1, a1) in zip(curve, curve[1:]):
        if a1 >= goal:
            return float(n0) if a0 >= goal else n0 + (n1 - n0) * (goal - a0) / (a1 - a0)
    return math.inf


def production_log(root: Path, seeds: int, model_spec: str | None) -> list[dict]:
    """One round of sampler picks on a realistic log (top-k probabilities, score-only events) vs random picks."""
    texts, labels = datasets.load(LOG_DATASET, "train")
    test = datasets.load(LOG_DATASET, "test")
    points = {arm: [] for arm in ARMS}
    root.mkdir()
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(texts))
        trusted = per_class([labels[i] for i in order[:POOL]], LOG_TRUSTED, rng)
        trusted = [int(order[i]) for i in trusted]
        pool = [int(i) for i in order[POOL:2 * POOL]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = evaluator().fit([texts[i] for i in trusted], [labels[i] for i in trusted])
        probs = model.predict_proba([texts[i] for i in pool])
        score_only = rng.random(len(pool)) < LOG_SCORE_ONLY
        for arm in ARMS:
            ws = workspace(root / f"{arm}-{seed}", labels, model_spec)
            seed_labels(ws, root / f"{arm}-{seed}", [(f"s{i:05d}", texts[i], labels[i]) for i in trusted])
            events = root / f"{arm}-{seed}-log.jsonl"
            events.write_text("".join(json.dumps(prediction(f"p{i:05d}", texts[i], row, model.classes_, bare))
                                      + "\n" for i, row, bare in zip(pool, probs, score_only)))
            ingest_files(ws, [events])
            truth = {f"p{i:05d}": labels[i] for i in pool}
            picks = pick(ws, arm, sorted(truth), LOG_BATCH, rng, seed)
            label(ws, [(i, truth[i]) for i in picks])
            points[arm].append(accuracy(ws, test))
    mean = {arm: float(np.mean(p)) for arm, p in points.items()}
    print(f"\nproduction log ({LOG_DATASET}, {LOG_TRUSTED} trusted per intent, top-{LOG_TOP_K} probabilities, "
          f"{LOG_SCORE_ONLY:.0%} score-only): one round of {LOG_BATCH} picks, mean of {seeds} seeds: "
          f"random {mean['random']:.3f}, sampler {mean['sampler']:.3f}")
    gap = mean["sampler"] - mean["random"]
    return [result("active learning", f"production log: one round of {LOG_BATCH} sampler picks vs random picks "
                   f"(sampler {mean['sampler']:.3f}, random {mean['random']:.3f})", gap, "accuracy",
                   target=">= 0", ok=gap >= 0)]


def prediction(item_id: str, text: str, probs: np.ndarray, classes, score_only: bool) -> dict:
    """A production prediction event: its top-LOG_TOP_K probabilities, or its top-1 score alone."""
    top = np.argsort(-probs)[:LOG_TOP_K]
    made = {"label": str(classes[top[0]]), "score": round(float(probs[top[0]]), 4), "model": "intent-clf",
            "model_version": "v1"}
    if not score_only:
        made["probs"] = {str(classes[j]): round(float(probs[j]), 4) for j in top}
    return {"event_id": item_id, "type": "prediction", "item_id": item_id, "input": {"text": text},
            "ts": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "prediction": made}


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import render

    parser = argparse.ArgumentParser(prog="python -m bench.active_learning", description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(datasets.NAMES),
                        help=f"comma-separated, of {', '.join(datasets.NAMES)} (default: all)")
    parser.add_argument("--seeds", type=int, default=SEEDS, help=f"seeds per dataset (default {SEEDS})")
    parser.add_argument("--seed-per-class", type=int, default=SEED_PER_CLASS,
                        help=f"labels per class imported before the first round (default {SEED_PER_CLASS})")
    parser.add_argument("--model", help='the sampler\'s text model, "package.module:function" ([learn] model), e.g. '
                        '"bench.text_models:word_char_model" (default: the library\'s)')
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the rounds (default 1.0)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = sorted(set(names) - set(datasets.NAMES))
    if unknown or args.seeds < 1 or args.seed_per_class < 1:
        parser.error(f"unknown datasets {', '.join(unknown)}" if unknown else "--seeds and --seed-per-class must be 1 "
                     "or more")
    rows = run(args.scale, names, args.seeds, args.seed_per_class, args.model)
    print(render(rows))
    for r in rows:
        if r["target"] != "informational":
            print(f"{'MET ' if r['ok'] else 'MISS'} {r['measure']}: {r['value']:.4g} (target {r['target']})")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
