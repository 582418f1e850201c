"""Versioned dataset releases: immutable folders a training job can pin, verify and diff.

A release is `<destination>/<dataset>/<version>/` (versions v1, v2, ...; each names its
parent, the release before it), written once (see `files`):
- `data/<split>-NNNNN-of-NNNNN.parquet`: id, text, label, sorted by id;
- `index.parquet`: per example its split, label, row hash, duplicate group, and the decision and
  reviewer that set the label (the production events behind it are the item's events up to the
  store watermark of the recipe: `lineage`);
- `diff.json` (against the parent), `README.md` (the data card), `manifest.json`, `SHA256SUMS`.

Building: select (`select`), split (`split`), check (`gates`), compute the content and
release id (`build`), write and publish (`files`). The
manifest's recipe says how it was made: store watermark, selection, parameters, code
version. The store records each release in `releases`, with the SHA-256 of its
`manifest.json` and `SHA256SUMS` (its anchor, which `verify_release` checks the folder
against); lineage reads the store and the index. Settings live in `[release]` of
feedback.toml (`DEFAULTS`, gates in `[release.gates]`).
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from importlib.metadata import version as package_version
from pathlib import PurePosixPath

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import FeedbackError, NotFound
from ..hooks import fire
from ..learn.jobs import job_lock
from ..progress import Progress, Steps
from ..review import taxonomy
from ..review.agreement import reviewer_agreement
from ..roles import Actor, local_actor, users
from ..workspace import DEFAULT_SPLITS, Workspace, find_workspace
from .build import build, to_json, write_release
from .card import license_and_credit
from .choices import FORMATS, GATES, GROUP_BY
from .diff import diff_indexes, taxonomy_changes
from .files import CARD, INDEX, MANIFEST, SUMS, Destination, anchor, check_files, read_splits
from .fitness import fitness_gate
from .gates import DEFAULTS as GATE_DEFAULTS
from .gates import run_gates
from .records import list_releases, release_records, resolve  # noqa: F401  (list_releases: still importable from here)
from .select import Selection, read_examples
from .verify import check_anchor, check_release

DEFAULTS = {
    "splits": DEFAULT_SPLITS,
    "salt": None,  # default: the dataset name
    "group_by": "near_duplicate",
    "near_duplicate_threshold": 90.0,
    "near_duplicate_max": 200_000,
    "rows_per_file": 1_000_000,
    "row_group_size": 100_000,
    "memory_limit": "500MB",  # DuckDB memory for reading the examples; it spills to disk beyond
    "destination": None,  # default: the workspace's releases folder
    "license": None,
    "credit": None,
    "formats": ["parquet"],  # also "csv", "jsonl": one more file per split, beside the Parquet
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VERSION = re.compile(r"^v([1-9][0-9]*)$")


class GateFailed(FeedbackError):
    """A quality gate failed and was not overridden; nothing was written."""


def release_config(ws: Workspace, *, formats: tuple[str, ...] = ()) -> dict:
    """`[release]` of feedback.toml over the defaults (and any extra `formats`), checked."""
    raw = ws.config.get("release", {})
    cfg = {**DEFAULTS, **raw, "gates": {**GATE_DEFAULTS, **raw.get("gates", {})}}
    cfg["formats"] = sorted({"parquet", *cfg["formats"], *formats})
    ratios = cfg["splits"]
    if not ratios or any(not _NAME.match(k) or not 0 <= v <= 1 for k, v in ratios.items()) \
            or abs(sum(ratios.values()) - 1) > 1e-9:
        raise FeedbackError(f"[release] splits = {ratios}: give split names with ratios in [0, 1] that sum to 1, "
                            "e.g. {train = 0.8, validation = 0.1, test = 0.1}")
    if cfg["group_by"] not in GROUP_BY:
        raise FeedbackError(f"[release] group_by = {cfg['group_by']!r}: use one of {', '.join(GROUP_BY)}")
    unknown = sorted(set(cfg["formats"]) - set(FORMATS))
    if unknown:
        raise FeedbackError(f"release format {', '.join(unknown)}: use {', '.join(FORMATS)} (Parquet is always written)")
    return cfg


def create_release(ws: Workspace, dataset: str | None = None, *, selection: Selection = Selection(),
                   version: str | None = None, destination: str | None = None, override: tuple[str, ...] = (),
                   reason: str | None = None, if_changed: bool = False, by: Actor | None = None,
                   formats: tuple[str, ...] = (), hooks: bool | str = True, progress: Progress | None = None) -> dict:
    """Select, split, check and write a new release; return its summary.

    Publishing takes a lead or an admin (`by`, a signed-in actor: see `feedback.roles`; the local
    user in an open workspace), and so does `override`, which names failing gates to let through (with a `reason`, both recorded).
    With `if_changed`, a release whose content equals the parent's is not made (`created` is
    False). Raises `GateFailed` when a gate fails, before writing anything.

    Then the `on_release` hooks run (see `feedback.hooks`), after the release is recorded: `hooks`
    holds their attempts (`hooks.failures(made["hooks"])` names those that failed). `hooks=False`
    runs none; `hooks="background"` runs them on a thread, for a process that must not wait (the app).

        made = feedback.release.create_release(ws, by=lead)
        print(made["location"], made["splits"])   # releases/banking77/v3 {'train': 8012, ...}
    """
    if by is None:
        if users(ws):
            raise FeedbackError("who is publishing? sign in as a lead or an admin (--reviewer NAME)")
        by = local_actor()
    by.require(ws, "release")
    if hooks not in (True, False, "background"):
        raise FeedbackError(f"hooks={hooks!r}: use True (run them and wait), False or 'background'")
    cfg = release_config(ws, formats=formats)
    dataset = _checked_name(dataset or ws.dataset)
    _check_override(ws, override, reason, by)
    records = release_records(ws, dataset)
    parent = records[-1] if records else None
    number = _next_number(dataset, version, parent)
    dest = Destination(destination or cfg["destination"] or ws.path("releases"))
    salt = cfg["salt"] or dataset
    with Steps(progress, 5, "reading the trusted labels") as job:
        read, built, measured, gates, parent_index = _candidate(ws, cfg, selection, records, salt, job)
        if if_changed and parent and parent["release_id"] == built["release_id"]:
            return {"created": False, "dataset": dataset, "version": parent["version"],
                    "release_id": parent["release_id"], "location": parent["location"],
                    "examples": parent["examples"], "reason": "unchanged since the parent"}
        _apply_override(gates, override)
        manifest = {
            "format": 1, "dataset": dataset, "version": f"v{number}", "release_id": built["release_id"],
            "parent": parent and {"version": parent["version"], "release_id": parent["release_id"]},
            "created_at": _now().isoformat(), "created_by": by.name,
            "examples": built["examples"].num_rows, "schema": built["schema"], "split_policy": built["split_policy"],
            "splits": built["splits"], "labels": built["labels"], "missing_labels": _missing(ws, built["labels"]),
            "class_names": built["class_names"], "retired_classes": built["retired_classes"],
            "taxonomy_changes": built["taxonomy_changes"],
            "provenance": _provenance(built["examples"]), "agreement": measured and {
                "alpha": measured["alpha"], "items_with_overlap": measured["items_with_overlap"]},
            "gates": gates,
            "overrides": {"gates": list(override), "reason": reason, "by": by.name} if override else None,
            "excluded": {"no_text": read["no_text"]},
            "license": license_and_credit(cfg, pc.unique(built["examples"]["source"]).to_pylist()),
            "recipe": {"watermark": {k: _plain(v) for k, v in read["watermark"].items()},
                       "selection": selection.describe(), "params": _params(cfg, salt),
                       "code_version": package_version("feedback-workbench"), "destination": dest.location},
        }
        diff = {"from": parent and parent["version"], "to": f"v{number}",
                **diff_indexes(parent_index, built["index"]), "taxonomy_changes": built["taxonomy_changes"]}
        manifest["diff"] = {k: diff[k] for k in ("added", "removed", "relabeled", "split_moves", "relabel_matrix")}
        job.advance(stage="writing the files")
        recorded, outcome = _publish(ws, dest, number, built, manifest, diff, cfg)
        job.advance(stage="running the hooks")
        made = {"created": True, **outcome, "dataset": dataset, "version": recorded["version"],
                "release_id": recorded["release_id"],
                "location": dest.describe(dest.path(dataset, recorded["version"])),
                "examples": recorded["examples"], "parent": recorded["parent"],
                "splits": {k: v["rows"] for k, v in recorded["splits"].items()}, "gates": recorded["gates"],
                "diff": recorded["diff"]}
        made["hooks"] = fire(ws, "release", {k: made[k] for k in (
            "dataset", "version", "release_id", "location", "examples", "parent", "splits")},
            background=hooks == "background") if hooks else []
        return made


def candidate_gates(ws: Workspace, dataset: str | None = None, *, selection: Selection = Selection()) -> list[dict]:
    """The quality gates of the release that would be made now, written nowhere (what `feedback check` runs)."""
    cfg = release_config(ws)
    dataset = _checked_name(dataset or ws.dataset)
    return _candidate(ws, cfg, selection, release_records(ws, dataset), cfg["salt"] or dataset, Steps(None, 0))[3]


def _candidate(ws: Workspace, cfg: dict, selection: Selection, records: list[dict], salt: str, job: Steps) -> tuple:
    """The next release's examples read, built and gated: (read, built, agreement, gates, parent index)."""
    parent = records[-1] if records else None
    parent_index = _read_index(parent) if parent else None
    taxonomy.sync(ws)  # class names come from feedback.toml: bring it up to the store's log of taxonomy changes
    read = read_examples(ws, selection, salt=salt, memory_limit=cfg["memory_limit"],
                         parent_ids=None if parent is None else parent_index.select(["id"]),
                         parent_decided=parent and _decided(parent))
    if not read["examples"].num_rows:
        raise FeedbackError("nothing to release: no item with a trusted label and a text matches the selection; "
                            "label items first (feedback next, feedback label)")
    job.advance(stage="splitting")
    built = build(cfg, read["examples"], _known_splits(records), salt=salt, apart=read["apart"],
                  class_names=_class_names(ws, read["examples"]["label"], parent))
    built.update(_taxonomy_parts(ws, built, parent))
    job.advance(stage="running the gates")
    measured = reviewer_agreement(ws) if read["overlap_items"] else None
    gates = run_gates(ws, built["examples"], same_text=built["same_text"], duplicates=built["duplicates"],
                      splits=built["codes"], split_names=list(cfg["splits"]), counts=_label_totals(built),
                      parent_counts=parent and _label_totals(parent["manifest"]), agreement=measured,
                      config=cfg["gates"])
    if cfg["gates"]["fitness"]:
        gates.append(fitness_gate(ws.config, built["examples"], built["codes"], list(cfg["splits"]),
                                  parent and _train_split(parent), margin=float(cfg["gates"]["fitness_margin"])))
    return read, built, measured, gates, parent_index


