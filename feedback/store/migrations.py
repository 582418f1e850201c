"""Named schema migrations, applied in order by `Store.migrate` (and `PgStore.migrate`) and recorded in
`migrations`.

`MIGRATIONS` hold both backends' tables: append-only logs, and derived state rewritten from them, with
no UNIQUE constraints on the file (DuckDB's are slow to keep). `PG_MIGRATIONS` follow on PostgreSQL.
"""

def apply(tx, migrations: list[tuple[str, str]]) -> list[str]:
    """In a transaction holding the store alone: apply the migrations not yet recorded, in order; return their names."""
    tx.execute("CREATE TABLE IF NOT EXISTS migrations (name VARCHAR, applied_at TIMESTAMP)")
    done = {r["name"] for r in tx.rows("SELECT name FROM migrations")}
    applied = []
    for name, sql in migrations:
        if name in done:
            continue
        for statement in sql.split(";\n"):
            if statement.strip():
                tx.execute(statement)
        tx.execute("INSERT INTO migrations VALUES (?, now())", [name])
        applied.append(name)
    return applied


MIGRATIONS = [
    (
        "001_capture",
        """
CREATE TABLE events (
    seq BIGINT,
    event_id VARCHAR,
    type VARCHAR,
    item_id VARCHAR,
    ts TIMESTAMP,
    received_at TIMESTAMP,
    ingested_at TIMESTAMP,
    input_text VARCHAR,
    input JSON,
    pred_label VARCHAR,
    pred_score DOUBLE,
    pred_probs JSON,
    model VARCHAR,
    model_version VARCHAR,
    corr_label VARCHAR,
    corr_by VARCHAR,
    corr_note VARCHAR,
    error_kind VARCHAR,
    error_message VARCHAR,
    meta JSON,
    source VARCHAR,
    content_hash VARCHAR,
    schema_version INTEGER
);
CREATE TABLE quarantine (
    qid VARCHAR,
    quarantined_at TIMESTAMP,
    source VARCHAR,
    line BIGINT,
    event_id VARCHAR,
    reason VARCHAR,
    field VARCHAR,
    message VARCHAR,
    raw VARCHAR
);
CREATE TABLE quarantine_resolutions (
    qid VARCHAR,
    resolved_at TIMESTAMP,
    resolution VARCHAR,
    event_id VARCHAR
);
CREATE TABLE ingested_sources (
    source VARCHAR,
    kind VARCHAR,
    fingerprint VARCHAR,
    events BIGINT,
    duplicates BIGINT,
    quarantined BIGINT,
    ingested_at TIMESTAMP
)
""",
    ),
    (
        "002_review",
        """
CREATE TABLE items (
    item_id VARCHAR,
    text VARCHAR,
    pred_label VARCHAR,
    pred_score DOUBLE,
    model_version VARCHAR,
    corr_label VARCHAR,
    has_error BOOLEAN,
    source VARCHAR,
    first_ts TIMESTAMP,
    last_ts TIMESTAMP,
    reasons VARCHAR[],
    priority DOUBLE
);
CREATE INDEX items_item_id ON items (item_id);
CREATE TABLE reviews (
    item_id VARCHAR,
    status VARCHAR,
    current_label VARCHAR,
    label_decision_id VARCHAR,
    label_reviewer VARCHAR,
    reviewers VARCHAR[],
    last_decision_id VARCHAR,
    last_decided_at TIMESTAMP,
    claimed_by VARCHAR,
    claim_expires TIMESTAMP
);
CREATE TABLE decisions (
    decision_id VARCHAR,
    item_id VARCHAR,
    kind VARCHAR,
    label VARCHAR,
    reviewer VARCHAR,
    role VARCHAR,
    decided_at TIMESTAMP,
    note VARCHAR,
    based_on VARCHAR,
    batch_id VARCHAR,
    undoes VARCHAR
);
CREATE TABLE queue_reasons (
    item_id VARCHAR,
    reason VARCHAR,
    score DOUBLE,
    queued_at TIMESTAMP,
    actor VARCHAR,
    detail JSON
);
CREATE TABLE claims (
    item_id VARCHAR,
    reviewer VARCHAR,
    claimed_at TIMESTAMP,
    expires_at TIMESTAMP
);
CREATE TABLE gold (
    item_id VARCHAR,
    label VARCHAR,
    set_by VARCHAR,
    set_at TIMESTAMP
);
CREATE TABLE purges (
    item_id VARCHAR,
    purged_at TIMESTAMP,
    actor VARCHAR,
    why VARCHAR,
    match VARCHAR
);
CREATE TABLE state_marks (
    name VARCHAR,
    value BIGINT,
    marked_at TIMESTAMP
)
""",
    ),
    (
        "003_releases",
        """
CREATE TABLE releases (
    dataset VARCHAR,
    version VARCHAR,
    number INTEGER,
    release_id VARCHAR,
    parent VARCHAR,
    location VARCHAR,
    created_at TIMESTAMP,
    created_by VARCHAR,
    examples BIGINT,
    event_seq BIGINT,
    overrides VARCHAR[],
    manifest JSON
)
""",
    ),
    (
        "004_sampler",
        """
CREATE TABLE sampler_runs (
    run_id VARCHAR,
    run_key VARCHAR,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    actor VARCHAR,
    strategy VARCHAR,
    params JSON,
    model VARCHAR,
    pool BIGINT,
    picked BIGINT,
    status VARCHAR,
    message VARCHAR
);
CREATE TABLE sampler_picks (
    run_id VARCHAR,
    item_id VARCHAR,
    rank INTEGER,
    score DOUBLE,
    predicted VARCHAR
)
""",
    ),
    (
        "005_requeue",
        """
ALTER TABLE items ADD COLUMN last_queued_at TIMESTAMP
""",
    ),
    (
        "006_release_anchors",
        """
ALTER TABLE releases ADD COLUMN manifest_sha256 VARCHAR;
ALTER TABLE releases ADD COLUMN sums_sha256 VARCHAR
""",
    ),
    (
        "007_pinned_splits",
        """
CREATE TABLE pinned_splits (
    item_id VARCHAR,
    split VARCHAR,
    source VARCHAR,
    pinned_at TIMESTAMP
)
""",
    ),
    (
        "008_distinct_marks",
        """
CREATE TABLE distinct_marks (
    mark_id VARCHAR,
    item_id VARCHAR,
    marked_by VARCHAR,
    marked_at TIMESTAMP
);
CREATE TABLE distinct_mark_undos (
    mark_id VARCHAR,
    undone_by VARCHAR,
    undone_at TIMESTAMP
)
""",
    ),
    (
        "009_score_thresholds",
        """
CREATE TABLE score_thresholds (
    model_version VARCHAR,
    threshold DOUBLE,
    basis BIGINT,
    seen BIGINT
)
""",
    ),
    (
        "010_check_runs",
        """
CREATE TABLE check_runs (
    ran_at TIMESTAMP,
    target VARCHAR,
    passed INTEGER,
    failed INTEGER,
    detail JSON
)
""",
    ),
    (
        "011_hook_runs",
        """
CREATE TABLE hook_runs (
    event VARCHAR,
    hook VARCHAR,
    target VARCHAR,
    ran_at TIMESTAMP,
    attempt INTEGER,
    status VARCHAR,
    detail VARCHAR
)
""",
    ),
    (
        # A change is one row; its undo appends a copy of that row with undone_at and undone_by set.
        "012_taxonomy_changes",
        """
CREATE TABLE taxonomy_changes (
    change_id VARCHAR,
    kind VARCHAR,
    labels_from VARCHAR[],
    labels_to VARCHAR[],
    actor VARCHAR,
    changed_at TIMESTAMP,
    note VARCHAR,
    undone_at TIMESTAMP,
    undone_by VARCHAR
);
CREATE TABLE taxonomy_items (
    change_id VARCHAR,
    item_id VARCHAR,
    label_before VARCHAR,
    label_after VARCHAR
)
""",
    ),
    (
        "013_loop_runs",
        """
CREATE TABLE loop_runs (
    run_id VARCHAR,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    host VARCHAR,
    actor VARCHAR,
    status VARCHAR,
    exit_code INTEGER,
    resumes INTEGER
);
CREATE TABLE loop_stages (
    run_id VARCHAR,
    stage VARCHAR,
    finished_at TIMESTAMP,
    status VARCHAR,
    detail JSON
);
CREATE TABLE loop_releases (
    run_id VARCHAR,
    version VARCHAR,
    hooked_at TIMESTAMP
)
""",
    ),
    (
        # Who may sign in (`roles`): users and their roles; the secrets apart (password hashes, API tokens'
        # hashes, the key that signs app sessions), so a team store's roles that sign nobody in cannot read
        # them (`grants`); the shared sign-in state (wrong passwords lately, sessions ended early).
        "014_identity",
        """
CREATE TABLE users (
    user_name VARCHAR,
    role VARCHAR,
    added_at TIMESTAMP,
    added_by VARCHAR
);
CREATE INDEX users_user_name ON users (user_name);
CREATE TABLE user_passwords (
    user_name VARCHAR,
    password_hash VARCHAR,
    set_at TIMESTAMP
);
CREATE INDEX user_passwords_user_name ON user_passwords (user_name);
CREATE TABLE api_tokens (
    token_hash VARCHAR,
    token_id VARCHAR,
    user_name VARCHAR,
    name VARCHAR,
    created_at TIMESTAMP,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX api_tokens_token_hash ON api_tokens (token_hash);
CREATE TABLE session_keys (
    secret VARCHAR,
    created_at TIMESTAMP
);
CREATE TABLE sign_in_failures (
    user_name VARCHAR,
    failed_at TIMESTAMP
);
CREATE TABLE sessions_ended (
    session_id VARCHAR,
    expires_at TIMESTAMP
)
""",
    ),
]


