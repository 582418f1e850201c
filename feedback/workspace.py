"""A workspace: one folder holding `feedback.toml`, the store file and the spool.

Commands find it from an explicit path, the `FEEDBACK_WORKSPACE` environment
variable, or the current folder and its parents, in that order.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import WorkspaceError

CONFIG_NAME = "feedback.toml"
LABEL_STATUSES = ("active", "deprecated", "retired")
_MIGRATED: set[tuple] = set()
ENV_VAR = "FEEDBACK_WORKSPACE"
DEFAULT_SPLITS = {"train": 0.8, "validation": 0.1, "test": 0.1}  # `[release] splits`: name -> share
DEFAULTS = {
    "dataset": {"name": "default"},
    "taxonomy": {"mode": "open", "labels": []},
    "paths": {"store": "feedback.duckdb", "spool": "spool", "releases": "releases"},
    "capture": {"max_text_chars": 100_000, "max_event_bytes": 1 << 20, "segment_max_bytes": 8 << 20,
                "segment_max_seconds": 2.0},
    "server": {"token_env": "FEEDBACK_CAPTURE_TOKEN", "max_body_bytes": 1 << 20, "rate_per_second": 100.0,
               "rate_burst": 200},
    "store": {"busy_timeout": 15.0},
}


@dataclass(frozen=True)
class Label:
    """A label of the list; its class id is its position. `status`: active, deprecated (no new labels) or
    retired (by taxonomy change `change`; `replaced_by` the labels that took it over); `renamed_from` its
    former names, `added` the change that appended it (both kept by `feedback.review.taxonomy`)."""

    name: str
    description: str = ""
    hotkey: str = ""
    status: str = "active"
    change: str = ""
    replaced_by: tuple[str, ...] = ()
    renamed_from: tuple[str, ...] = ()
    added: str = ""


@dataclass(frozen=True)
class Taxonomy:
    """The label set. `fixed`: only these labels are accepted; `open`: any label is."""

    mode: str = "open"
    labels: tuple[Label, ...] = field(default_factory=tuple)

    @property
    def names(self) -> frozenset[str]:
        """Every label of the list, retired and deprecated ones too."""
        return frozenset(label.name for label in self.labels)

    @property
    def offered(self) -> tuple[str, ...]:
        """The labels a reviewer may give now, in the list's order (what the app offers)."""
        return tuple(label.name for label in self.labels if label.status == "active")

    @property
    def retired(self) -> frozenset[str]:
        return frozenset(label.name for label in self.labels if label.status == "retired")

    def accepts(self, name: str) -> bool:
        """Whether capture takes an event with this label: in a fixed taxonomy, every name ever in the list."""
        return self.mode == "open" or name in self.names or any(name in label.renamed_from for label in self.labels)

    def refusal(self, name: str) -> str | None:
        """Why a reviewer may not give this label now, or None when they may."""
        found = {label.name: label for label in self.labels}.get(name)
        if found is None:
            renamed = [label.name for label in self.labels if name in label.renamed_from]
            if renamed:
                return f"label {name!r} was renamed to {renamed[0]!r}; use {renamed[0]!r}"
            if self.mode == "open":
                return None
            return f"label {name!r} is not in the taxonomy{self.hint(name) or '; see `feedback labels`'}"
        if found.status == "retired":
            use = " or ".join(repr(n) for n in found.replaced_by)
            return (f"label {name!r} was retired by taxonomy change {found.change}, "
                    + (f"use {use}" if use else "no label replaces it"))
        if found.status == "deprecated":
            return f"label {name!r} is deprecated (taxonomy change {found.change}): no new labels"
        return None

    def hint(self, name: str) -> str:
        """A "did you mean" for a label the taxonomy refused (empty when nothing is close)."""
        import difflib  # only for a refusal: every command reads the workspace

        close = difflib.get_close_matches(name, sorted(self.offered), n=1)
        return f" (did you mean {close[0]!r}?)" if close else ""


class Workspace:
    """A workspace folder and its parsed config."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        path = self.root / CONFIG_NAME
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise WorkspaceError(f"{self.root} is not a workspace (no {CONFIG_NAME}); create one with `feedback init {self.root}`") from None
        except tomllib.TOMLDecodeError as exc:
            raise WorkspaceError(f"{path}: {exc}; fix the file or recreate it with `feedback init`") from None
        self.config = {section: {**values, **raw.get(section, {})} for section, values in DEFAULTS.items()}
        self.config.update({k: v for k, v in raw.items() if k not in DEFAULTS})
        self.taxonomy = _parse_taxonomy(self.config["taxonomy"], path)

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    @property
    def dataset(self) -> str:
        return self.config["dataset"]["name"]

    def path(self, name: str) -> Path:
        """A configured path (`store`, `spool`, `releases`), resolved against the root."""
        return self.root / self.config["paths"][name]

    @property
    def store_url(self) -> str | None:
        """The team store's PostgreSQL URL (`[store] url`), or None for the embedded file."""
        return self.config["store"].get("url") or None

    def store(self, *, migrate: bool = False):
        """The workspace's store, migrated to the current schema on first use in this process (with `migrate`,
        checked again: a new store in the place of one this process saw)."""
        busy_timeout = float(self.config["store"]["busy_timeout"])
        if self.store_url:
            from .store.postgres import PgStore

            store, identity = PgStore(check_store_url(self.store_url), busy_timeout=busy_timeout), self.store_url
        else:
            from .store import Store

            store = Store(self.path("store"), busy_timeout=busy_timeout)
            identity = _identity(store.path)
        if migrate or identity not in _MIGRATED:
            if migrate or self.store_url:
                store.migrate()
            else:  # checked as the first unit of work opens the file: no opening of its own
                store.migrate(deferred=True)
            _MIGRATED.add(identity)
        return store