def show_release(ws: Workspace, ref: str) -> dict:
    """A release's manifest, read from the release itself, with its location."""
    record = resolve(ws, ref)
    dest, folder = _folder(record)
    return {**json.loads(dest.read(f"{folder}/{MANIFEST}")), "location": dest.describe(folder)}


def load_release(ref: str | os.PathLike, *, ws: Workspace | None = None, split: str | None = None,
                 format: str = "pandas", verify: bool = True):
    """A release's examples in one line for a trainer, its files checked against SHA256SUMS first.

    `ref` is a release folder (a path or URL) or a release of the workspace (`v2`, `DATASET/v2`; the
    workspace is `ws`, else found as usual). `format`: "pandas" (a DataFrame), "arrow" (a Table), or
    "datasets" (a Hugging Face DatasetDict read by the data card, labels as ClassLabel; a local folder).
    Without `split`, every split, with a `split` column (pandas, arrow).

        train = feedback.load_release("releases/banking77/v2", split="train")
        ds = feedback.load_release("v2", format="datasets")
    """
    if format not in ("pandas", "arrow", "datasets"):
        raise FeedbackError(f"format {format!r}: use pandas, arrow or datasets")
    if "://" in str(ref) or os.path.isdir(ref):
        dest = Destination(str(ref))
        folder = dest.root
    else:
        dest, folder = _folder(resolve(ws or find_workspace(), str(ref)))
    if verify:
        problems = check_files(dest, folder)
        if problems:
            raise FeedbackError(f"{dest.describe(folder)} does not match its SHA256SUMS: " + "; ".join(
                f"{p['file']}: {p['problem']}" for p in problems) + " (restore it from a good copy)")
    splits = json.loads(dest.read(f"{folder}/{MANIFEST}"))["splits"]
    if split is not None and split not in splits:
        raise FeedbackError(f"release {dest.describe(folder)} has no split {split!r}; it has {', '.join(splits)}")
    if format == "datasets":
        if not dest.local:
            raise FeedbackError("format 'datasets' reads a local folder: copy the release first, or use pandas")
        import datasets  # an optional dependency, for trainers that use it

        loaded = datasets.load_dataset(folder)
        return loaded[split] if split else loaded
    table = read_splits(dest, folder, splits, [split] if split else [n for n, info in splits.items() if info["rows"]])
    table = table.drop_columns(["split"]) if split else table
    return table if format == "arrow" else table.to_pandas()


