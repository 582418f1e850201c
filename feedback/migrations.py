"""Named schema migrations, applied in order by `Store.migrate` and recorded in `migrations`.

Tables are append-only logs. There are no UNIQUE constraints and no updates of hot
rows, so the same SQL runs on a DuckDB file and on DuckLake.
"""

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
]