def move_store(ws: Workspace, url: str, *, progress=None) -> dict:
    """Copy the workspace's file store into the empty PostgreSQL store at `url`, verify it, and switch to it.

    Returns {"url", "tables": {name: {"rows", "digest"}}}. Stop the workspace's ingest workers and app
    first, and start them again after; the file stays as it was, a backup, and the spool, releases and
    users stay in the folder.
    """
    from .store import Store
    from .store.postgres import PgStore
    from .store.transfer import copy_to_postgres

    if ws.store_url:
        raise WorkspaceError(f"the workspace already keeps its store in {ws.store_url}")
    busy_timeout = float(ws.config["store"]["busy_timeout"])
    tables = copy_to_postgres(Store(ws.path("store"), busy_timeout=busy_timeout),
                              PgStore(check_store_url(url), busy_timeout=busy_timeout), progress=progress)
    path = ws.root / CONFIG_NAME
    text, line = path.read_text(encoding="utf-8"), f"url = {toml_string(url)}"
    if re.search(r"^\[store\]\s*$", text, flags=re.M):
        text = re.sub(r"^\[store\]\s*$", lambda m: m.group(0) + "\n" + line, text, count=1, flags=re.M)
    else:
        text = text.rstrip("\n") + f"\n\n[store]\n{line}\n"
    path.write_text(text, encoding="utf-8")
    return {"url": url, "tables": tables}


def check_store_url(url: str) -> str:
    """A PostgreSQL URL as the config may hold it: no password (libpq reads $PGPASSWORD or ~/.pgpass)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise WorkspaceError(f"[store] url {url!r}: give a postgresql://USER@HOST:PORT/DB URL")
    if parts.password is not None:
        raise WorkspaceError("[store] url holds a password: remove it, and give it in $PGPASSWORD or ~/.pgpass instead")
    return url


def _identity(path: Path) -> tuple:
    """A store file as this process has seen it migrated: its path and inode (a file made anew is migrated anew)."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return (path, None)
    return (path, found.st_dev, found.st_ino)


def _parse_taxonomy(section: dict, path: Path) -> Taxonomy:
    mode = section.get("mode", "open")
    if mode not in ("open", "fixed"):
        raise WorkspaceError(f"{path}: taxonomy.mode is {mode!r}; use 'open' or 'fixed'")
    labels = []
    for i, entry in enumerate(section.get("labels", [])):
        entry = {"name": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise WorkspaceError(f"{path}: taxonomy.labels[{i}] needs a non-empty 'name'")
        if entry.get("status", "active") not in LABEL_STATUSES:
            raise WorkspaceError(f"{path}: taxonomy.labels[{i}] status is {entry['status']!r}; use one of "
                                 f"{', '.join(LABEL_STATUSES)}")
        labels.append(Label(entry["name"], entry.get("description", ""), entry.get("hotkey", ""),
                            entry.get("status", "active"), entry.get("change", ""),
                            tuple(entry.get("replaced_by", ())), tuple(entry.get("renamed_from", ())),
                            entry.get("added", "")))
    return Taxonomy(mode, tuple(labels))


def find_workspace(path: str | Path | None = None) -> Workspace:
    """The workspace at `path`, else at $FEEDBACK_WORKSPACE, else in the current folder or a parent."""
    if path is None:
        path = os.environ.get(ENV_VAR) or None
    if path is not None:
        return Workspace(path)
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return Workspace(folder)
    raise WorkspaceError(
        f"no workspace found in {here} or its parents; pass --workspace DIR, set {ENV_VAR}, "
        "or create one with `feedback init DIR`"
    )


def read_labels_file(path: str | Path) -> list[dict]:
    """Labels from a JSON list (names or {name, description, hotkey}) or a text file, one name per line."""
    text = Path(path).read_text(encoding="utf-8")
    if Path(path).suffix == ".json":
        entries = json.loads(text)
        return [{"name": e} if isinstance(e, str) else e for e in entries]
    return [{"name": line.strip()} for line in text.splitlines() if line.strip()]


def toml_string(value) -> str:
    """A TOML value: strings as basic strings (JSON's escapes are TOML's), non-ASCII text kept as it is."""
    if isinstance(value, str) and any("\ud800" <= c <= "\udfff" for c in value):
        raise WorkspaceError(f"{value!r} is not valid text (it holds a lone surrogate): check its encoding")
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")  # TOML wants DEL escaped too