def release_card(ws: Workspace, ref: str) -> str:
    """A release's data card (its README.md) as Markdown, without the YAML header that `datasets` reads."""
    record = resolve(ws, ref)
    dest, folder = _folder(record)
    text = dest.read(f"{folder}/{CARD}").decode("utf-8")
    return text.split("\n---\n", 1)[1].lstrip() if text.startswith("---\n") else text


def verify_release(ws: Workspace | None, ref: str, *, progress: Progress | None = None) -> dict:
    """Recompute every checksum and digest of a release (a ref such as `v2`, or a folder path or URL), and
    check its `manifest.json` and `SHA256SUMS` against the digests the store recorded when it was built.

    `ok` is False when anything differs; `problems` name each file and what is wrong. `anchor` says
    whether the store's digests were checked (`release`) or why not (`why`): without a workspace, or
    for a folder where no release of the workspace is recorded (a copy), the folder is checked
    against itself only.

        assert feedback.release.verify_release(ws, "v2")["ok"]
    """
    if "://" in ref or os.path.isdir(ref):
        dest = Destination(ref)
        folder = dest.root
        record = ws and _recorded_at(ws, dest, folder)
    elif ws is None:
        raise FeedbackError(f"{ref!r} is not a folder here, and without a workspace a release is named by its "
                            "folder (a path or URL)")
    else:
        record = resolve(ws, ref)
        dest, folder = _folder(record)
    with Steps(progress, 2, "checking files and digests") as job:
        problems = check_release(dest, folder)
        job.advance(stage="checking against the store")
        checked, changed = _against_anchor(ws, record, dest, folder)
    problems += changed
    return {"location": dest.describe(folder), "ok": not problems, "problems": problems, "anchor": checked}


