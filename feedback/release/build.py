"""A release's content, computed from its examples: splits, index, digests, release id and file bytes.

`release_id` is the SHA-256 of canonical JSON holding the data schema, the split policy
and each split's digest, where a split's digest is the SHA-256 of its row hashes sorted
and concatenated. It depends on the examples and how they are split, never on when or
where the release was built.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.compute as pc

from ..errors import FeedbackError
from .card import render_card
from .files import CARD, DATA_SCHEMA, DIFF, INDEX, MANIFEST, SUMS, Destination, render_sums, write_parquet
from .select import ROW_HASH
from .split import assign, duplicate_groups, split_groups

_DICTIONARY = ["label", "split", "label_reviewer"]  # the columns with few distinct values
_BLOCK = 65_536  # rows hashed at a time
_STATISTICS = ["id", "label", "split", "label_reviewer", "adjudicated"]  # the columns readers filter on


def build(cfg: dict, examples: pa.Table, known: pa.Table, *, salt: str, class_names: list[str],
          apart: list[list[str]] = ()) -> dict:
    """Groups, splits, index, per-split rows/digest/files, counts per label and split, and release id.

    `known` holds (id, split) of every example of earlier releases, as it was last released;
    `class_names` orders the labels as classes (the data card declares them as Hugging Face `ClassLabel`);
    `apart` holds sets of item ids marked "not duplicates".
    """
    names = list(cfg["splits"])
    same_text, duplicates = duplicate_groups(examples, group_by=cfg["group_by"], apart=apart,
                                             threshold=cfg["near_duplicate_threshold"],
                                             max_items=cfg["near_duplicate_max"])
    rep = split_groups(examples, duplicates, group_by=cfg["group_by"])
    previous = _previous(known, examples["id"], names)
    fixed = np.where(previous >= 0, previous, _codes(examples["pinned_split"], names))  # pins hold for new examples
    codes = assign(rep, np.asarray(examples["bucket"]), fixed, list(cfg["splits"].values()),
                   strata=_codes(examples["label"], None))
    alone = np.bincount(rep, minlength=len(rep))[rep] < 2
    index = pa.table({
        "id": examples["id"], "split": pa.array(names, pa.string()).take(codes), "label": examples["label"],
        "row_hash": examples["row_hash"], "group": examples["id"].take(pa.array(rep, pa.int64(), mask=alone)),
        "label_decision_id": examples["label_decision_id"], "label_reviewer": examples["label_reviewer"],
        "adjudicated": examples["adjudicated"], "imported": examples["imported"],
    })
    masks = {name: pa.array(codes == code) for code, name in enumerate(names)}
    splits = {}
    for name, mask in masks.items():
        rows = int(np.count_nonzero(mask))
        count = -(-rows // cfg["rows_per_file"])
        splits[name] = {"rows": rows, "digest": split_digest(examples["row_hash"].filter(mask)),
                        "files": [f"data/{name}-{i:05d}-of-{count:05d}.parquet" for i in range(count)]}
    policy = {"group_by": cfg["group_by"], "salt": salt, "ratios": cfg["splits"]}
    if cfg["group_by"] == "near_duplicate":
        policy["threshold"] = cfg["near_duplicate_threshold"]
    schema = [{"name": f.name, "type": str(f.type)} for f in DATA_SCHEMA]
    return {"examples": examples, "same_text": same_text, "duplicates": duplicates, "codes": codes, "index": index,
            "masks": masks,
            "class_names": class_names,
            "splits": splits, "split_policy": policy, "schema": schema, "release_id": release_id(schema, policy, splits),
            "labels": _label_counts(examples["label"], codes, names)}


def split_digest(row_hashes: pa.ChunkedArray | pa.Array) -> str:
    """SHA-256 of a split's row hashes, each as 32 hex digits, sorted and concatenated."""
    if isinstance(row_hashes, pa.ChunkedArray):
        row_hashes = row_hashes.combine_chunks() if row_hashes.num_chunks else pa.array([], ROW_HASH)
    n = len(row_hashes)
    halves = np.frombuffer(row_hashes.buffers()[1], dtype=">u8", count=2 * n, offset=row_hashes.offset * 16)
    pairs = halves.reshape(n, 2)
    high, low = pairs.astype(np.uint64).T
    order = np.argsort(high)  # 64 bits seldom tie; when they do, sort on all 128
    if n > 1 and np.any(np.diff(high[order]) == 0):
        order = np.lexsort((low, high))
    digest = hashlib.sha256()
    for block in range(0, n, _BLOCK):
        digest.update(pairs[order[block:block + _BLOCK]].tobytes().hex().encode())
    return digest.hexdigest()


