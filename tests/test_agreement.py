"""Agreement measures against published values and a constructed store."""

import pytest
from sklearn.metrics import cohen_kappa_score

from feedback.review import decide, krippendorff_alpha, reviewer_agreement, set_gold, undo_last
from feedback.roles import Actor
from conftest import configure
from test_review import queued  # noqa: F401  (fixture)

pytestmark = pytest.mark.backends


def test_krippendorff_alpha_matches_the_published_nominal_example():
    """Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", 4 coders x 12 units: alpha = 0.743."""
    coders = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    units = [[c[u] for c in coders if c[u] is not None] for u in range(12)]
    assert krippendorff_alpha(units) == pytest.approx(0.743, abs=0.0005)
    assert krippendorff_alpha([["a", "a"], ["b", "b"]]) == 1.0
    assert krippendorff_alpha([["a"]]) is None


def test_agreement_of_a_constructed_store(queued):
    queued = configure(queued, "review", overlap_share=1.0)  # independent answers on every item
    a, b, c = Actor("a", "reviewer"), Actor("b", "reviewer"), Actor("c", "reviewer")
    plan = {"c1": ("card_linking", "card_linking", "card_arrival"), "e1": ("card_arrival", "card_arrival", None),
            "low1": ("card_linking", "card_arrival", None), "low2": ("lost_or_stolen_card",) * 3}
    for item_id, votes in plan.items():
        for who, label in zip((a, b, c), votes):
            if label:
                decide(queued, who, item_id, label)
    decide(queued, c, "e1", "junk")  # not a label: does not count
    decide(queued, a, "sure", "card_linking")
    undo_last(queued, a)  # undone: does not count
    result = reviewer_agreement(queued)
    assert result["items_with_overlap"] == 4
    ab = next(p for p in result["pairs"] if (p["a"], p["b"]) == ("a", "b"))
    left = ["card_linking", "card_arrival", "card_linking", "lost_or_stolen_card"]
    right = ["card_linking", "card_arrival", "card_arrival", "lost_or_stolen_card"]
    assert ab["items"] == 4 and ab["agreement"] == 0.75
    assert ab["kappa"] == pytest.approx(cohen_kappa_score(left, right))
    lost = next(x for x in result["labels"] if x["label"] == "lost_or_stolen_card")
    assert lost == {"label": "lost_or_stolen_card", "agreement": 1.0, "pairs": 3}
    units = [list(v for v in votes if v) for votes in plan.values()]
    assert result["alpha"] == pytest.approx(krippendorff_alpha(units))


def test_gold_accuracy_per_reviewer(queued):
    lead = Actor("lead", "lead")
    set_gold(queued, lead, "c1", "card_linking")
    set_gold(queued, lead, "e1", "card_arrival")
    decide(queued, Actor("a", "reviewer"), "c1", "card_linking")
    decide(queued, Actor("a", "reviewer"), "e1", "card_linking")
    decide(queued, Actor("b", "reviewer"), "c1", "card_linking")
    assert reviewer_agreement(queued)["gold"] == [{"reviewer": "a", "items": 2, "accuracy": 0.5},
                                         {"reviewer": "b", "items": 1, "accuracy": 1.0}]