def diff_releases(ws: Workspace, a: str, b: str) -> dict:
    """What changed from release `a` to release `b`."""
    old, new = resolve(ws, a), resolve(ws, b)
    index = _read_index(new)
    log, touched = taxonomy.changes_since(ws, old["created_at"], new["created_at"])
    return {"from": _ref(old), "to": _ref(new), **diff_indexes(_read_index(old), index),
            "taxonomy_changes": taxonomy_changes(log, touched, index)}


def lineage(ws: Workspace, ref: str, item_id: str) -> dict:
    """An example of a release, with the decisions and production events behind it: those the store
    held when the release was built (up to its recorded watermark)."""
    record = resolve(ws, ref)
    rows = _read_index(record, filters=[("id", "=", item_id)]).to_pylist()
    if not rows:
        raise NotFound(f"{item_id!r} is not in release {_ref(record)}; see `feedback release containing {item_id}`")
    example = rows[0]
    with ws.store().connect() as tx:
        decisions = tx.rows("SELECT * FROM decisions WHERE item_id = ? AND decided_at <= ? "
                            "ORDER BY decided_at, decision_id", [item_id, _decided(record)])
        events = tx.rows("SELECT seq, event_id, type, ts, input_text, pred_label, pred_score, model_version, "
                         "corr_label, corr_by, error_kind, source FROM events WHERE item_id = ? AND seq <= ? "
                         "ORDER BY seq", [item_id, record["event_seq"]])
    return {"release": _ref(record), "release_id": record["release_id"], "example": example,
            "decisions": decisions, "events": events}