def _arg_extreme_aggregates() -> str:
    """`arg_max(value, key)` and `arg_min`, as DuckDB has them (rows with a NULL value or key ignored), for
    the value and key types the capabilities use; PostgreSQL has no polymorphic form of them."""
    values = {"text": "text", "float8": "double precision", "ts": "timestamp", "int8": "bigint", "bool": "boolean",
              "json": "json"}
    keys = {"int8": "bigint", "ts": "timestamp", "int4": "integer", "float8": "double precision"}
    statements = []
    for v, vtype in values.items():
        for k, ktype in keys.items():
            pair = f"_argpair_{v}_{k}"
            statements.append(f"CREATE TYPE {pair} AS (v {vtype}, k {ktype})")
            statements.append(f"CREATE FUNCTION _argpair_value({pair}) RETURNS {vtype} LANGUAGE sql IMMUTABLE AS 'SELECT ($1).v'")
            for name, op in (("max", ">"), ("min", "<")):
                step = f"_arg_{name}_{v}_{k}"
                statements.append(
                    f"CREATE FUNCTION {step}({pair}, {vtype}, {ktype}) RETURNS {pair} LANGUAGE sql IMMUTABLE AS "
                    f"'SELECT CASE WHEN $2 IS NULL OR $3 IS NULL THEN $1 WHEN $1 IS NULL OR $3 {op} ($1).k "
                    f"THEN ROW($2, $3)::{pair} ELSE $1 END'")
                statements.append(f"CREATE AGGREGATE arg_{name}({vtype}, {ktype}) "
                                  f"(SFUNC = {step}, STYPE = {pair}, FINALFUNC = _argpair_value)")
    return ";\n".join(statements)


