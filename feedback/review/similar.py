"""Near-duplicate texts: groups a reviewer can label at once, and "more like this".

Production inputs are full of near-copies ("my bread sit order is missing", "My bread-sit
order is misssing!"). A reviewer should see them as one group and label the group at once.

Score convention, used everywhere here: rapidfuzz `fuzz.ratio` of the `normalise`d texts, a
float in [0, 100], higher means more alike; a pair is a near-duplicate when its score is
>= `threshold` and its words agree (`same_words`): every word one text has and the other
lacks is a typo or a piece of a word the other has, a number, or a small function word. So
"what's the current time" and "what's the current date" (ratio 91) are not near-duplicates:
they differ in a content word, and near-copies differ in spelling. With
`scorer="token_sort_ratio"` the words of each text are sorted first, so word order stops
mattering.

Comparing every pair (`exhaustive_pairs`) costs n^2/2 comparisons, 5e9 for 100,000 texts.
`near_duplicate_pairs` and `group` avoid that with blocking:

1. Exact duplicates (after normalising) are collapsed to one text.
2. Candidates: every text gets one key per word, the text rotated to start at that word (a
   sorted neighbourhood over word rotations). Keys are sorted and each is paired with its
   `window` next keys. Whatever the edits in a near-copy, some rotation starts after them
   and sorts next to the original's.
3. Candidates of very different lengths are dropped (they cannot reach the threshold);
   the rest are verified with `fuzz.ratio` and `same_words` -> edges.
4. Connected components of the edges (union-find) are the groups.
5. For pairs, every pair inside each component is scored exactly: near-copies cluster
   densely, so this recovers the pairs the windows missed, at a cost of the squared
   component sizes instead of the squared number of texts.

Step 5 makes the result exact within a component, but two near-duplicates that step 2
never connected, directly or through others, are missed. `bench/similar.py` measures recall
against `exhaustive_pairs` (at least 95% of its pairs at threshold 90 is the target).
Nothing here samples, and ties are broken by position, so results are deterministic.
"""

import re
import unicodedata
from collections.abc import Iterable, Sequence
from numbers import Real

import numpy as np
from rapidfuzz import fuzz, process

SCORERS = ("ratio", "token_sort_ratio")
_KEY_BYTES = 24  # bytes of each rotation compared when sorting keys
_CELLS = 1 << 25  # score-matrix cells computed at once (32 MB of uint8)
_SMALL = 32  # components up to this size have their pairs listed, larger ones get cdist
_TYPO = 75.0  # two words at least this alike (fuzz.ratio) are one word spelled two ways
#: Words whose presence or absence does not change what a short request asks (question words and
#: negations are not among them: "when" is not "what", "not arrived" is not "arrived").
FUNCTION_WORDS = frozenset(
    "a an the my mine me i im ive id i'm your you u to of for on in at by from with and or but so is are am "
    "was were be been it its this that these those there here do does did have has had can could would will "
    "shall should may might please pls plz thanks thank thx hi hello hey dear just also still yet any some "
    "again now today then too very really ok okay yes".split())

_NOT_WORD = re.compile(r"[\W_]+")
# The same rule for ASCII text, several times faster: letters and digits stay, the rest is a space.
_ASCII_WORD = bytes(c if chr(c).isalnum() else 32 for c in range(128)).ljust(256, b" ")


def normalise(text: str) -> str:
    """Lower-case `text`, drop apostrophes, turn runs of punctuation and whitespace into one space.

    >>> normalise("  My bread-sit order   ISN'T here!! ")
    'my bread sit order isnt here'
    """
    if text.isascii():
        return " ".join(text.lower().encode().translate(_ASCII_WORD, b"'`").decode().split())
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("'", "").replace("\u2019", "").replace("`", "")
    return _NOT_WORD.sub(" ", text).strip()


def same_words(a: str, b: str) -> bool:
    """Whether two normalised texts say the same in other spellings: each word only one of them has
    is a typo of, or a piece of, a word only the other has, or a number, or a function word."""
    return _agree(frozenset(a.split()), frozenset(b.split()))


def _agree(words_a: frozenset, words_b: frozenset) -> bool:
    only_a, only_b = words_a - words_b, words_b - words_a
    return not (only_a or only_b) or (_explained(only_a, only_b) and _explained(only_b, only_a))