def item_releases(ws: Workspace, item_id: str) -> list[dict]:
    """The recorded releases that contain an item, oldest first, with its split and label in each."""
    found = []
    for record in release_records(ws, None):
        for row in _read_index(record, filters=[("id", "=", item_id)]).to_pylist():
            found.append({"release": _ref(record), "release_id": record["release_id"], "split": row["split"],
                          "label": row["label"], "label_decision_id": row["label_decision_id"]})
    return found


# -- writing -------------------------------------------------------------------------------------

_RECORD = pa.schema([
    ("dataset", pa.string()), ("version", pa.string()), ("number", pa.int32()), ("release_id", pa.string()),
    ("parent", pa.string()), ("location", pa.string()), ("created_at", pa.timestamp("us")),
    ("created_by", pa.string()), ("examples", pa.int64()), ("event_seq", pa.int64()),
    ("overrides", pa.list_(pa.string())), ("manifest", pa.string()), ("manifest_sha256", pa.string()),
    ("sums_sha256", pa.string()),
])
_ANCHOR = {MANIFEST: "manifest_sha256", SUMS: "sums_sha256"}  # the store's columns for `files.anchor`


def _publish(ws: Workspace, dest: Destination, number: int, built: dict, manifest: dict, diff: dict,
             cfg: dict) -> tuple[dict, dict]:
    """Write the files to a temporary folder, move the folder into place and record the release.

    The store is held only for the short check and the record: the files are written, and moved or
    copied into place, without it. Publishers of this workspace take turns (`job_lock`), so two
    builds never move folders to one place at once. A folder already in that place with no record
    was left by a build killed between the move and the record, or by an unfinished copy: it is
    adopted (recorded as it is) when it verifies and holds this content, else set aside, so that
    it never blocks a build. Returns the manifest recorded, and `adopted` and `set_aside` (where
    the folder went).
    """
    dataset, version = manifest["dataset"], manifest["version"]
    final = dest.path(dataset, version)
    with dest.building(dataset, version) as folder:
        write_release(dest, folder, built, manifest, diff, cfg)
        with job_lock(ws, "release", wait=True):
            if ws.store().value("SELECT count(*) FROM releases WHERE dataset = ? AND version = ?", [dataset, version]):
                raise FeedbackError(f"release {dataset}/{version} was made meanwhile; run again for the next version")
            found = aside = None
            if dest.exists(final):
                found = _adoptable(dest, final, manifest)
                aside = None if found else dest.set_aside(dataset, version)
            if found:
                record = _record(found, number, dest, final)
                dest.seal(final)  # the build may have died before it sealed the folder
            else:
                record = _record(manifest, number, dest, folder)
                dest.publish(folder, final)
            with ws.store().atomic() as tx:
                tx.insert("releases", record)
    return found or manifest, {"adopted": bool(found), "set_aside": aside and dest.describe(aside)}


def _adoptable(dest: Destination, folder: str, manifest: dict) -> dict | None:
    """The manifest of the release in `folder` when the folder verifies and is the release `manifest` describes."""
    if check_release(dest, folder):
        return None
    found = json.loads(dest.read(f"{folder}/{MANIFEST}"))
    same = all(found.get(key) == manifest[key] for key in ("dataset", "version", "release_id", "parent"))
    return found if same else None


