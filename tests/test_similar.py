"""Near-duplicate pairs and groups (blocking vs the exhaustive reference), "more like this"."""

import json
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st
from rapidfuzz import fuzz

from feedback.review.similar import (
    exhaustive_pairs, group, more_like_this, near_duplicate_pairs, normalise,
)
from conftest import REPO
from feedback.review import similar

pytestmark = pytest.mark.backends

N_TEXTS = 10_000
BREAD_SIT = [f"{hello}{body}{end}"
             for hello in ("", "hi ", "Hello, ")
             for body in ("my bread sit order is missing", "My bread-sit order is missing",
                          "my breadsit order is missing", "my bread sit order is mising",
                          "MY BREAD SIT ORDR IS MISSING")
             for end in ("", "!!")]


def sample_events_texts() -> list[str]:
    lines = (REPO / "sample_data" / "events.jsonl").read_text().splitlines()
    return [e["input"]["text"] for e in map(json.loads, lines) if "input" in e and "text" in e["input"]]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> list[str]:
    """10,000 texts: the sample log's inputs, then make_sample.py's BANKING77 texts and near-copies."""
    texts = sample_events_texts()
    out = tmp_path_factory.mktemp("similar") / "texts.jsonl"
    subprocess.run([sys.executable, "sample_data/make_sample.py", "--texts", str(N_TEXTS - len(texts)),
                    "--out", str(out)], cwd=REPO, check=True, capture_output=True)
    texts += [json.loads(line)["text"] for line in out.read_text().splitlines()]
    assert len(texts) == N_TEXTS
    return texts


@pytest.fixture(scope="module")
def exact(sample) -> dict:
    return {(i, j): score for i, j, score in exhaustive_pairs(sample, threshold=90)}


def test_blocking_finds_95_percent_of_the_exhaustive_pairs_and_nothing_below_threshold(sample, exact):
    found = near_duplicate_pairs(sample, threshold=90)
    assert len(exact) > 5_000  # the sample really has near-duplicates
    assert found == sorted(found) and all(i < j for i, j, _ in found)
    assert all(exact.get((i, j)) == score for i, j, score in found)  # exhaustive has it, same score
    assert len(found) / len(exact) >= 0.95
    for i, j, score in found[::500]:
        assert score == fuzz.ratio(normalise(sample[i]), normalise(sample[j])) >= 90


