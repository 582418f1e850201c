"""What changed between two releases, from their indexes: what an ML engineer asks first.

Examples added and removed, relabeled (with a from -> to matrix), split moves (a release
never makes any; a non-zero count means the two are not parent and child), and the
change of each label's count and each split's size. Up to `SAMPLE` ids of each kind.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

SAMPLE = 20
COLUMNS = ["id", "split", "label"]
_EMPTY = pa.table({c: pa.array([], pa.string()) for c in COLUMNS})


def diff_indexes(old: pa.Table | None, new: pa.Table) -> dict:
    """The difference from index `old` (None: nothing) to index `new`, as plain data."""
    old = _EMPTY if old is None else old.select(COLUMNS)
    joined = new.select(COLUMNS).join(old.rename_columns(["id", "old_split", "old_label"]), "id",
                                      join_type="full outer")
    in_new, in_old = pc.is_valid(joined["split"]), pc.is_valid(joined["old_split"])
    both = pc.and_(in_new, in_old)
    kinds = {
        "added": pc.and_not(in_new, in_old),
        "removed": pc.and_not(in_old, in_new),
        "relabeled": pc.and_(both, pc.not_equal(joined["label"], joined["old_label"])),
        "split_moves": pc.and_(both, pc.not_equal(joined["split"], joined["old_split"])),
    }
    counts = {kind: pc.sum(mask).as_py() or 0 for kind, mask in kinds.items()}
    relabeled = joined.filter(kinds["relabeled"]).group_by(["old_label", "label"]).aggregate([("id", "count")])
    matrix = sorted(({"from": r["old_label"], "to": r["label"], "count": r["id_count"]}
                     for r in relabeled.to_pylist()), key=lambda r: (-r["count"], r["from"], r["to"]))
    return {
        "examples": {"before": old.num_rows, "after": new.num_rows},
        **counts,
        "relabel_matrix": matrix,
        "labels": _change(old["label"], new["label"], "label"),
        "splits": _change(old["split"], new["split"], "split"),
        "samples": {kind: _first_ids(joined.filter(mask)) for kind, mask in kinds.items()},
    }


def _first_ids(table: pa.Table) -> list[str]:
    first = pc.select_k_unstable(table, k=min(SAMPLE, table.num_rows), sort_keys=[("id", "ascending")])
    return table["id"].take(first).to_pylist()


def _change(before: pa.ChunkedArray, after: pa.ChunkedArray, name: str) -> list[dict]:
    a, b = _counts(before), _counts(after)
    return [{name: key, "before": a.get(key, 0), "after": b.get(key, 0), "change": b.get(key, 0) - a.get(key, 0)}
            for key in sorted(set(a) | set(b))]


def _counts(column: pa.ChunkedArray) -> dict[str, int]:
    counted = pc.value_counts(column)
    return dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()))
