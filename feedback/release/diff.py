"""What changed between two releases, from their indexes: what an ML engineer asks first.

Examples added and removed, relabeled (with a from -> to matrix), split moves (a release
never makes any; a non-zero count means the two are not parent and child), and the
change of each label's count and each split's size. Up to `SAMPLE` ids of each kind. And the
taxonomy changes made since the parent, each with the examples of the new release it touched.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

SAMPLE = 20
COLUMNS = ["id", "split", "label"]


def diff_indexes(old: pa.Table | None, new: pa.Table) -> dict:
    """The difference from index `old` (None for a first release) to index `new`, as plain data."""
    new = new.select(COLUMNS)
    if old is None:
        return _first_release(new)
    old = old.select(COLUMNS)
    at = pc.index_in(new["id"], value_set=old["id"].combine_chunks())  # each new example's row in old
    kept = pc.is_valid(at)
    before = old.take(at)
    kinds = {
        "added": (new, pc.invert(kept)),
        "removed": (old, pc.invert(pc.is_in(old["id"], value_set=new["id"].combine_chunks()))),
        "relabeled": (new, pc.and_kleene(kept, pc.not_equal(new["label"], before["label"]))),
        "split_moves": (new, pc.and_kleene(kept, pc.not_equal(new["split"], before["split"]))),
    }
    relabeled = pa.table({"from": before["label"], "to": new["label"]}).filter(kinds["relabeled"][1])
    matrix = relabeled.group_by(["from", "to"]).aggregate([([], "count_all")]).to_pylist()
    return {
        "examples": {"before": old.num_rows, "after": new.num_rows},
        **{kind: pc.sum(mask).as_py() or 0 for kind, (_, mask) in kinds.items()},
        "relabel_matrix": sorted(({"from": r["from"], "to": r["to"], "count": r["count_all"]} for r in matrix),
                                 key=lambda r: (-r["count"], r["from"], r["to"])),
        "labels": _change(old["label"], new["label"], "label"),
        "splits": _change(old["split"], new["split"], "split"),
        "samples": {kind: _first_ids(table.filter(mask)) for kind, (table, mask) in kinds.items()},
    }


def _first_release(new: pa.Table) -> dict:
    """The diff of a first release: everything added."""
    empty = pa.chunked_array([], pa.string())
    return {"examples": {"before": 0, "after": new.num_rows}, "added": new.num_rows, "removed": 0, "relabeled": 0,
            "split_moves": 0, "relabel_matrix": [], "labels": _change(empty, new["label"], "label"),
            "splits": _change(empty, new["split"], "split"),
            "samples": {"added": _first_ids(new), "removed": [], "relabeled": [], "split_moves": []}}


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


def taxonomy_changes(changes: list[dict], touched: pa.Table, index: pa.Table) -> list[dict]:
    """Each taxonomy change (`review.taxonomy.changes`) with `examples`: how many of the release's examples
    (`index`) it touched; `touched` holds (change_id, item_id) of every item each change touched."""
    mine = touched.filter(pc.is_in(touched["item_id"], value_set=index["id"].combine_chunks()))
    counts = _counts(mine["change_id"]) if mine.num_rows else {}
    return [{"change_id": c["change_id"], "kind": c["kind"], "labels_from": c["labels_from"],
             "labels_to": c["labels_to"], "by": c["actor"], "changed_at": c["changed_at"].isoformat(),
             "note": c["note"], "undone_at": c["undone_at"] and c["undone_at"].isoformat(),
             "examples": counts.get(c["change_id"], 0)} for c in changes]
