"""A new workspace (`init_workspace`) and its whole `feedback.toml` (`render`): every section, every key at its
default, each with a comment.

The defaults come from the modules that read them (imported only when a file is rendered, so importing
this module stays light): a default changed in code changes the file. A key whose default is None is
written as a commented-out example. `COMMENTS` says what each key does; a key it does not know yet is
still written, without a comment (a test names it).
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import WorkspaceError
from .workspace import CONFIG_NAME, DEFAULTS, Workspace, check_store_url, toml_string

#: What each section is for, written above its header.
SECTIONS = {
    "dataset": "The dataset this workspace labels.",
    "taxonomy": "The labels reviewers and releases may use.",
    "paths": "Where the workspace keeps its files, relative to this folder.",
    "capture": "Limits of every capture path (SDK, files, HTTP) and the spool's segments.",
    "server": "`feedback serve`: the HTTP capture endpoint and the review API (/v1/review).",
    "store": "The store: the embedded DuckDB file (paths.store), or the team store in PostgreSQL.",
    "review": "The review queue: claims, overlap and the low_confidence reason.",
    "queue.weights": "Priority = sum over an item's reasons of weight x score (each score in [0, 1]).",
    "release": "Dataset releases: splits, grouping, files and the data card.",
    "release.gates": "Quality gates a release must pass (a lead or an admin may override one, with a reason).",
    "learn": "The text model behind the sampler, suspects and the fitness gate.",
    "drift": "`feedback drift`: recent production against the latest release; it exits 1 when a threshold is crossed.",
    "hooks": "What a release or a drift alert starts; run after the commit, every attempt logged (`feedback hooks --log`).",
    "loop": "`feedback run`: one scheduled step of the whole loop, and its release policy.",
    "sign_in": "Password sign-in and sessions.",
}
#: What each key does, by section.
COMMENTS = {
    "dataset": {"name": "the dataset's name; releases go to <releases>/<name>/v1, v2, ..."},
    "taxonomy": {
        "mode": "fixed: events with other labels go to quarantine; open: any label is accepted",
        "labels": "one [[taxonomy.labels]] table per label: name, optionally description and hotkey; "
                  "`feedback taxonomy` keeps status and history keys",
    },
    "paths": {
        "store": "the embedded store file (unused when [store] url is set)",
        "spool": "the folder producers append events to; `feedback ingest` absorbs them",
        "releases": "where releases are written, unless [release] destination says otherwise",
    },
    "capture": {
        "max_text_chars": "the most characters a text field holds",
        "max_event_bytes": "the most bytes an event's JSON holds",
        "segment_max_bytes": "a spool segment is sealed at this size (bytes) ...",
        "segment_max_seconds": "... or this many seconds after it was opened",
    },
    "server": {
        "token_env": "when this environment variable is set, requests need it as an `Authorization: Bearer` token",
        "max_body_bytes": "larger request bodies get 413",
        "rate_per_second": "review API: requests a second per client (API token, else address), in each server process",
        "rate_burst": "review API: requests a client may send at once before the rate applies (429 beyond)",
    },
    "store": {
        "busy_timeout": "seconds a process waits for the store before it fails with \"store busy\"",
        "url": "the team store in PostgreSQL; the password comes from $PGPASSWORD or ~/.pgpass",
    },
    "review": {
        "overlap": "agreeing labels that make an overlap item labeled (overlap items: gold ones and overlap_share)",
        "overlap_share": "the share (0 to 1) of other items that also get several independent decisions",
        "lease_seconds": "how long a claim (`feedback next`, the app) holds an item for its reviewer",
        "gold_labels": "a gold answer is the item's trusted label",
        "low_confidence": "\"relative\": each model version's lowest-scored share is queued; a number: scores under it are",
        "low_confidence_share": "with low_confidence = \"relative\": the share of a version's predictions queued",
    },
    "queue.weights": {
        "correction": "a user correction that disagrees with the model",
        "error": "a production error",
        "suspected_label_error": "a label `feedback suspects` doubts",
        "low_confidence": "a prediction the model was unsure of",
        "active_learning": "an item `feedback sample` chose",
        "novelty": "an item with novel vocabulary (`feedback drift --queue`)",
        "manual": "an item queued by hand",
        "second_review": "a human label that disagrees with an earlier one, waiting for another reviewer",
        "taxonomy": "an item whose label a taxonomy change (split, remove) took away",
    },
    "release": {
        "splits": "split name = share of the examples; the shares sum to 1",
        "salt": "salts the hash that gives new examples their split (default: the dataset name)",
        "group_by": "what one split keeps together: near_duplicate, exact, source or item",
        "near_duplicate_threshold": "the similarity (0 to 100) at which two texts are near-duplicates",
        "near_duplicate_max": "the most examples near-duplicate grouping takes; beyond, use group_by = \"exact\"",
        "rows_per_file": "rows per Parquet data file",
        "row_group_size": "rows per Parquet row group",
        "memory_limit": "DuckDB's memory for reading the examples; it spills to disk beyond",
        "destination": "the folder or URL (s3://...) releases go to (default: paths.releases)",
        "license": "the source data's license, for the data card",
        "credit": "whom the data card credits for the source data",
        "formats": "data file formats: Parquet always, also \"csv\" and \"jsonl\"",
    },
    "release.gates": {
        "min_agreement": "the least Krippendorff's alpha between reviewers",
        "min_overlap": "items labeled by two or more reviewers before agreement is judged",
        "min_per_label": "the fewest examples a label present needs",
        "max_label_shift": "a label distribution moved further from the parent's (total variation) warns",
        "fitness": "train the text model on the candidate and on the parent, and compare them (slow)",
        "fitness_margin": "fitness fails when the candidate is more than this less accurate",
    },
    "learn": {
        "model": "\"package.module:function\" returning an unfitted scikit-learn pipeline (default: tf-idf + logistic regression)",
        "suspects_min_examples": "the fewest trusted labels a label needs for `feedback suspects` to judge its examples",
        "suspects_confirmed_days": "days suspects leave a label alone that a person set or confirmed (new events end it)",
    },
    "drift": {
        "window_days": "days of recent production, up to the newest event",
        "min_events": "requests the window needs before drift is judged",
        "max_psi": "label mix: the most population stability index",
        "max_js": "label mix: the most Jensen-Shannon distance",
        "max_score_shift": "confidence: the most Kolmogorov-Smirnov distance of the scores",
        "max_error_rate": "the most errors per request",
        "max_correction_rate": "the most corrections per prediction",
        "novelty_min_count": "window texts a novel term needs",
        "novelty_min_g2": "the least log-likelihood ratio G2 of a novel term (15: p < 1e-4)",
        "max_novel_terms": "the most novel terms",
        "novelty_examples": "example items kept per novel term",
    },
    "hooks": {
        "on_release": "a shell command run after each release, with the event in its environment",
        "on_drift": "a shell command run when `feedback drift` crosses a threshold",
        "webhooks": "URLs each event is POSTed to as JSON",
        "secret_env": "the environment variable whose secret signs each body (X-Feedback-Signature)",
        "timeout": "seconds a command may run (6 hours: room for a training run; the command that fired it waits)",
        "webhook_timeout": "seconds per webhook attempt",
        "attempts": "tries per webhook, with backoff",
    },
    "loop": {
        "stages": "the stages a run takes, in this order: ingest, retry, drift, sample, suspects, release",
        "sample_budget": "items the sampler queues per run",
        "suspects_every_hours": "hours between runs of the label-error finder",
        "suspects_limit": "suspects queued per run at most",
        "novelty_queue": "items queued per run for the top novel terms of production (0: none)",
        "release_min_labels": "a release is due once this many labels were decided since the last one ...",
        "release_max_days": "... or, with any new label, after this many days (every gate must pass; never an override)",
    },
    "sign_in": {
        "max_failures": "wrong passwords that lock a user name out ...",
        "window_seconds": "... within this many seconds",
        "session_hours": "how long a session token lasts",
    },
}
#: The commented-out example of each key whose default is None.
EXAMPLES = {
    ("store", "url"): "postgresql://feedback@db.internal:5432/feedback",
    ("release", "salt"): "banking77",
    ("release", "destination"): "s3://bucket/releases",
    ("release", "license"): "cc-by-4.0",
    ("release", "credit"): "Support logs of Acme Bank, used with consent.",
    ("learn", "model"): "team_models:classifier",
    ("hooks", "on_release"): "./train.sh",
    ("hooks", "on_drift"): "notify-oncall",
}
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def init_workspace(root: str | Path, *, dataset: str = "default", labels: list | None = None,
                   store: str | None = None) -> Workspace:
    """Create a workspace: config, store (migrated) and spool. A fixed taxonomy when `labels` are given;
    the store in PostgreSQL when `store` is a postgresql:// URL, else in the embedded file."""
    root = Path(root)
    if store is not None:
        check_store_url(store)
    if (root / CONFIG_NAME).exists():
        raise WorkspaceError(f"{root} is already a workspace; use it, or choose another folder")
    root.mkdir(parents=True, exist_ok=True)
    entries = [{"name": e} if isinstance(e, str) else dict(e) for e in labels or []]
    (root / CONFIG_NAME).write_text(render(dataset, entries, store), encoding="utf-8")
    workspace = Workspace(root)
    workspace.path("spool").mkdir(exist_ok=True)
    workspace.store(migrate=True)  # a file made anew may take the inode of one this process saw removed
    return workspace


