"""Database roles for a team store: each kind of process logs in as its own role, with only what it needs.

Every role reads every table (the queue, history and releases join across them) and keeps the derived
state current (`items`, its thresholds and watermark: any process may be the first to see new events).
Beyond that, only the owner (who runs `feedback init` and `feedback store migrate`, and `feedback forget`,
which blanks text in the logs) changes the schema or updates or deletes a log row:

- `ingest`: appends events and quarantine rows; it cannot touch decisions, claims or gold answers.
- `reviewer` (the app's replicas, the CLI): appends decisions, claims, gold answers, queue reasons, taxonomy changes and
  marks, rewrites the `reviews` rows derived from them, and locks the rows of the items it claims or
  decides; it cannot write events.
- `sampler` (`feedback sample`, `feedback suspects`): records its runs and queues its picks.
- `release` (`feedback release`, `feedback check`, the hooks): records releases, checks and hook runs.
- `loop` (`feedback run`): what ingest, the sampler and a release may do, and records its runs; it
  cannot decide.

`grants_sql` writes the statements for a DBA to run once as the store's owner; the processes' URLs then
name their roles (`postgresql://feedback_ingest@db:5432/feedback`), their passwords in ~/.pgpass.
"""

from __future__ import annotations

from .postgres import quote

DERIVED = {"insert": ["items", "score_thresholds", "state_marks"], "delete": ["items", "score_thresholds"], "update": []}
ROLES = {
    "ingest": {"insert": ["events", "quarantine", "quarantine_resolutions", "ingested_sources"]},
    "reviewer": {"insert": ["decisions", "claims", "gold", "reviews", "queue_reasons", "distinct_marks",
                            "distinct_mark_undos", "pinned_splits", "taxonomy_changes", "taxonomy_items"],
                 "delete": ["reviews"],
                 "update": ["items"]},  # PostgreSQL asks it of `FOR UPDATE`: the row locks of claims and decisions
    "sampler": {"insert": ["sampler_runs", "sampler_picks", "queue_reasons"]},
    "release": {"insert": ["releases", "check_runs", "hook_runs"]},
}
#: `feedback run` does the work of ingest, the sampler and a release, and records its runs
ROLES["loop"] = {"insert": sorted({t for kind in ("ingest", "sampler", "release") for t in ROLES[kind]["insert"]}
                                  | {"loop_runs", "loop_stages", "loop_releases"}), "update": ["loop_runs"]}


def grants_sql(schema: str = "public", *, prefix: str = "feedback") -> str:
    """The SQL that creates a role per kind of process (`{prefix}_ingest`, ...) with its privileges on `schema`."""
    lines = [f"-- Run once as the owner of the store's schema {schema}; then give each role a password "
             f"(ALTER ROLE ... PASSWORD) or another way in (pg_hba.conf)."]
    for kind, grants in ROLES.items():
        role = quote(f"{prefix}_{kind}")
        lines += [f"CREATE ROLE {role} LOGIN;", f"GRANT USAGE ON SCHEMA {quote(schema)} TO {role};",
                  f"GRANT SELECT ON ALL TABLES IN SCHEMA {quote(schema)} TO {role};"]
        for privilege in ("insert", "delete", "update"):
            tables = sorted(set(grants.get(privilege, []) + DERIVED[privilege]))
            if tables:
                lines.append(f"GRANT {privilege.upper()} ON {', '.join(quote(t) for t in tables)} TO {role};")
    return "\n".join(lines) + "\n"
