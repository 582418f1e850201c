"""The store's records of releases: listing them and resolving a release's name, as plain rows.

Apart from `releases`, which builds and reads release files, so that listing releases loads no Arrow.
"""

from __future__ import annotations

import json

from ..errors import NotFound
from ..workspace import Workspace


def list_releases(ws: Workspace, dataset: str | None = None) -> list[dict]:
    """The releases the store records, oldest first, for one dataset or all."""
    return ws.store().rows(
        "SELECT dataset, version, release_id, parent, examples, created_at, created_by, location, overrides "
        "FROM releases WHERE ?::VARCHAR IS NULL OR dataset = ? ORDER BY dataset, number", [dataset, dataset])


def resolve(ws: Workspace, ref: str) -> dict:
    """The store's record of a release named `VERSION` (the workspace's dataset) or `DATASET/VERSION`."""
    dataset, _, version = ref.rpartition("/")
    dataset = dataset or ws.dataset
    rows = [r for r in release_records(ws, dataset) if r["version"] == version]
    if not rows:
        raise NotFound(f"release {dataset}/{version} is not recorded in this workspace; see `feedback release list`")
    return rows[0]


def release_records(ws: Workspace, dataset: str | None) -> list[dict]:
    """The full records (manifest parsed) of a dataset's releases, or of all, oldest first."""
    rows = ws.store().rows("SELECT * FROM releases WHERE ?::VARCHAR IS NULL OR dataset = ? ORDER BY dataset, number",
                           [dataset, dataset])
    return [{**r, "manifest": json.loads(r["manifest"])} for r in rows]
