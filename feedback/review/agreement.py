"""How far reviewers agree, and how right they are on gold items.

Each reviewer's latest live label decision per item counts once, on the items that take independent
decisions (gold items and the `review.overlap_share`, see `state`): elsewhere a second person's label
is a relabel made after seeing the first (a suspect's review, a lead's override), not an independent
answer. Skips, junk, unsure, undone decisions and adjudications do not count. Measures:
- per reviewer pair: items both labeled, observed agreement, Cohen's kappa;
- per label: specific agreement 2a / (2a + b), where a counts within-item reviewer
  pairs that both chose the label and b the pairs where only one did;
- overall: Krippendorff's alpha (nominal), for any number of reviewers per item;
- per reviewer: accuracy on gold items, except those the reviewer set.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from itertools import combinations

from ..workspace import Workspace
from .state import needs_overlap


def krippendorff_alpha(units: list[list[str]]) -> float | None:
    """Nominal Krippendorff's alpha over units, each the list of values its coders gave (None if undefined)."""
    coincidences: Counter = Counter()
    for values in units:
        m = len(values)
        if m < 2:
            continue
        for i, j in combinations(range(m), 2):
            coincidences[(values[i], values[j])] += 1 / (m - 1)
            coincidences[(values[j], values[i])] += 1 / (m - 1)
    totals: Counter = Counter()
    for (c, _), weight in coincidences.items():
        totals[c] += weight
    n = sum(totals.values())
    disagree = sum(w for (c, k), w in coincidences.items() if c != k)
    expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
    if n <= 1 or expected == 0:
        return None
    return 1 - (n - 1) * disagree / expected


def reviewer_agreement(ws: Workspace) -> dict:
    """Pairwise kappa, per-label specific agreement, Krippendorff's alpha and gold accuracy."""
    with ws.store().connect() as tx:
        votes = tx.rows(
            """
            SELECT item_id, reviewer, arg_max(label, decided_at) AS label FROM decisions
            WHERE kind = 'label' AND decision_id NOT IN (SELECT undoes FROM decisions WHERE kind = 'undo')
            GROUP BY item_id, reviewer
            """
        )
        gold = {r["item_id"]: r for r in tx.rows(
            "SELECT item_id, arg_max(label, set_at) AS label, arg_max(set_by, set_at) AS set_by FROM gold "
            "GROUP BY item_id")}
    by_item: dict[str, dict[str, str]] = defaultdict(dict)
    for v in votes:
        if needs_overlap(ws, v["item_id"], gold=v["item_id"] in gold):
            by_item[v["item_id"]][v["reviewer"]] = v["label"]
    shared = {i: r for i, r in by_item.items() if len(r) >= 2}
    return {
        "items_with_overlap": len(shared),
        "alpha": krippendorff_alpha([list(r.values()) for r in shared.values()]),
        "pairs": _pairs(shared),
        "labels": _per_label(shared),
        "gold": _gold_accuracy(by_item, gold),
    }


def _pairs(shared: dict[str, dict[str, str]]) -> list[dict]:
    together: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for reviewers in shared.values():
        for a, b in combinations(sorted(reviewers), 2):
            together[(a, b)].append((reviewers[a], reviewers[b]))
    result = []
    for (a, b), pairs in sorted(together.items()):
        left, right = zip(*pairs)
        defined = len(set(left) | set(right)) > 1
        result.append({"a": a, "b": b, "items": len(pairs),
                       "agreement": sum(x == y for x, y in pairs) / len(pairs),
                       "kappa": cohen_kappa(left, right) if defined else None})
    return result


def cohen_kappa(left: tuple[str, ...], right: tuple[str, ...]) -> float:
    """Cohen's kappa of two reviewers' labels on the same items: agreement beyond chance, in [-1, 1]."""
    n = len(left)
    observed = sum(x == y for x, y in zip(left, right)) / n
    a, b = Counter(left), Counter(right)
    chance = sum(a[label] * b[label] for label in a) / (n * n)
    return (observed - chance) / (1 - chance)


def _per_label(shared: dict[str, dict[str, str]]) -> list[dict]:
    both: Counter = Counter()
    one: Counter = Counter()
    for reviewers in shared.values():
        for x, y in combinations(reviewers.values(), 2):
            if x == y:
                both[x] += 1
            else:
                one[x] += 1
                one[y] += 1
    return [{"label": label, "agreement": 2 * both[label] / (2 * both[label] + one[label]),
             "pairs": both[label] + one[label]} for label in sorted(set(both) | set(one))]


def _gold_accuracy(by_item: dict[str, dict[str, str]], gold: dict[str, dict]) -> list[dict]:
    scores: dict[str, list[bool]] = defaultdict(list)
    for item_id, answer in gold.items():
        for reviewer, label in by_item.get(item_id, {}).items():
            if reviewer != answer["set_by"]:
                scores[reviewer].append(label == answer["label"])
    return [{"reviewer": r, "items": len(s), "accuracy": sum(s) / len(s)} for r, s in sorted(scores.items())]