def test_groups_are_the_connected_components_of_the_pairs(sample):
    parent = list(range(len(sample)))

    def root(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for i, j, _ in near_duplicate_pairs(sample):
        parent[root(j)] = root(i)
    components = {}
    for x in range(len(sample)):
        components.setdefault(root(x), []).append(x)
    groups = group(sample)
    assert sorted(groups) == sorted(c for c in components.values() if len(c) >= 2)
    assert [(-len(g), g[0]) for g in groups] == sorted((-len(g), g[0]) for g in groups)
    assert sum(map(len, group(sample, min_size=1))) == len(sample)


def test_bread_sit_variants_form_one_group_among_unrelated_texts():
    texts = sample_events_texts()[:300]
    positions = list(range(7, 7 + 10 * len(BREAD_SIT), 10))
    for position, variant in zip(positions, BREAD_SIT):
        texts.insert(position, variant)
    groups = group(texts)
    assert len(BREAD_SIT) == 30 and groups[0] == positions
    assert all(len(g) < 5 for g in groups[1:])


def test_copies_that_differ_in_case_spacing_and_punctuation_score_100():
    texts = ["Where is my card?", "card arrival", "where  is my CARD", "WHERE IS MY CARD!!!"]
    assert near_duplicate_pairs(texts) == [(0, 2, 100.0), (0, 3, 100.0), (2, 3, 100.0)]
    assert group(texts) == [[0, 2, 3]]
    assert group(texts, min_size=1) == [[0, 2, 3], [1]]


def test_token_sort_ratio_ignores_word_order():
    texts = ["my bread sit order is missing", "missing: my bread sit order is", "something else entirely"]
    assert near_duplicate_pairs(texts) == []
    assert near_duplicate_pairs(texts, scorer="token_sort_ratio") == [(0, 1, 100.0)]
    assert exhaustive_pairs(texts, scorer="token_sort_ratio") == [(0, 1, 100.0)]
    assert group(texts, scorer="token_sort_ratio") == [[0, 1]]


def test_more_like_this_ranks_the_near_copy_first():
    texts = sample_events_texts()[:500]
    texts[123] = "my bread sit order is missing"
    texts[321] = "where is my bread sit order"
    hits = more_like_this("MY bread sit ordr is mising!!", texts, limit=5, threshold=50)
    assert hits[0] == (123, fuzz.ratio("my bread sit ordr is mising", "my bread sit order is missing"))
    assert 321 in [i for i, _ in hits]
    assert len(hits) <= 5 and all(score >= 50 for _, score in hits)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert more_like_this("zzzz qqqq", texts) == []


def test_more_like_this_breaks_ties_by_position():
    texts = ["card lost", "lost card", "card lost!", "CARD LOST", "card lots"]
    assert more_like_this("card lost", texts, limit=3) == [(0, 100.0), (2, 100.0), (3, 100.0)]


def test_empty_and_tiny_inputs():
    assert near_duplicate_pairs([]) == exhaustive_pairs([]) == [] and group([]) == []
    assert near_duplicate_pairs(["only one"]) == [] and group(["only one"], min_size=1) == [[0]]
    assert near_duplicate_pairs(["", "?!"]) == [(0, 1, 100.0)]  # both normalise to ""
    assert more_like_this("anything", []) == []


def test_normalise():
    assert normalise("  My bread-sit order   ISN'T here!! ") == "my bread sit order isnt here"
    assert normalise("Don’t_panic…\tＯＫ") == "dont panic ok"
    assert normalise("") == normalise(" - ") == ""


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_normalise_ascii_fast_path_follows_the_general_rule(text):
    assert normalise(text) == re.sub(r"[\W_]+", " ", text.lower().replace("'", "").replace("`", "")).strip()


@settings(deadline=None)  # the first call starts rapidfuzz's thread pool
@given(st.lists(st.sampled_from(["my card", "my cards", "my card!", "card my", "a b", "ab", ""]), max_size=12))
def test_pairs_are_exactly_the_exhaustive_pairs_inside_the_groups(texts):
    found = near_duplicate_pairs(texts, threshold=80)
    where = {x: k for k, g in enumerate(group(texts, threshold=80, min_size=1)) for x in g}
    exact = exhaustive_pairs(texts, threshold=80)
    assert found == [(i, j, score) for i, j, score in exact if where[i] == where[j]]


@pytest.mark.parametrize("call, message", [
    (lambda: near_duplicate_pairs("one text"), "texts must be a sequence of strings, got str"),
    (lambda: near_duplicate_pairs(None), "texts must be a sequence of strings, got NoneType"),
    (lambda: group(["a", None]), "texts[1] must be a string, got NoneType"),
    (lambda: near_duplicate_pairs(["a"], threshold=0), "threshold must be a number in (0, 100], got 0"),
    (lambda: exhaustive_pairs(["a"], threshold=101), "threshold must be a number in (0, 100], got 101"),
    (lambda: group(["a"], threshold="90"), "threshold must be a number in (0, 100], got '90'"),
    (lambda: group(["a"], threshold=float("nan")), "threshold must be a number in (0, 100], got nan"),
    (lambda: near_duplicate_pairs(["a"], scorer="WRatio"),
     "scorer must be one of ratio, token_sort_ratio, got 'WRatio'"),
    (lambda: near_duplicate_pairs(["a"], window=0), "window must be an integer >= 1, got 0"),
    (lambda: group(["a"], min_size=0), "min_size must be an integer >= 1, got 0"),
    (lambda: group(["a"], min_size=True), "min_size must be an integer >= 1, got True"),
    (lambda: more_like_this(None, ["a"]), "query must be a string, got NoneType"),
    (lambda: more_like_this("a", ["a"], limit=0), "limit must be an integer >= 1, got 0"),
    (lambda: more_like_this("a", ["a"], threshold=-1), "threshold must be a number in (0, 100], got -1"),
])
def test_invalid_arguments_are_named(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


def test_options_are_keyword_only():
    with pytest.raises(TypeError):
        near_duplicate_pairs(["a", "b"], 80)
    with pytest.raises(TypeError):
        more_like_this("a", ["a"], 3)


@pytest.mark.parametrize("a, b, same", [
    ("what's the current time", "what's the current date", False),
    ("how much PTO have I accrued", "how much PTO have I used", False),
    ("my card was stolen", "my card was bent", False),
    ("my card arrived", "my card has not arrived", False),
    ("when is the fee charged", "what is the fee charged", False),
    ("my bread sit order is missing", "My bread-sit order is misssing!", True),
    ("I sent 100 euros yesterday", "I sent 200 euros yesterday", True),
    ("where is my card please", "where is my card", True),
    ("breadsit order missing", "bread sit order missing", True),
])
def test_near_copies_differ_in_spelling_not_in_a_content_word(a, b, same):
    assert similar.same_words(similar.normalise(a), similar.normalise(b)) is same
    assert (similar.group([a, b], threshold=80) == [[0, 1]]) is same
    assert bool(similar.near_duplicate_pairs([a, b], threshold=80)) is same
    assert bool(similar.exhaustive_pairs([a, b], threshold=80)) is same


def test_texts_marked_apart_are_not_grouped_but_copies_of_one_text_stay_together():
    texts = ["my card is missing", "My card is misssing!", "my card is mising", "my card is missing"]
    assert similar.group(texts) == [[0, 1, 2, 3]]
    assert similar.group(texts, apart=[[0, 2], [1, 2], [2, 3]]) == [[0, 1, 3]]
    assert similar.group(texts, apart=[[0, 3]]) == [[0, 1, 2, 3]]  # the same text once normalised
    same, near = similar.group_labels(texts, apart=[[1, 2], [0, 1], [1, 3]])
    assert same.tolist() == [0, 1, 2, 0] and near.tolist() == [0, 1, 0, 0]
