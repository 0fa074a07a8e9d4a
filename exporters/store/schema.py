"""The store's schema, in one versioned place.

Tables follow the OpenTelemetry Collector's ClickHouse ``otel_logs`` / ``otel_traces`` layout in
snake_case, with the pipeline context promoted to columns. Each migration moves the schema forward by
one version and runs in a transaction; a database is never migrated backwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb

from exporters.store.search_index import grams_sql

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "logs and spans tables",
        (
            """
            CREATE TABLE logs (
                id UBIGINT NOT NULL,
                timestamp TIMESTAMP_NS NOT NULL,
                observed_timestamp TIMESTAMP_NS,
                trace_id VARCHAR,
                span_id VARCHAR,
                trace_flags UTINYINT,
                severity_text VARCHAR,
                severity_number UTINYINT,
                service_name VARCHAR,
                body VARCHAR,
                event_name VARCHAR,
                scope_name VARCHAR,
                scope_version VARCHAR,
                pipeline_id VARCHAR,
                run_id VARCHAR,
                stage VARCHAR,
                attributes VARCHAR,
                resource_attributes VARCHAR
            )
            """,
            """
            CREATE TABLE spans (
                trace_id VARCHAR NOT NULL,
                span_id VARCHAR NOT NULL,
                parent_span_id VARCHAR,
                trace_state VARCHAR,
                name VARCHAR,
                kind VARCHAR,
                service_name VARCHAR,
                scope_name VARCHAR,
                scope_version VARCHAR,
                start_time TIMESTAMP_NS NOT NULL,
                end_time TIMESTAMP_NS,
                duration_ns BIGINT,
                status_code VARCHAR,
                status_message VARCHAR,
                pipeline_id VARCHAR,
                run_id VARCHAR,
                stage VARCHAR,
                attributes VARCHAR,
                resource_attributes VARCHAR,
                events VARCHAR,
                links VARCHAR
            )
            """,
        ),
    ),
    Migration(
        2,
        "pipeline definitions and their runs",
        (
            """
            CREATE TABLE pipelines (
                id VARCHAR PRIMARY KEY,
                name VARCHAR NOT NULL,
                template VARCHAR NOT NULL,
                params VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
            """
            CREATE TABLE runs (
                id VARCHAR PRIMARY KEY,
                pipeline_id VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                trace_id VARCHAR,
                queued_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                started_at TIMESTAMPTZ,
                finished_at TIMESTAMPTZ,
                exit_code INTEGER,
                rows_loaded VARCHAR,
                error VARCHAR
            )
            """,
            "CREATE INDEX runs_by_pipeline ON runs (pipeline_id)",
        ),
    ),
    Migration(
        3,
        "time window of each trace's logs",
        (
            # One row per trace and insert (not per trace: keeping one would mean an update per batch):
            # a trace lookup reads its rows here, then only the logs inside that time window, which
            # DuckDB's zone maps on the time-ordered logs table narrow to a row group or two. Traces are
            # keyed by a 64-bit hash of their id, 8 bytes to scan instead of 32: two traces sharing a
            # hash would only widen each other's windows, never hide a log.
            """
            CREATE TABLE trace_windows (
                trace_key UBIGINT NOT NULL,
                first_ts TIMESTAMP_NS NOT NULL,
                last_ts TIMESTAMP_NS NOT NULL
            )
            """,
            """
            INSERT INTO trace_windows
            SELECT hash(trace_id), min(timestamp), max(timestamp) FROM logs
            WHERE trace_id IS NOT NULL GROUP BY ALL
            """,
        ),
    ),
    Migration(
        4,
        "trigram index of each hour's text, for search",
        (
            # See exporters.store.search_index: the distinct three-letter sequences of each hour.
            "CREATE TABLE search_grams (block BIGINT NOT NULL, gram VARCHAR NOT NULL)",
            f"INSERT INTO search_grams {grams_sql('logs')}",
        ),
    ),
    Migration(
        5,
        "promoted attributes kept only in their columns",
        # See sql/insert_logs.sql: bit i set means promoted key i was taken out of ``attributes``. Rows
        # stored before keep their attributes whole (0).
        ("ALTER TABLE logs ADD COLUMN promoted_keys UTINYINT DEFAULT 0",),
    ),
    Migration(
        6,
        "every OTLP field of a log record, typed; deliveries stored once",
        (
            # ``timestamp`` stays the time rows are ordered and filtered by; a record that came without a
            # time of its own says so here instead of showing a time it never had. Rows stored before
            # cannot tell and keep false.
            "ALTER TABLE logs ADD COLUMN time_absent BOOLEAN DEFAULT false",
            # OTLP severity numbers are int32 and values outside 1..24 are kept.
            "ALTER TABLE logs ALTER severity_number TYPE INTEGER",
            # All 32 bits of the record's flags (trace_flags held the low 8; kept for rows stored before).
            "ALTER TABLE logs ADD COLUMN flags UINTEGER",
            # A body that is not a string, as its OTLP/JSON AnyValue (``body`` keeps text to search).
            "ALTER TABLE logs ADD COLUMN body_value VARCHAR",
            # See exporters.anyvalue: true when the attributes (the record's, its resource's and its
            # scope's) are in the typed form.
            "ALTER TABLE logs ADD COLUMN typed_values BOOLEAN DEFAULT false",
            "ALTER TABLE logs ADD COLUMN dropped_attributes_count UINTEGER DEFAULT 0",
            "ALTER TABLE logs ADD COLUMN resource_schema_url VARCHAR",
            "ALTER TABLE logs ADD COLUMN resource_dropped_attributes_count UINTEGER DEFAULT 0",
            "ALTER TABLE logs ADD COLUMN scope_schema_url VARCHAR",
            "ALTER TABLE logs ADD COLUMN scope_attributes VARCHAR",
            "ALTER TABLE logs ADD COLUMN scope_dropped_attributes_count UINTEGER DEFAULT 0",
            # See sql/insert_logs.sql: where each promoted attribute stood, so it is returned in its place.
            "ALTER TABLE logs ADD COLUMN promoted_places UINTEGER DEFAULT 0",
            # One row per delivery (a batch or request, by a digest of its content, see
            # exporters.records.LogRows): a delivery seen before is not stored again, whatever its
            # records hold. Record ids are no longer content hashes, so identical records all stay.
            """
            CREATE TABLE deliveries (
                key UHUGEINT PRIMARY KEY,
                signal VARCHAR NOT NULL,
                received_at TIMESTAMP_NS NOT NULL,
                records INTEGER NOT NULL
            )
            """,
        ),
    ),
    Migration(
        7,
        "every OTLP field of a span, typed",
        # OTLP's Span.flags (32 bits: the W3C trace flags and whether the parent is remote) and the
        # dropped counts of the span, its resource and its scope: data a sender gave, kept as given (see
        # exporters.otlp_spans). Events and links keep theirs in their JSON. Rows stored before did
        # not record them: NULL ("not known"), not an invented 0.
        (
            "ALTER TABLE spans ADD COLUMN flags UINTEGER",
            "ALTER TABLE spans ADD COLUMN dropped_attributes_count UINTEGER",
            "ALTER TABLE spans ADD COLUMN dropped_events_count UINTEGER",
            "ALTER TABLE spans ADD COLUMN dropped_links_count UINTEGER",
            "ALTER TABLE spans ADD COLUMN resource_dropped_attributes_count UINTEGER",
            "ALTER TABLE spans ADD COLUMN scope_dropped_attributes_count UINTEGER",
            "ALTER TABLE spans ADD COLUMN resource_schema_url VARCHAR",
            "ALTER TABLE spans ADD COLUMN scope_schema_url VARCHAR",
            "ALTER TABLE spans ADD COLUMN scope_attributes VARCHAR",
            # Attributes in the typed form (exporters.anyvalue), keys in the order sent: rows stored
            # before hold plain JSON with sorted keys.
            "ALTER TABLE spans ADD COLUMN typed_values BOOLEAN DEFAULT false",
        ),
    ),
    Migration(
        8,
        "alert rules, their state, history, deliveries and silences",
        (
            # See exporters.store.alerts. A rule's definition is its JSON as the API took it, with each
            # notification URL masked: the URLs are secrets and live in a 0600 file beside the store.
            """
            CREATE TABLE alert_rules (
                id VARCHAR PRIMARY KEY,
                name VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                definition VARCHAR NOT NULL,
                created_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL,
                evaluated_at TIMESTAMPTZ,
                evaluation_error VARCHAR
            )
            """,
            # One row per rule and subject (a pipeline, an exporter, or '' for the whole store): what
            # the evaluator needs after a restart to send nothing twice.
            """
            CREATE TABLE alert_instances (
                rule_id VARCHAR NOT NULL,
                key VARCHAR NOT NULL,
                state VARCHAR NOT NULL,
                since TIMESTAMPTZ NOT NULL,
                active_since TIMESTAMPTZ,
                notified_at TIMESTAMPTZ,
                details VARCHAR,
                PRIMARY KEY (rule_id, key)
            )
            """,
            "CREATE SEQUENCE alert_history_ids",
            """
            CREATE TABLE alert_history (
                id BIGINT PRIMARY KEY DEFAULT nextval('alert_history_ids'),
                rule_id VARCHAR NOT NULL,
                rule_name VARCHAR NOT NULL,
                key VARCHAR NOT NULL,
                from_state VARCHAR NOT NULL,
                to_state VARCHAR NOT NULL,
                changed_at TIMESTAMPTZ NOT NULL,
                silenced BOOLEAN NOT NULL,
                details VARCHAR
            )
            """,
            # A notification is written here, pending, in the same transaction as the transition that
            # causes it, and sent after: a restart finds it pending and sends it, or finds it sent.
            """
            CREATE TABLE alert_deliveries (
                id VARCHAR PRIMARY KEY,
                history_id BIGINT,
                rule_id VARCHAR NOT NULL,
                target INTEGER NOT NULL,
                channel VARCHAR NOT NULL,
                event VARCHAR NOT NULL,
                message VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                attempts INTEGER NOT NULL,
                last_error VARCHAR,
                created_at TIMESTAMPTZ NOT NULL,
                updated_at TIMESTAMPTZ NOT NULL
            )
            """,
            """
            CREATE TABLE alert_silences (
                id VARCHAR PRIMARY KEY,
                rule_id VARCHAR,
                pipeline_id VARCHAR,
                until TIMESTAMPTZ NOT NULL,
                comment VARCHAR,
                created_at TIMESTAMPTZ NOT NULL
            )
            """,
        ),
    ),
    Migration(
        9,
        "pipeline schedules; each run's parameter overrides and warnings",
        (
            # {"cron": ..., "timezone": ...} as sent, or NULL for a pipeline run only on demand.
            "ALTER TABLE pipelines ADD COLUMN schedule VARCHAR",
            # The parameters a run was started with over its pipeline's, as sent (NULL: none), so a run
            # says what it ran; and what it warned about (a run that loaded nothing), as a JSON list.
            "ALTER TABLE runs ADD COLUMN overrides VARCHAR",
            "ALTER TABLE runs ADD COLUMN warnings VARCHAR",
        ),
    ),
    Migration(
        10,
        "an alert notification groups a rule's alerts: the transitions it told of",
        (
            # A notification carries every firing alert of its rule, as Alertmanager groups them, and
            # is shown with each transition it told of (history_id keeps the first, for older rows).
            "ALTER TABLE alert_deliveries ADD COLUMN history_ids BIGINT[]",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, description VARCHAR, applied_at TIMESTAMPTZ DEFAULT now())"
    )
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(con: duckdb.DuckDBPyConnection, target: int = LATEST_VERSION) -> int:
    """Apply every migration newer than the database, up to ``target``; return the version it ends at."""
    version = current_version(con)
    if version > LATEST_VERSION:
        raise RuntimeError(
            f"database schema version {version} is newer than this pipetrace ({LATEST_VERSION}); upgrade it"
        )
    for migration in MIGRATIONS:
        if migration.version <= version or migration.version > target:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in migration.statements:
                con.execute(statement)
            con.execute(
                "INSERT INTO schema_version (version, description) VALUES (?, ?)",
                [migration.version, migration.description],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        _logger.info("migrated telemetry store to schema version %d", migration.version)
        version = migration.version
    return version