def _explained(words: frozenset, others: frozenset) -> bool:
    ratio = fuzz.ratio
    for word in words:
        if word in FUNCTION_WORDS:
            continue
        for other in others:
            if (word.isdigit() and other.isdigit()) or (min(len(word), len(other)) >= 2 and (
                    word in other or other in word or ratio(word, other) >= _TYPO)):
                break
        else:
            return False
    return True


def near_duplicate_pairs(texts: Sequence[str], *, threshold: float = 90.0, scorer: str = "ratio",
                         window: int = 4) -> list[tuple[int, int, float]]:
    """Pairs `(i, j, score)` with `i < j` of near-duplicate texts, sorted by `(i, j)`.

    Fast and approximate (see the module docstring); `exhaustive_pairs` is the exact
    reference. A larger `window` finds more pairs and takes longer.
    """
    prepared = _prepare(texts, threshold=threshold, scorer=scorer, window=window)
    uniq, inverse = _collapse(prepared)
    labels = _components(len(uniq), *_edges(uniq, threshold, window)[:2])
    i, j, score = _pairs_within_groups(uniq, labels, threshold)
    return _as_list(*_expand_pairs(inverse, i, j, score))


def group(texts: Sequence[str], *, threshold: float = 90.0, min_size: int = 2, scorer: str = "ratio",
          window: int = 4, apart: Sequence[Sequence[int]] = ()) -> list[list[int]]:
    """Groups of near-duplicate texts (connected components), as lists of positions in `texts`.

    Groups of fewer than `min_size` texts are left out (`min_size=1` returns every text in
    some group). Largest group first, then by first position; positions ascending. `apart`
    lists sets of positions a person marked "not duplicates": no edge joins two of one set
    (texts that normalise to the same text stay together all the same).
    """
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 1:
        raise ValueError(f"min_size must be an integer >= 1, got {min_size!r}")
    labels = group_labels(texts, threshold=threshold, scorer=scorer, window=window, apart=apart)[1]
    size = np.bincount(labels)[labels]
    kept = np.flatnonzero(size >= min_size)
    kept = kept[np.argsort(labels[kept], kind="stable")]  # by group, positions ascending
    groups = [g.tolist() for g in np.split(kept, np.flatnonzero(np.diff(labels[kept])) + 1) if len(g)]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return groups


def group_labels(texts: Sequence[str], *, threshold: float = 90.0, scorer: str = "ratio", window: int = 4,
                 apart: Sequence[Sequence[int]] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Each text's group twice, as the smallest position in it: (the same text once normalised, near-duplicates)."""
    prepared = _prepare(texts, threshold=threshold, scorer=scorer, window=window)
    uniq, inverse = _collapse(prepared)
    i, j, _ = _edges(uniq, threshold, window)
    i, j = _cut(i, j, [inverse[list(members)] for members in apart])
    first = np.full(len(uniq), len(inverse))
    np.minimum.at(first, inverse, np.arange(len(inverse)))
    labels = _components(len(uniq), i, j)
    near = np.full(len(uniq), len(inverse))
    np.minimum.at(near, labels, first)
    return first[inverse], near[labels][inverse]


def exhaustive_pairs(texts: Sequence[str], *, threshold: float = 90.0,
                     scorer: str = "ratio") -> list[tuple[int, int, float]]:
    """Every pair `(i, j, score)` with `i < j` and score >= `threshold`, sorted by `(i, j)`.

    The exact reference for `near_duplicate_pairs`: scores all n^2/2 pairs with rapidfuzz's
    `cdist` (all cores, in row chunks to bound memory). Slow beyond tens of thousands of texts.
    """
    prepared = _prepare(texts, threshold=threshold, scorer=scorer)
    i, j, score = _all_pairs(prepared, threshold)
    return _as_list(i, j, score)


def more_like_this(query: str, texts: Sequence[str], *, limit: int = 10,
                   threshold: float = 70.0) -> list[tuple[int, float]]:
    """The `limit` texts most like `query`, as `(position, score)`, best first.

    Only scores >= `threshold` count; ties keep the order of `texts`. If `query` is itself
    one of `texts`, it comes back first with score 100.
    """
    if not isinstance(query, str):
        raise ValueError(f"query must be a string, got {type(query).__name__}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be an integer >= 1, got {limit!r}")
    prepared = _prepare(texts, threshold=threshold, scorer="ratio")
    return closest(query, prepared, limit=limit, threshold=threshold)


def closest(query: str, normalised: Sequence[str], *, limit: int, threshold: float) -> list[tuple[int, float]]:
    """`more_like_this` over texts already `normalise`d, unchecked: for a caller that keeps them between calls."""
    found = process.extract(normalise(query), normalised, scorer=fuzz.ratio, limit=limit, score_cutoff=threshold)
    return [(index, score) for _, score, index in found]


# -- validation -------------------------------------------------------------------------------

def _prepare(texts, *, threshold, scorer, window=1) -> list[str]:
    """Check the public arguments; return the texts as compared (normalised, maybe word-sorted)."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Iterable):
        raise ValueError(f"texts must be a sequence of strings, got {type(texts).__name__}")
    texts = list(texts)
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts[{position}] must be a string, got {type(text).__name__}")
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not 0 < threshold <= 100:
        raise ValueError(f"threshold must be a number in (0, 100], got {threshold!r}")
    if scorer not in SCORERS:
        raise ValueError(f"scorer must be one of {', '.join(SCORERS)}, got {scorer!r}")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be an integer >= 1, got {window!r}")
    normalised = [normalise(text) for text in texts]
    if scorer == "token_sort_ratio":
        return [" ".join(sorted(text.split())) for text in normalised]
    return normalised


# -- computation (arguments already checked) ---------------------------------------------------

def _collapse(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Distinct texts in first-seen order, and for each input text the index of its distinct text."""
    index: dict[str, int] = {}
    inverse = np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.int64,
                          count=len(texts))
    return list(index), inverse