def release_id(schema: list[dict], split_policy: dict, splits: dict[str, dict]) -> str:
    """The content hash of a release (see the module docstring)."""
    content = {"schema": schema, "split_policy": split_policy,
               "splits": {name: info["digest"] for name, info in splits.items()}}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_release(dest: Destination, folder: str, built: dict, manifest: dict, diff: dict, cfg: dict) -> None:
    """Write every file of the release into `folder`; fills `manifest["files"]`.

    The index and each split's data files are written in parallel threads, the largest
    first, their checksums taken as they are written; `manifest.json` and `SHA256SUMS` last.
    A split's rows are cut out one row group at a time, never copied whole.
    """
    data = built["examples"].select(DATA_SCHEMA.names).cast(DATA_SCHEMA)
    size = cfg["rows_per_file"]

    def write(part: str) -> dict[str, dict]:
        if part == INDEX:
            index = built["index"]
            return {INDEX: dest.create(f"{folder}/{INDEX}", partial(_parquet, index.schema, [index], cfg))}
        rows, written = _Rows(data, built["masks"][part]), {}
        for i, file in enumerate(built["splits"][part]["files"]):
            groups = (rows.take(n) for n in _sizes(min(size, counts[part] - i * size), cfg["row_group_size"]))
            written[file] = dest.create(f"{folder}/{file}", partial(_parquet, DATA_SCHEMA, groups, cfg))
        for kind in set(cfg["formats"]) - {"parquet"}:  # copies for tools that read nothing else
            file = f"data/{part}.{kind}"
            written[file] = dest.create(f"{folder}/{file}", partial(EXPORTS[kind], data.filter(built["masks"][part])))
        return written

    counts = {INDEX: built["index"].num_rows, **{name: info["rows"] for name, info in built["splits"].items()}}
    files = {}
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        for written in pool.map(write, sorted(counts, key=counts.get, reverse=True)):
            files.update(written)
    for name, text in ((DIFF, to_json(diff)), (CARD, render_card(manifest).encode())):
        files[name] = dest.create(f"{folder}/{name}", partial(_put, text))
    manifest["files"] = dict(sorted(files.items()))
    files[MANIFEST] = dest.create(f"{folder}/{MANIFEST}", partial(_put, to_json(manifest)))
    dest.create(f"{folder}/{SUMS}", partial(_put, render_sums({name: f["sha256"] for name, f in files.items()})))


def to_json(data) -> bytes:
    """Indented JSON, keys in the order they were made (deterministic, and readable top-down)."""
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def _previous(known: pa.Table, ids: pa.ChunkedArray, names: list[str]) -> np.ndarray:
    """Each example's split code in `known`, -1 for examples never released."""
    unknown = set(pc.unique(known["split"]).to_pylist()) - set(names)
    if unknown:
        raise FeedbackError(f"earlier releases use the splits {', '.join(sorted(unknown))}, which [release] splits "
                            "no longer lists; add them back (a ratio of 0 keeps them for earlier examples only)")
    return _codes(known["split"].take(pc.index_in(ids, value_set=known["id"].combine_chunks())), names)


def _codes(values: pa.ChunkedArray, names: list[str] | None) -> np.ndarray:
    """Each value's index in `names` (in the values' own sorted order when None); -1 for null or unknown."""
    names = pc.unique(values.drop_null()).sort() if names is None else pa.array(names, pa.string())
    return np.asarray(pc.index_in(values, value_set=names).fill_null(-1), dtype=np.int64)


def _label_counts(labels: pa.ChunkedArray, codes: np.ndarray, names: list[str]) -> dict[str, dict[str, int]]:
    """Examples per label and split, labels sorted, splits without examples of the label left out."""
    encoded = labels.combine_chunks().dictionary_encode()
    values = encoded.dictionary.to_pylist()
    counts = np.bincount(np.asarray(encoded.indices) * len(names) + codes,
                         minlength=len(values) * len(names)).reshape(len(values), len(names))
    return {values[v]: {names[k]: int(counts[v, k]) for k in np.flatnonzero(counts[v])}
            for v in sorted(range(len(values)), key=values.__getitem__)}


class _Rows:
    """The rows of a table where a mask is set, handed out in order, filtered one chunk at a time."""

    def __init__(self, table: pa.Table, mask: pa.Array):
        self._batches, self._mask, self._offset = iter(table.to_batches()), mask, 0
        self._pending = table.schema.empty_table()

    def take(self, n: int) -> pa.Table:
        """The next `n` rows."""
        while self._pending.num_rows < n:
            batch = next(self._batches)
            kept = batch.filter(self._mask.slice(self._offset, batch.num_rows))
            self._offset += batch.num_rows
            self._pending = pa.concat_tables([self._pending, pa.Table.from_batches([kept])])
        taken, self._pending = self._pending.slice(0, n), self._pending.slice(n)
        return taken


def _sizes(rows: int, size: int) -> list[int]:
    """`rows` cut into pieces of `size`, the last one shorter."""
    return [min(size, rows - start) for start in range(0, rows, size)]


def _parquet(schema: pa.Schema, tables, cfg: dict, file) -> None:
    write_parquet(tables, schema, file, row_group_size=cfg["row_group_size"], dictionary=_DICTIONARY,
                  statistics=_STATISTICS)


def _put(data: bytes, file) -> None:
    file.write(data)


def _csv(table: pa.Table, file) -> None:
    pa_csv.write_csv(table, file)


def _jsonl(table: pa.Table, file) -> None:
    for batch in table.to_batches(max_chunksize=10_000):
        file.write(b"".join(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in batch.to_pylist()))


EXPORTS = {"csv": _csv, "jsonl": _jsonl}  # the data files' other formats: `[release] formats`
