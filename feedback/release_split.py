"""Duplicate groups and splits: near-copies share a split, and an example never changes split.

Groups are given as `rep`, an array that maps each example (row of the examples sorted by
id) to its group's first row, so a group's key is its smallest item id.
- duplicate groups (`duplicate_groups`): near-duplicates (`feedback.similar`, the default)
  or exact duplicates (same text after lower-casing and trimming);
- split groups (`split_groups`): the duplicate groups, or all examples of one source, or
  each example alone (`group_by` = near_duplicate | exact | source | item).

Split rule (`assign`): an example released before keeps the split it had last. A new
example joins the split of its group's earliest released member; a group with no
released member goes where the salted hash of its key falls among the cumulative split
ratios. A group whose released members sit in different splits (a new near-copy bridged
them) cannot be made whole without moving one, so it stays split and the leakage gate
reports it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import similar
from .errors import FeedbackError

GROUP_BY = ("near_duplicate", "exact", "source", "item")


def duplicate_groups(examples: pa.Table, *, group_by: str, threshold: float, max_items: int) -> np.ndarray:
    """Each example's duplicate group (near-duplicates when `group_by` is near_duplicate, else exact)."""
    if group_by != "near_duplicate":
        return _first_of(pc.utf8_lower(pc.utf8_trim_whitespace(examples["text"])))
    n = examples.num_rows
    if n > max_items:
        raise FeedbackError(
            f"near-duplicate grouping is limited to {max_items:,} examples and this release has {n:,}; "
            "raise [release] near_duplicate_max in feedback.toml, or set [release] group_by = \"exact\"")
    rep = np.arange(n)
    for members in similar.group(examples["text"].to_pylist(), threshold=threshold, min_size=2):
        rep[members] = members[0]
    return rep


def split_groups(examples: pa.Table, duplicates: np.ndarray, *, group_by: str) -> np.ndarray:
    """Each example's split group under the `group_by` policy."""
    if group_by == "source":
        return _first_of(examples["source"])
    if group_by == "item":
        return np.arange(examples.num_rows)
    return duplicates


def assign(rep: np.ndarray, bucket: np.ndarray, previous: np.ndarray, ratios: list[float]) -> np.ndarray:
    """Split codes (indexes into the ratios) by the module's rule; `previous` is -1 for new examples."""
    n = len(rep)
    natural = np.searchsorted(np.cumsum(ratios)[:-1], bucket[rep], side="right")
    released = np.flatnonzero(previous >= 0)
    earliest = np.full(n, n)
    np.minimum.at(earliest, rep[released], released)
    group_rows = earliest[rep]
    inherited = np.where(group_rows < n, previous[np.minimum(group_rows, n - 1)], -1)
    return np.where(previous >= 0, previous, np.where(inherited >= 0, inherited, natural))


def spanning(rep: np.ndarray, values: np.ndarray) -> list[np.ndarray]:
    """Groups (arrays of rows) whose members have more than one distinct value, smallest key first."""
    width = int(values.max()) + 1 if len(values) else 1
    pairs = np.unique(rep.astype(np.int64) * width + values)
    reps, counts = np.unique(pairs // width, return_counts=True)
    bad = reps[counts > 1]
    if not len(bad):
        return []
    rows = np.flatnonzero(np.isin(rep, bad))
    order = np.argsort(rep[rows], kind="stable")
    rows = rows[order]
    return np.split(rows, np.flatnonzero(np.diff(rep[rows])) + 1)


def _first_of(column: pa.ChunkedArray) -> np.ndarray:
    """For each row, the first row with the same value (itself when the value is null)."""
    codes = pc.dictionary_encode(column).combine_chunks().indices
    n = len(codes)
    valid = ~np.asarray(codes.is_null())
    values = np.asarray(codes.fill_null(0))
    uniq, first = np.unique(values[valid], return_index=True)
    rep = np.arange(n)
    rows = np.flatnonzero(valid)
    rep[rows] = rows[first[np.searchsorted(uniq, values[valid])]]
    return rep
