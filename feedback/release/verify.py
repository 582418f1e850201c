"""Checking a release folder against itself, without the store that built it, and against the store's anchor.

`check_release`, in order: every file against SHA256SUMS (missing, changed, or added later);
each split's row count and digest, with row hashes recomputed from the data files; the index
against the data (ids, splits, labels, row hashes); the release id against the content. A
folder can be rewritten to agree with itself, so `check_anchor` compares `manifest.json` and
`SHA256SUMS` with the digests the store recorded when it built the release.
"""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import FeedbackError
from .build import release_id, split_digest
from .files import DATA_SCHEMA, INDEX, MANIFEST, SUMS, Destination, anchor, check_files
from .select import ROW_HASH, row_hash


def check_release(dest: Destination, folder: str) -> list[dict]:
    """Problems found in a release folder, each `{"file", "problem"}`; none when it is intact."""
    if not dest.exists(f"{folder}/{SUMS}"):
        return [{"file": SUMS, "problem": "missing"}]
    problems = check_files(dest, folder)
    try:
        manifest = json.loads(dest.read(f"{folder}/{MANIFEST}"))
        expected = {name: {"files": list(info["files"]), "rows": info["rows"], "digest": info["digest"]}
                    for name, info in manifest["splits"].items()}
        schema, policy, recorded_id = manifest["schema"], manifest["split_policy"], manifest["release_id"]
    except (FeedbackError, ValueError) as exc:
        return problems + [{"file": MANIFEST, "problem": f"unreadable: {exc}"}]
    except (KeyError, TypeError, AttributeError) as exc:
        return problems + [{"file": MANIFEST, "problem": f"incomplete: no valid {exc} (restore it from a good copy)"}]
    splits, parts = {}, []
    for name, info in expected.items():
        files = ", ".join(info["files"])
        try:
            data = pa.concat_tables([DATA_SCHEMA.empty_table()] + [
                dest.read_parquet(f"{folder}/{file}").select(DATA_SCHEMA.names) for file in info["files"]])
        except (pa.ArrowException, OSError, KeyError) as exc:
            problems.append({"file": files, "problem": f"unreadable: {exc}"})
            continue
        hashes = pa.array([row_hash(*row) for row in zip(*(data[c].to_pylist() for c in ("id", "label", "text")))],
                          ROW_HASH)
        splits[name] = {"rows": data.num_rows, "digest": split_digest(hashes)}
        if splits[name] != {"rows": info["rows"], "digest": info["digest"]}:
            problems.append({"file": files or name, "problem": f"split {name}: rows or digest differ from {MANIFEST}"})
        parts.append(pa.table({"id": data["id"], "split": pa.array([name] * data.num_rows, pa.string()),
                               "label": data["label"], "row_hash": hashes}))
    if len(splits) < len(expected):
        return problems
    data = pa.concat_tables(parts)
    if not _index_matches(dest, f"{folder}/{INDEX}", data.take(pc.sort_indices(data["id"]))):
        problems.append({"file": INDEX, "problem": "does not match the data files (ids, splits, labels, row hashes)"})
    if release_id(schema, policy, splits) != recorded_id:
        problems.append({"file": MANIFEST, "problem": "release_id does not match the content"})
    return problems


def check_anchor(dest: Destination, folder: str, recorded: dict[str, str], release: str) -> list[dict]:
    """Problems where `manifest.json` or `SHA256SUMS` differs from the digest `recorded` for `release`
    (a missing file is `check_release`'s to report)."""
    found = anchor(dest, folder)
    return [{"file": name, "problem": f"differs from the digest the store recorded for {release} at build time: "
                                      "the file was changed after the build (restore the release from a good copy)"}
            for name in sorted(recorded) if found[name] not in (None, recorded[name])]


def _index_matches(dest: Destination, path: str, data: pa.Table) -> bool:
    try:
        return dest.read_parquet(path, columns=data.column_names).equals(data)
    except (pa.ArrowException, OSError):
        return False