def defaults() -> dict[str, dict]:
    """Every section of feedback.toml with its defaults, in the file's order (sub-tables as "release.gates")."""
    from .capture.items import DEFAULT_WEIGHTS
    from .hooks import DEFAULTS as HOOKS
    from .learn.choices import SUSPECTS_CONFIRMED_DAYS, SUSPECTS_MIN_EXAMPLES
    from .learn.drift import DEFAULTS as DRIFT
    from .loop import LOOP_DEFAULTS
    from .release.gates import DEFAULTS as GATES
    from .release.releases import DEFAULTS as RELEASE
    from .review.state import REVIEW_DEFAULTS
    from .roles import SIGN_IN_DEFAULTS

    return {**{name: DEFAULTS[name] for name in ("dataset", "taxonomy", "paths", "capture", "server")},
            "store": {**DEFAULTS["store"], "url": None}, "review": REVIEW_DEFAULTS, "queue.weights": DEFAULT_WEIGHTS,
            "release": RELEASE, "release.gates": GATES,
            "learn": {"model": None, "suspects_min_examples": SUSPECTS_MIN_EXAMPLES,
                      "suspects_confirmed_days": SUSPECTS_CONFIRMED_DAYS},
            "drift": DRIFT, "hooks": HOOKS, "loop": LOOP_DEFAULTS, "sign_in": SIGN_IN_DEFAULTS}


