"""Duplicate groups and splits: near-copies share a split, and an example never changes split.

Groups are given as `rep`, an array that maps each example (row of the examples sorted by
id) to its group's first row, so a group's key is its smallest item id.
- duplicate groups (`duplicate_groups`): near-duplicates (`review.similar`, the default)
  or exact duplicates (identical text);
- split groups (`split_groups`): the duplicate groups, or all examples of one source, or
  each example alone (`group_by` = near_duplicate | exact | source | item).

Split rule (`assign`): an example released before keeps the split it had last; an example
never released whose split was pinned (imported with a `split`, say a frozen test set) takes
that split. A new example joins the split of its group's earliest released (or pinned)
member. The groups left are stratified by label: each label's new groups, in the order of the
salted hash of their key, fill what its splits lack under the ratios, counting that label's
examples already placed, so every label with enough examples reaches every split. A group
whose released members sit in different splits (a new near-copy bridged them) cannot be
made whole without moving one, so it stays split and the leakage gate reports it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import FeedbackError
from ..review import similar


def duplicate_groups(examples: pa.Table, *, group_by: str, threshold: float, max_items: int,
                     apart: list[list[str]] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Each example's duplicate group twice: (the same text, duplicates), where duplicates are near-duplicates
    when `group_by` is near_duplicate (and "the same text" is the same once normalised), else exact copies.
    `apart` holds sets of item ids a person marked "not duplicates"."""
    if group_by != "near_duplicate":
        same = _same_text(examples["text"], np.asarray(examples["text_hash"]))
        return same, same
    n = examples.num_rows
    if n > max_items:
        raise FeedbackError(
            f"near-duplicate grouping is limited to {max_items:,} examples and this release has {n:,}; "
            "raise [release] near_duplicate_max in feedback.toml, or set [release] group_by = \"exact\"")
    rows = [np.asarray(pc.index_in(pa.array(members, pa.string()), value_set=examples["id"].combine_chunks())
                       .drop_null()) for members in apart]
    return similar.group_labels(examples["text"].to_pylist(), threshold=threshold, apart=rows)


def split_groups(examples: pa.Table, duplicates: np.ndarray, *, group_by: str) -> np.ndarray:
    """Each example's split group under the `group_by` policy."""
    if group_by == "source":
        return _first_of(examples["source"])
    if group_by == "item":
        return np.arange(examples.num_rows)
    return duplicates


def assign(rep: np.ndarray, bucket: np.ndarray, previous: np.ndarray, ratios: list[float], *,
           strata: np.ndarray) -> np.ndarray:
    """Split codes (indexes into the ratios) by the module's rule; `previous` is -1 for new examples
    (or a pinned split's code), `strata` each example's label code (stratification)."""
    n = len(rep)
    released = np.flatnonzero(previous >= 0)
    earliest = np.full(n, n)
    np.minimum.at(earliest, rep[released], released)
    group_rows = earliest[rep]
    inherited = np.where(group_rows < n, previous[np.minimum(group_rows, n - 1)], -1)
    fixed = np.where(previous >= 0, previous, inherited)
    return np.where(fixed >= 0, fixed, _stratified(rep, bucket, fixed, np.asarray(ratios, dtype=float), strata))


def _stratified(rep: np.ndarray, bucket: np.ndarray, fixed: np.ndarray, ratios: np.ndarray,
                strata: np.ndarray) -> np.ndarray:
    """Splits for the groups with no fixed member, label by label: each label's new groups, in the order of
    their salted hash, fill the room its splits have left under the ratios (counting examples already fixed)."""
    n, width = len(rep), len(ratios)
    split = np.full(n, -1)
    new = fixed < 0
    counts = np.bincount(rep[new], minlength=n)
    keys = np.flatnonzero(counts)
    if not len(keys):
        return split
    sizes = counts[keys]
    label = strata[keys] + 1  # 0: no label
    labels = int(max(label.max(), strata.max() + 1)) + 1
    have = np.zeros((labels, width))
    np.add.at(have, (strata[~new] + 1, fixed[~new]), 1)
    incoming = np.bincount(label, weights=sizes, minlength=labels)
    room = np.clip(ratios * (have.sum(1) + incoming)[:, None] - have, 0, None)
    room = np.where(room.sum(1, keepdims=True) > 0, room, ratios)  # every split full: go by the ratios
    bounds = np.cumsum(room / room.sum(1, keepdims=True), axis=1) * incoming[:, None]
    order = np.argsort(label + bucket[keys])  # by label, then by hash (bucket is in [0, 1))
    ends = np.cumsum(sizes[order])
    starts = np.r_[0, np.cumsum(incoming)][label[order]]
    middle = ends - starts - sizes[order] / 2  # each group's middle, counted within its label
    chosen = np.empty(len(keys), dtype=np.int64)
    chosen[order] = (middle[:, None] > bounds[label[order], :-1]).sum(1)
    group_split = np.full(n, -1)
    group_split[keys] = chosen
    split[new] = group_split[rep[new]]
    return split


def spanning(rep: np.ndarray, values: np.ndarray) -> list[np.ndarray]:
    """Groups (arrays of rows, smallest key first) whose members do not all share one value."""
    bad = np.unique(rep[values != values[rep]])
    if not len(bad):
        return []
    rows = np.flatnonzero(np.isin(rep, bad))
    rows = rows[np.argsort(rep[rows], kind="stable")]
    return np.split(rows, np.flatnonzero(np.diff(rep[rows])) + 1)


def _same_text(texts: pa.ChunkedArray, hashes: np.ndarray) -> np.ndarray:
    """Groups of identical texts: same hash, then checked equal, so a hash collision groups nothing."""
    if not len(hashes):
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(hashes)  # rows of one hash together
    ordered = hashes[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    rep = np.empty(len(hashes), dtype=np.int64)
    rep[order] = np.repeat(np.minimum.reduceat(order, starts), np.diff(np.r_[starts, len(hashes)]))
    grouped = np.flatnonzero(rep != np.arange(len(rep)))
    firsts, back = np.unique(rep[grouped], return_inverse=True)
    differ = grouped[~np.asarray(pc.equal(_take(texts, grouped), _take(texts, firsts).take(back)))]
    rep[differ] = differ
    return rep


def _take(column: pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """The values at `rows` (increasing), taken chunk by chunk: `ChunkedArray.take` would first
    join the chunks, a copy of the whole column."""
    ends = np.cumsum([0] + [len(chunk) for chunk in column.chunks])
    cuts = np.searchsorted(rows, ends)
    return pa.concat_arrays([pa.array([], column.type)] + [
        chunk.take(rows[cuts[k]:cuts[k + 1]] - ends[k]) for k, chunk in enumerate(column.chunks)])


def _first_of(column: pa.ChunkedArray) -> np.ndarray:
    """For each row, the first row with the same value (itself when the value is null)."""
    codes = pc.dictionary_encode(column.combine_chunks()).indices
    values = np.asarray(codes.fill_null(-1), dtype=np.int64)
    # dictionary codes are numbered in order of first appearance: a row is a first when its code is new
    first = np.flatnonzero(values > np.maximum.accumulate(np.r_[-1, values[:-1]]))
    rep = np.arange(len(values))
    valid = values >= 0
    rep[valid] = first[values[valid]]
    return rep