def _record(manifest: dict, number: int, dest: Destination, folder: str) -> pa.Table:
    """The store's row for a release: its manifest, and the anchor of its files in `folder`."""
    row = {"dataset": manifest["dataset"], "version": manifest["version"], "number": number,
           "release_id": manifest["release_id"], "parent": manifest["parent"] and manifest["parent"]["version"],
           "location": dest.location, "created_at": datetime.fromisoformat(manifest["created_at"]),
           "created_by": manifest["created_by"], "examples": manifest["examples"],
           "event_seq": manifest["recipe"]["watermark"]["event_seq"],
           "overrides": (manifest["overrides"] or {}).get("gates"), "manifest": to_json(manifest).decode(),
           **{_ANCHOR[name]: digest for name, digest in anchor(dest, folder).items()}}
    return pa.Table.from_pylist([row], schema=_RECORD)


# -- checks --------------------------------------------------------------------------------------

def _check_override(ws: Workspace, override: tuple[str, ...], reason: str | None, by: Actor) -> None:
    unknown = sorted(set(override) - set(GATES))
    if unknown:
        raise FeedbackError(f"no gate named {', '.join(unknown)}; gates: {', '.join(GATES)}")
    if override and not (reason and reason.strip()):
        raise FeedbackError("say why you override a gate (--reason TEXT): it is recorded in the release")
    if override:
        by.require(ws, "override_gates")


def _apply_override(gates: list[dict], override: tuple[str, ...]) -> None:
    for gate in gates:
        gate["overridden"] = gate["status"] == "fail" and gate["gate"] in override
    failed = [g for g in gates if g["status"] == "fail" and not g["overridden"]]
    if failed:
        lines = "\n".join(f"  {g['gate']}: {g['detail']}" for g in failed)
        raise GateFailed(f"{len(failed)} quality gates failed, nothing was written:\n{lines}\n"
                         f"fix the data, or override with --override GATE --reason TEXT")


def _checked_name(dataset: str) -> str:
    if not _NAME.match(dataset):
        raise FeedbackError(f"dataset name {dataset!r}: use up to 64 letters, digits, '_', '.', '-'")
    return dataset


def _next_number(dataset: str, version: str | None, parent: dict | None) -> int:
    latest = parent["number"] if parent else 0
    if version is None:
        return latest + 1
    match = _VERSION.match(version)
    if not match:
        raise FeedbackError(f"version {version!r}: versions are v1, v2, ...")
    if int(match.group(1)) <= latest:
        raise FeedbackError(f"release {dataset}/{version} cannot be made: {dataset}/{parent['version']} exists and "
                            f"releases are immutable and ordered; the next is v{latest + 1}")
    return int(match.group(1))


# -- reading -------------------------------------------------------------------------------------

def _known_splits(records: list[dict]) -> pa.Table:
    """(id, split) of every example of these releases, as the latest release holding it has it."""
    known = pa.table({"id": pa.array([], pa.string()), "split": pa.array([], pa.string())})
    for record in reversed(records):
        older = _read_index(record, columns=["id", "split"])
        known = pa.concat_tables([known, older.filter(
            pc.invert(pc.is_in(older["id"], value_set=known["id"].combine_chunks())))])
    return known


def _against_anchor(ws: Workspace | None, record: dict | None, dest: Destination,
                    folder: str) -> tuple[dict, list[dict]]:
    """Whether a folder could be checked against the anchor the store recorded for it, and what differs."""
    if ws is None:
        return {"checked": False, "why": "no workspace was given"}, []
    if record is None:
        return {"checked": False, "why": f"no release of this workspace is recorded at {dest.describe(folder)}"}, []
    if record["manifest_sha256"] is None:
        return {"checked": False, "why": f"{_ref(record)} was recorded before the store kept these digests"}, []
    recorded = {name: record[column] for name, column in _ANCHOR.items()}
    return {"checked": True, "release": _ref(record)}, check_anchor(dest, folder, recorded, _ref(record))


def _folder(record: dict) -> tuple[Destination, str]:
    dest = Destination(record["location"])
    return dest, dest.path(record["dataset"], record["version"])


