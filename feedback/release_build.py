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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import FeedbackError
from .release_card import render_card
from .release_files import CARD, DATA_SCHEMA, DIFF, INDEX, MANIFEST, SUMS, parquet_bytes, render_sums, sha256
from .release_split import assign, duplicate_groups, split_groups

_DICTIONARY = ["label", "split", "label_reviewer"]  # the columns with few distinct values


def build(cfg: dict, examples: pa.Table, known: pa.Table, *, salt: str) -> dict:
    """Groups, splits, index, per-split rows/digest/files, counts per label and split, and release id.

    `known` holds (id, split) of every example of earlier releases, as it was last released.
    """
    names = list(cfg["splits"])
    duplicates = duplicate_groups(examples, group_by=cfg["group_by"], threshold=cfg["near_duplicate_threshold"],
                                  max_items=cfg["near_duplicate_max"])
    rep = split_groups(examples, duplicates, group_by=cfg["group_by"])
    codes = assign(rep, np.asarray(examples["bucket"]), _previous(known, examples["id"], names),
                   list(cfg["splits"].values()))
    split = pa.array(names, pa.string()).take(pa.array(codes, pa.int64()))
    alone = np.bincount(rep, minlength=len(rep))[rep] < 2
    index = pa.table({
        "id": examples["id"], "split": split, "label": examples["label"], "row_hash": examples["row_hash"],
        "group": examples["id"].take(pa.array(rep, pa.int64(), mask=alone)),
        "label_decision_id": examples["label_decision_id"], "label_reviewer": examples["label_reviewer"],
        "adjudicated": examples["adjudicated"],
    })
    masks = {name: pc.equal(split, name) for name in names}
    splits = {}
    for name, mask in masks.items():
        rows = pc.sum(mask).as_py() or 0
        count = -(-rows // cfg["rows_per_file"])
        splits[name] = {"rows": rows, "digest": split_digest(index["row_hash"].filter(mask)),
                        "files": [f"data/{name}-{i:05d}-of-{count:05d}.parquet" for i in range(count)]}
    policy = {"group_by": cfg["group_by"], "salt": salt, "ratios": cfg["splits"]}
    if cfg["group_by"] == "near_duplicate":
        policy["threshold"] = cfg["near_duplicate_threshold"]
    schema = [{"name": f.name, "type": str(f.type)} for f in DATA_SCHEMA]
    labels: dict[str, dict[str, int]] = {}
    for row in index.group_by(["label", "split"]).aggregate([("id", "count")]).to_pylist():
        labels.setdefault(row["label"], {})[row["split"]] = row["id_count"]
    return {"examples": examples, "duplicates": duplicates, "codes": codes, "index": index, "masks": masks,
            "splits": splits, "split_policy": policy, "schema": schema, "release_id": release_id(schema, policy, splits),
            "labels": dict(sorted(labels.items()))}


def split_digest(row_hashes: pa.ChunkedArray | pa.Array) -> str:
    """SHA-256 of a split's row hashes (32 hex digits each), sorted and concatenated."""
    fixed = pc.cast(row_hashes, pa.binary(32))
    chunks = fixed.chunks if isinstance(fixed, pa.ChunkedArray) else [fixed]
    hashes = np.concatenate([np.zeros(0, "S32")] + [
        np.frombuffer(c.buffers()[1], dtype="S32", count=len(c), offset=c.offset * 32) for c in chunks if len(c)])
    return hashlib.sha256(np.sort(hashes).tobytes()).hexdigest()


def release_id(schema: list[dict], split_policy: dict, splits: dict[str, dict]) -> str:
    """The content hash of a release (see the module docstring)."""
    content = {"schema": schema, "split_policy": split_policy,
               "splits": {name: info["digest"] for name, info in splits.items()}}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def release_files(built: dict, manifest: dict, diff: dict, cfg: dict) -> dict[str, bytes]:
    """Every file of the release by path, Parquet written in parallel threads; fills `manifest["files"]`."""
    data = built["examples"].select(DATA_SCHEMA.names).cast(DATA_SCHEMA)
    size = cfg["rows_per_file"]
    tables = {}
    for name, mask in built["masks"].items():
        part = data.filter(mask)
        tables.update({file: part.slice(i * size, size) for i, file in enumerate(built["splits"][name]["files"])})
    tables[INDEX] = built["index"]
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        written = pool.map(lambda t: parquet_bytes(t, row_group_size=cfg["row_group_size"], dictionary=_DICTIONARY),
                           tables.values())
        files = {**dict(zip(tables, written)), DIFF: to_json(diff)}
        files[CARD] = render_card(manifest).encode()
        digests = dict(zip(files, pool.map(sha256, files.values())))
    manifest["files"] = {name: {"sha256": digests[name], "bytes": len(files[name])} for name in sorted(files)}
    files[MANIFEST] = to_json(manifest)
    files[SUMS] = render_sums({**digests, MANIFEST: sha256(files[MANIFEST])})
    return files


def to_json(data) -> bytes:
    """Indented JSON, keys in the order they were made (deterministic, and readable top-down)."""
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def _previous(known: pa.Table, ids: pa.ChunkedArray, names: list[str]) -> np.ndarray:
    """Each example's split code in `known`, -1 for examples never released."""
    unknown = set(pc.unique(known["split"]).to_pylist()) - set(names)
    if unknown:
        raise FeedbackError(f"earlier releases use the splits {', '.join(sorted(unknown))}, which [release] splits "
                            "no longer lists; add them back (a ratio of 0 keeps them for earlier examples only)")
    split = known["split"].take(pc.index_in(ids, value_set=known["id"].combine_chunks()))
    return np.asarray(pc.index_in(split, value_set=pa.array(names)).fill_null(-1), dtype=np.int64)