#: PostgreSQL only, after MIGRATIONS: DuckDB's functions that the capabilities' SQL calls, defined in the
#: store's schema, and the keys PostgreSQL enforces for a team store (an event, a decision, a release number,
#: a user, an API token stored once, whatever a writer does) with the indexes its lookups need.
PG_MIGRATIONS = [
    ("pg_001_duckdb_functions", "\n".join(s + ";" for s in [
        "CREATE FUNCTION list_contains(anyarray, anyelement) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $2 = ANY($1)'",
        "CREATE FUNCTION len(anyarray) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT cardinality($1)'",
        "CREATE FUNCTION len(text) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT length($1)'",
        "CREATE FUNCTION to_days(integer) RETURNS interval LANGUAGE sql IMMUTABLE AS 'SELECT make_interval(days => $1)'",
        "CREATE FUNCTION epoch(timestamp) RETURNS double precision LANGUAGE sql IMMUTABLE "
        "AS 'SELECT extract(epoch FROM $1)::double precision'",
        "CREATE FUNCTION sha256(text) RETURNS text LANGUAGE sql IMMUTABLE "
        "AS 'SELECT encode(sha256(convert_to($1, ''UTF8'')), ''hex'')'",
        "CREATE FUNCTION _first(anyelement, anyelement) RETURNS anyelement LANGUAGE sql IMMUTABLE AS 'SELECT coalesce($1, $2)'",
        "CREATE AGGREGATE any_value(anyelement) (SFUNC = _first, STYPE = anyelement)",
        "CREATE AGGREGATE list(anycompatible) (SFUNC = array_append, STYPE = anycompatiblearray, INITCOND = '{}')",
    ]) + "\n" + _arg_extreme_aggregates()),
    ("pg_002_keys_and_indexes", """
DROP INDEX items_item_id;
CREATE UNIQUE INDEX items_item_id ON items (item_id);
CREATE INDEX items_queue ON items (priority DESC, item_id);
CREATE INDEX items_recent ON items (last_ts DESC, item_id);
CREATE INDEX items_by_prediction ON items (pred_label, priority DESC, item_id);
CREATE UNIQUE INDEX reviews_item_id ON reviews (item_id);
CREATE INDEX reviews_claimed_by ON reviews (claimed_by) WHERE claimed_by IS NOT NULL;
CREATE UNIQUE INDEX events_event_id ON events (event_id);
CREATE INDEX events_seq ON events (seq);
CREATE INDEX events_item_id ON events (item_id);
CREATE UNIQUE INDEX decisions_decision_id ON decisions (decision_id);
CREATE INDEX decisions_item_id ON decisions (item_id);
CREATE INDEX decisions_undoes ON decisions (undoes) WHERE undoes IS NOT NULL;
CREATE INDEX decisions_reviewer ON decisions (reviewer, decided_at);
CREATE INDEX decisions_batch_id ON decisions (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX claims_item_id ON claims (item_id);
CREATE INDEX queue_reasons_item_id ON queue_reasons (item_id);
CREATE INDEX gold_item_id ON gold (item_id);
CREATE INDEX ingested_sources_source ON ingested_sources (source);
CREATE INDEX ingested_sources_fingerprint ON ingested_sources (fingerprint);
CREATE INDEX quarantine_qid ON quarantine (qid);
CREATE INDEX quarantine_event_id ON quarantine (event_id);
CREATE INDEX quarantine_resolutions_qid ON quarantine_resolutions (qid);
CREATE UNIQUE INDEX sampler_runs_run_id ON sampler_runs (run_id);
CREATE INDEX sampler_picks_item_id ON sampler_picks (item_id);
CREATE UNIQUE INDEX releases_number ON releases (dataset, number);
CREATE INDEX releases_release_id ON releases (release_id)
"""),
    ("pg_003_taxonomy_indexes", """
CREATE INDEX taxonomy_changes_change_id ON taxonomy_changes (change_id);
CREATE INDEX taxonomy_items_item_id ON taxonomy_items (item_id);
CREATE INDEX taxonomy_items_change_id ON taxonomy_items (change_id)
"""),
    ("pg_004_identity_keys", """
DROP INDEX users_user_name;
CREATE UNIQUE INDEX users_user_name ON users (user_name);
DROP INDEX user_passwords_user_name;
CREATE UNIQUE INDEX user_passwords_user_name ON user_passwords (user_name);
DROP INDEX api_tokens_token_hash;
CREATE UNIQUE INDEX api_tokens_token_hash ON api_tokens (token_hash);
CREATE INDEX api_tokens_user_name ON api_tokens (user_name, token_id);
CREATE INDEX sign_in_failures_user_name ON sign_in_failures (user_name, failed_at);
CREATE INDEX sessions_ended_session_id ON sessions_ended (session_id)
"""),
]