def _candidates(texts: list[str], threshold: float, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs `(i, j)`, `i < j`: neighbours among the sorted word rotations of the texts."""
    n = len(texts)
    # All texts as UTF-8, each followed by a 0 byte, which sorts before any character.
    encoded = [text.encode() for text in texts]
    size = np.fromiter((len(b) + 1 for b in encoded), dtype=np.int64, count=n)
    data = np.frombuffer(b"\0".join(encoded) + b"\0", dtype=np.uint8)
    start = np.cumsum(size) - size
    # A key starts at each word: a byte after a space or after the end of the previous text.
    previous = np.r_[np.uint8(0), data[:-1]]
    at = np.flatnonzero((data != 0) & ((previous == 32) | (previous == 0)))
    doc = np.searchsorted(start, at, side="right") - 1
    # Pack the first _KEY_BYTES bytes of each rotation into big-endian uint64 words, sort.
    words = np.zeros((_KEY_BYTES // 8, len(at)), dtype=np.uint64)
    for k in range(_KEY_BYTES):
        byte = data[start[doc] + (at - start[doc] + k) % size[doc]].astype(np.uint64)
        words[k // 8] |= byte << np.uint64(8 * (7 - k % 8))
    doc = doc[np.lexsort(words[::-1])]
    # Pair each key with the next `window` keys; drop pairs whose lengths rule them out:
    # ratio = 100 * (1 - indel / (len_i + len_j)) and indel >= |len_i - len_j|.
    length = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    codes = [np.empty(0, np.int64)]
    for k in range(1, window + 1):
        a, b = np.minimum(doc[:-k], doc[k:]), np.maximum(doc[:-k], doc[k:])
        total = length[a] + length[b]
        keep = (a != b) & (100 * (total - np.abs(length[a] - length[b])) >= threshold * total)
        codes.append(a[keep] * n + b[keep])
    code = _unique(np.concatenate(codes))
    return code // n, code % n


def _edges(texts: list[str], threshold: float, window: int):
    """Candidate pairs that score >= threshold, with their scores."""
    return _verify(texts, *_candidates(texts, threshold, window), threshold)


def _verify(texts: list[str], i: np.ndarray, j: np.ndarray, threshold: float):
    """The pairs among `(i, j)` that score >= threshold and whose words agree, with their scores."""
    if len(i) == 0:
        return i, j, np.empty(0)
    array = np.array(texts, dtype=object)
    score = process.cpdist(array[i], array[j], scorer=fuzz.ratio, score_cutoff=threshold,
                           dtype=np.float64, workers=-1)
    keep = np.flatnonzero(score >= threshold)
    words = {n: frozenset(texts[n].split()) for n in np.unique(np.r_[i[keep], j[keep]]).tolist()}
    agree = np.fromiter((_agree(words[a], words[b]) for a, b in zip(i[keep].tolist(), j[keep].tolist())),
                        dtype=bool, count=len(keep))
    keep = keep[agree]
    return i[keep], j[keep], score[keep]


def _cut(i: np.ndarray, j: np.ndarray, apart: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The edges `(i, j)` except those joining two members of one set of `apart`."""
    if not apart or not len(i):
        return i, j
    marked = {(int(a), int(b)) for members in apart for a in members for b in members if a < b}
    keep = np.fromiter(((a, b) not in marked for a, b in zip(i.tolist(), j.tolist())), dtype=bool, count=len(i))
    return i[keep], j[keep]


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Union-find over edges `(i, j)`: each node's label is the smallest node of its component."""
    parent = np.arange(n)
    while True:
        root_i, root_j = parent[i], parent[j]
        differ = root_i != root_j
        if not differ.any():
            return parent
        # Hook the larger root under the smaller, then compress paths fully.
        np.minimum.at(parent, np.maximum(root_i[differ], root_j[differ]),
                      np.minimum(root_i[differ], root_j[differ]))
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand


def _pairs_within_groups(texts: list[str], labels: np.ndarray, threshold: float):
    """Every pair scoring >= threshold inside each component of `labels`, exactly."""
    size = np.bincount(labels)[labels]
    # Small components: list all their pairs and verify them at once.
    nodes = np.flatnonzero((size > 1) & (size <= _SMALL))
    nodes = nodes[np.argsort(labels[nodes], kind="stable")]
    found = [_verify(texts, *_pairs_in_runs(nodes, labels[nodes]), threshold)]
    # Large ones: score every pair of each with cdist.
    nodes = np.flatnonzero(size > _SMALL)
    nodes = nodes[np.argsort(labels[nodes], kind="stable")]
    for members in np.split(nodes, np.flatnonzero(np.diff(labels[nodes])) + 1):
        if len(members):
            i, j, score = _all_pairs([texts[m] for m in members], threshold)
            found.append((members[i], members[j], score))
    return tuple(np.concatenate(parts) for parts in zip(*found))


def _pairs_in_runs(nodes: np.ndarray, run: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All pairs of `nodes` within each run of equal `run` values (`run` sorted)."""
    end = np.r_[np.flatnonzero(np.diff(run)) + 1, len(run)]
    later = np.repeat(end, np.diff(np.r_[0, end])) - np.arange(len(run)) - 1
    first = np.repeat(np.arange(len(run)), later)
    second = first + 1 + np.arange(len(first)) - np.repeat(np.cumsum(later) - later, later)
    return nodes[first], nodes[second]


def _all_pairs(texts: list[str], threshold: float):
    """Every pair `(i, j, score)` with `i < j` and score >= threshold: cdist over the upper triangle."""
    n = len(texts)
    rows = max(1, _CELLS // max(n, 1))
    # Scores below the cutoff come back as 0; uint8 (rounded scores) is the fastest to write.
    dtype = np.uint8 if threshold >= 1 else np.float32
    first, second = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
    for start in range(0, n - 1, rows):
        block = process.cdist(texts[start:start + rows], texts[start:], scorer=fuzz.ratio,
                              score_cutoff=threshold, dtype=dtype, workers=-1)
        i, j = np.nonzero(block)
        keep = j > i  # columns start at `start`: j > i is the upper triangle
        first.append(i[keep] + start)
        second.append(j[keep] + start)
    return _verify(texts, np.concatenate(first), np.concatenate(second), threshold)  # exact scores


def _expand_pairs(inverse: np.ndarray, i: np.ndarray, j: np.ndarray, score: np.ndarray):
    """Pairs over distinct texts -> pairs over the original positions (copies score 100)."""
    order = np.argsort(inverse, kind="stable")
    count = np.bincount(inverse)
    start = np.cumsum(count) - count
    # Every copy of text i with every copy of text j.
    repeat = count[i] * count[j]
    pair = np.repeat(np.arange(len(i)), repeat)
    within = np.arange(len(pair)) - np.repeat(np.cumsum(repeat) - repeat, repeat)
    a = order[start[i[pair]] + within // count[j[pair]]]
    b = order[start[j[pair]] + within % count[j[pair]]]
    # Copies of one text with each other.
    c, d = _pairs_in_runs(order, inverse[order])
    i, j = np.r_[np.minimum(a, b), np.minimum(c, d)], np.r_[np.maximum(a, b), np.maximum(c, d)]
    return i, j, np.r_[score[pair], np.full(len(c), 100.0)]


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique is many times slower on large int64 arrays in numpy 2.4)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


def _as_list(i: np.ndarray, j: np.ndarray, score: np.ndarray) -> list[tuple[int, int, float]]:
    """Pairs as a list of `(i, j, score)` tuples sorted by `(i, j)`."""
    order = np.lexsort((j, i))
    return list(zip(i[order].tolist(), j[order].tolist(), score[order].tolist()))