def render(dataset: str, labels: list[dict], store: str | None = None) -> str:
    """A new workspace's feedback.toml: the dataset's name, a fixed taxonomy of `labels` (open without), the
    store at the PostgreSQL URL `store` (the embedded file without), and every other key at its default."""
    sections = defaults()
    sections["dataset"] = {**sections["dataset"], "name": dataset}
    sections["taxonomy"] = {**sections["taxonomy"], "mode": "fixed" if labels else "open"}
    sections["store"] = {**sections["store"], "url": store}
    lines = ["# feedback-workbench workspace: every setting, at its default until you change it"]
    for section, values in sections.items():
        lines += ["", *([f"# {SECTIONS[section]}"] if section in SECTIONS else []), f"[{section}]"]
        for key, value in values.items():
            if (section, key) != ("taxonomy", "labels"):
                lines += _setting(section, key, value)
        if section == "taxonomy":
            lines += _labels(labels)
    return "\n".join(lines) + "\n"


def toml_value(value) -> str:
    """A TOML value: dicts as inline tables, lists as arrays, other values as `workspace.toml_string` writes them."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return toml_string(value)


def _setting(section: str, key: str, value) -> list[str]:
    comment = COMMENTS.get(section, {}).get(key)
    lines = [f"# {comment}"] if comment else []
    if value is None:
        example = EXAMPLES.get((section, key))
        return lines + [f"# {_key(key)} = {toml_value(example)}" if example is not None else f"# {_key(key)} is unset"]
    return lines + [f"{_key(key)} = {toml_value(value)}"]


def _labels(labels: list[dict]) -> list[str]:
    """The taxonomy's labels as [[taxonomy.labels]] tables (they must follow [taxonomy]'s own keys)."""
    lines = [f"# {COMMENTS['taxonomy']['labels']}"]
    if not labels:
        return lines + ["# [[taxonomy.labels]]", '# name = "refund"', '# description = "asks for money back"',
                        '# hotkey = "r"']
    for entry in labels:
        lines.append("[[taxonomy.labels]]")
        lines += [f"{key} = {toml_value(entry[key])}" for key in ("name", "description", "hotkey") if entry.get(key)]
    return lines


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else toml_string(key)