def _recorded_at(ws: Workspace, dest: Destination, folder: str) -> dict | None:
    """The store's record of the release whose folder this is, if any (a copy elsewhere has none)."""
    path = PurePosixPath(folder)
    try:
        record = resolve(ws, f"{path.parent.name}/{path.name}")
    except NotFound:
        return None
    recorded, recorded_folder = _folder(record)
    return record if recorded.describe(recorded_folder) == dest.describe(folder) else None


def _train_split(record: dict) -> pa.Table | None:
    """A recorded release's train split (None when it has none)."""
    splits = record["manifest"]["splits"]
    return read_splits(*_folder(record), splits, ["train"]) if "train" in splits else None


def _read_index(record: dict, *, columns: list[str] | None = None, filters=None) -> pa.Table:
    dest, folder = _folder(record)
    try:
        return dest.read_parquet(f"{folder}/{INDEX}", columns=columns, filters=filters)
    except (FileNotFoundError, pa.ArrowException) as exc:
        raise FeedbackError(f"cannot read the index of release {_ref(record)} at {dest.describe(folder)}: {exc}; "
                            f"check it with `feedback release verify {_ref(record)}`") from None


def _decided(record: dict) -> datetime:
    """The time of the last decision in the store a release was built from."""
    return datetime.fromisoformat(record["manifest"]["recipe"]["watermark"]["decided_at"])


def _ref(record: dict) -> str:
    return f"{record['dataset']}/{record['version']}"


def _label_totals(release: dict) -> dict[str, int]:
    """Examples per label, from a manifest (or built content) that counts them per label and split."""
    return {label: sum(per_split.values()) for label, per_split in release["labels"].items()}


def _missing(ws: Workspace, labels: dict) -> list[str]:
    return sorted(ws.taxonomy.names - ws.taxonomy.retired - set(labels)) if ws.taxonomy.mode == "fixed" else []


def _class_names(ws: Workspace, labels: pa.ChunkedArray, parent: dict | None) -> list[str]:
    """The labels as classes, numbered stably across releases: the taxonomy's order (fixed; retired labels keep
    their place), else the parent's classes (renamed in place by taxonomy renames) and then the new labels,
    sorted; a trainer's class ids keep their meaning from release to release."""
    if ws.taxonomy.mode == "fixed":
        known = [label.name for label in ws.taxonomy.labels]
    else:
        renamed = taxonomy.renamed(ws)
        known = [renamed.get(n, n) for n in parent["manifest"].get("class_names", [])] if parent else []
    seen = set(known)
    return known + sorted(set(pc.unique(labels).to_pylist()) - seen)


def _taxonomy_parts(ws: Workspace, built: dict, parent: dict | None) -> dict:
    """The classes that taxonomy changes retired, and the changes made (or undone) since the parent release,
    each with the examples of this release it touched."""
    since = parent and datetime.fromisoformat(parent["manifest"]["created_at"])
    log, touched = taxonomy.changes_since(ws, since)
    retired = set(taxonomy.label_mapping(ws)) | ws.taxonomy.retired
    return {"retired_classes": [n for n in built["class_names"] if n in retired],
            "taxonomy_changes": taxonomy_changes(log, touched, built["index"])}


def _provenance(examples: pa.Table) -> dict:
    adjudicated = pc.sum(examples["adjudicated"]).as_py() or 0
    imported = pc.sum(examples["imported"]).as_py() or 0
    several = pc.sum(pc.and_not(pc.greater_equal(examples["reviewers"], 2), examples["adjudicated"])).as_py() or 0
    return {"one_reviewer": examples.num_rows - adjudicated - several - imported, "several_reviewers": several,
            "adjudicated": adjudicated, "imported": imported,
            "reviewers": pc.count_distinct(examples["label_reviewer"]).as_py()}


def _params(cfg: dict, salt: str) -> dict:
    return {**{k: v for k, v in cfg.items() if k not in ("license", "credit", "destination")}, "salt": salt}


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else value


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
