"""Database roles for a team store: each kind of process logs in as its own role, with only what it needs.

Every role reads every table but the secrets below (the queue, history and releases join across them) and keeps the derived
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

Identity (`roles`) is split the same way. The roles whose processes sign users in (reviewer, release, loop)
read the secrets (password hashes, API tokens' hashes, the session key) and count wrong passwords; the
reviewer role also adds users and tokens, revokes tokens and keeps the app's session key and sessions
ended early. Ingest and the sampler read users and their roles, never a secret.

`grants_sql` writes the statements for a DBA to run once as the store's owner; the processes' URLs then
name their roles (`postgresql://feedback_ingest@db:5432/feedback`), their passwords in ~/.pgpass.
"""

from __future__ import annotations

from .postgres import quote

DERIVED = {"insert": ["items", "score_thresholds", "state_marks"], "delete": ["items", "score_thresholds"], "update": []}
SECRETS = ["user_passwords", "api_tokens", "session_keys"]  # readable only by the roles that sign users in
SIGN_IN = {"insert": ["sign_in_failures"], "delete": ["sign_in_failures"]}
ROLES = {
    "ingest": {"insert": ["events", "quarantine", "quarantine_resolutions", "ingested_sources"]},
    "reviewer": {"insert": ["decisions", "claims", "gold", "reviews", "queue_reasons", "distinct_marks",
                            "distinct_mark_undos", "pinned_splits", "taxonomy_changes", "taxonomy_items",
                            "users", "user_passwords", "api_tokens", "session_keys", "sessions_ended"],
                 "delete": ["reviews", "sessions_ended"],
                 # PostgreSQL asks `items` of `FOR UPDATE`: the row locks of claims and decisions
                 "update": ["items", "api_tokens"], "signs_in": True},
    "sampler": {"insert": ["sampler_runs", "sampler_picks", "queue_reasons"]},
    "release": {"insert": ["releases", "check_runs", "hook_runs"], "signs_in": True},
}
#: `feedback run` does the work of ingest, the sampler and a release, and records its runs
ROLES["loop"] = {"insert": sorted({t for kind in ("ingest", "sampler", "release") for t in ROLES[kind]["insert"]}
                                  | {"loop_runs", "loop_stages", "loop_releases"}), "update": ["loop_runs"],
                 "signs_in": True}


def grants_sql(schema: str = "public", *, prefix: str = "feedback") -> str:
    """The SQL that creates a role per kind of process (`{prefix}_ingest`, ...) with its privileges on `schema`."""
    lines = [f"-- Run once as the owner of the store's schema {schema}; then give each role a password "
             f"(ALTER ROLE ... PASSWORD) or another way in (pg_hba.conf)."]
    for kind, grants in ROLES.items():
        role = quote(f"{prefix}_{kind}")
        lines += [f"CREATE ROLE {role} LOGIN;", f"GRANT USAGE ON SCHEMA {quote(schema)} TO {role};",
                  f"GRANT SELECT ON ALL TABLES IN SCHEMA {quote(schema)} TO {role};"]
        if not grants.get("signs_in"):
            lines.append(f"REVOKE SELECT ON {', '.join(quote(t) for t in SECRETS)} FROM {role};")
        for privilege in ("insert", "delete", "update"):
            signing_in = SIGN_IN.get(privilege, []) if grants.get("signs_in") else []
            tables = sorted(set(grants.get(privilege, []) + DERIVED[privilege] + signing_in))
            if tables:
                lines.append(f"GRANT {privilege.upper()} ON {', '.join(quote(t) for t in tables)} TO {role};")
    return "\n".join(lines) + "\n"
