"""The OpenAPI 3.1 description of every route, served at ``/openapi.json``.

Written out rather than generated from the code: the routes parse by hand (to name the bad parameter
in each 400), so no schema library sees them. ``tests/service/test_openapi.py`` keeps the two in step
(every route described, nothing described that is not served) and fuzzes every operation from it.
"""

from __future__ import annotations

from typing import Any

from service.params import LEVELS

_ERROR_STATUSES = {
    "400": "A parameter or the body is not valid; ``error.parameter`` names it.",
    "401": "The route needs its token (PIPETRACE_API_TOKEN or PIPETRACE_INGEST_TOKEN); none or a wrong one.",
    "403": "The dlt_code template runs code: it needs PIPETRACE_API_TOKEN or PIPETRACE_ALLOW_USER_CODE.",
    "404": "Nothing is stored under that id.",
    "405": "The route does not take that method.",
    "409": "The request conflicts with the resource's state.",
    "413": "The body is too large (measured after decompression).",
    "415": "Unsupported Content-Type or Content-Encoding (a write to /api/ without the API token must be "
    "application/json).",
    "421": "The Host header names a host not in PIPETRACE_ALLOWED_HOSTS.",
    "429": "Ingest is saturated; retry after the Retry-After header's seconds.",
    "503": "The store cannot be used right now; retry after Retry-After.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _list(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}


def _object(**properties: Any) -> dict[str, Any]:
    """An object that has all of ``properties``."""
    return {"type": "object", "required": sorted(properties), "properties": properties}


def _nullable(kind: str, **more: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **more}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _error(status: str) -> dict[str, Any]:
    return {"description": _ERROR_STATUSES[status], **_json(_ref("Error"))}


def _responses(ok: str, schema: dict[str, Any], *errors: str) -> dict[str, Any]:
    responses: dict[str, Any] = {ok: {"description": "OK", **_json(schema)}}
    for status in ("400", "401", "421", *errors):
        responses[status] = _error(status)
    return responses


def _query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


_IDENTIFIER = {"type": "string", "minLength": 1, "maxLength": 256}
# A dropped count: what the sender dropped plus what a local limit removed (null: not recorded).
_COUNT = _nullable("integer", minimum=0)


_RFC3339 = {"type": "string", "description": "RFC 3339 with its offset"}
_RUN_MANIFEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["run_id", "trace_id", "pipeline"],
    "properties": {
        "run_id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "trace_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "started_at": _RFC3339,
        "pid": {"type": "integer"},
        "create_time": {"type": "number"},
        "client": {
            "type": "object",
            "description": "the registering `pipetrace run` process; a service on the same machine"
            " settles the run from `run_dir` when that process ends without reporting",
            "additionalProperties": False,
            "required": ["host", "boot_time", "pid", "create_time", "run_dir"],
            "properties": {
                "host": {"type": "string", "minLength": 1},
                "boot_time": {"type": "number", "minimum": 0},
                "pid": {"type": "integer", "minimum": 1},
                "create_time": {"type": "number", "minimum": 0},
                "run_dir": {"type": "string", "minLength": 1},
            },
        },
        "pipeline": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "template", "params"],
            "properties": {
                "id": {
                    "type": "string",
                    "pattern": "^[0-9a-f]{16}$",
                    "description": "the pipeline id the run's telemetry carries, for a pipeline the"
                    " service creates for it (ignored when the name is a pipeline already)",
                },
                "name": {"type": "string", "minLength": 1, "maxLength": 200},
                "template": {"type": "string"},
                "params": {"type": "object"},
            },
        },
    },
}
_RUN_OUTCOME = {
    "type": "object",
    "additionalProperties": False,
    "required": ["status"],
    "properties": {
        "status": {"enum": ["succeeded", "failed", "cancelled"]},
        "rows_loaded": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
        "error": {"type": ["object", "null"]},
        "exit_code": {"type": ["integer", "null"]},
        "finished_at": _RFC3339,
        "trace_id": {"type": "string"},
        "duration_seconds": {"type": "number"},
    },
}


def _path(name: str, description: str, schema: dict[str, Any] = _IDENTIFIER) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


_TIME = {
    "type": "string",
    "pattern": r"^(\d{1,9}[smhdw]|\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?"
    r"([Zz]|[+-]\d{2}:\d{2}))$",
    "description": "RFC 3339 (2026-11-28T10:00:00Z), 1970 to 2262, or a duration before now (15m, 24h, 7d)",
}
_SERVICE = _query("service_name", _IDENTIFIER, "Only this service's records (resource service.name).")
_FILTERS = [
    _SERVICE,
    _query("run_id", _IDENTIFIER, "Only this run's records."),
    _query("stage", _IDENTIFIER, "Only this stage (extract, normalize, load...)."),
    _query("level", {"type": "string", "enum": sorted(LEVELS)}, "Minimum severity."),
    _query("since", _TIME, "Records at or after this time."),
    _query("until", _TIME, "Records before this time."),
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "Page size."),
    _query("cursor", {"type": "string"}, "next_cursor of the previous page."),
]

_DURATION_MS = {"type": "number", "minimum": 0, "maximum": 86_400_000 * 3_650_000}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "parameter": {"type": "string"},
                },
            }
        },
    },
    "AnyValue": {
        "description": "An OTLP/JSON AnyValue: exactly one of stringValue, boolValue, intValue (a decimal "
        'string), doubleValue (a number, or "NaN", "Infinity", "-Infinity"), bytesValue (base64), '
        "arrayValue {values: [AnyValue]}, kvlistValue {values: [{key, value: AnyValue}]}; "
        "{} for an empty value.",
        "type": "object",
    },
    "TypedMap": {
        "description": "Attributes by key: a string value as a JSON string, any other value as its AnyValue.",
        "type": "object",
        "additionalProperties": {"oneOf": [{"type": "string"}, _ref("AnyValue")]},
    },
    "LogRecord": {
        "type": "object",
        "required": [
            "id",
            "timestamp",
            "sort_timestamp",
            "severity_number",
            "body",
            "trace_id",
            "attributes",
            "resource",
        ],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
            "timestamp": _nullable("string", description="The record's own time; null if it had none."),
            "observed_timestamp": _nullable("string"),
            "sort_timestamp": {
                "type": "string",
                "description": "What the record is ordered and filtered by: its time, else its observed "
                "time, else when it was received.",
            },
            "severity_text": _nullable("string"),
            "severity_number": _nullable("integer"),
            "body": {"oneOf": [{"type": "null"}, {"type": "string"}, _ref("AnyValue")]},
            "scope": {"oneOf": [{"type": "null"}, {"type": "object"}]},
            "trace_id": _nullable("string"),
            "span_id": _nullable("string"),
            "flags": _nullable("integer"),
            "event_name": _nullable("string"),
            "service_name": _nullable("string"),
            "pipeline_id": _nullable("string"),
            "run_id": _nullable("string"),
            "stage": _nullable("string"),
            "attributes": _ref("TypedMap"),
            "dropped_attributes_count": {"type": "integer"},
            "resource": _ref("TypedMap"),
            "resource_schema_url": _nullable("string"),
            "resource_dropped_attributes_count": {"type": "integer"},
        },
    },
    "LogPage": {
        "type": "object",
        "required": ["logs", "next_cursor"],
        "properties": {
            "logs": {"type": "array", "items": _ref("LogRecord")},
            "next_cursor": _nullable("string"),
        },
    },
    "TraceSummary": {
        "type": "object",
        "required": ["trace_id", "root_name", "start", "duration_ms", "span_count", "error"],
        "description": "One trace: its root span (the span without a parent, else its earliest span, "
        "with root_missing true), its first start, last end, and its spans' services and pipelines.",
        "properties": {
            "trace_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "root_span_id": {"type": "string"},
            "root_name": _nullable("string"),
            "root_service_name": _nullable("string"),
            "root_missing": {"type": "boolean"},
            "start": {"type": "string"},
            "end": {"type": "string"},
            "duration_ms": {"type": "number"},
            "span_count": {"type": "integer"},
            "error_count": {"type": "integer"},
            "error": {"type": "boolean"},
            "services": {"type": "array", "items": {"type": "string"}},
            "pipeline_ids": {"type": "array", "items": {"type": "string"}},
        },
    },
    "TracePage": {
        "type": "object",
        "required": ["traces", "next_cursor"],
        "properties": {
            "traces": {"type": "array", "items": _ref("TraceSummary")},
            "next_cursor": _nullable("string"),
        },
    },
    "Span": {
        "type": "object",
        "required": ["trace_id", "span_id", "name", "start", "status", "attributes"],
        "description": "Counts and flags are null for spans stored before they were recorded.",
        "properties": {
            "trace_id": {"type": "string"},
            "span_id": {"type": "string"},
            "parent_span_id": _nullable("string"),
            "trace_state": _nullable("string", description="W3C tracestate, as received"),
            "flags": _nullable(
                "integer",
                minimum=0,
                description="OTLP Span.flags as received: bits 0-7 W3C trace flags, 8-9 parent is remote",
            ),
            "name": {"type": "string"},
            "kind": _nullable("string"),
            "start": {"type": "string"},
            "end": _nullable("string"),
            "duration_ms": _nullable("number"),
            "status": {"type": "object"},
            "attributes": {"type": "object"},
            "dropped_attributes_count": _COUNT,
            "dropped_events_count": _COUNT,
            "dropped_links_count": _COUNT,
            "events": {"type": "array", "items": _ref("SpanEvent")},
            "links": {"type": "array", "items": _ref("SpanLink")},
            "scope_dropped_attributes_count": _COUNT,
            "resource_dropped_attributes_count": _COUNT,
        },
    },
    "SpanEvent": {
        "type": "object",
        "required": ["name", "timestamp", "attributes"],
        "properties": {
            "name": {"type": "string"},
            "timestamp": _nullable("string", description="null when the sender sent none (time 0)"),
            "attributes": {"type": "object"},
            "dropped_attributes_count": _COUNT,
        },
    },
    "SpanLink": {
        "type": "object",
        "required": ["trace_id", "span_id", "attributes"],
        "properties": {
            "trace_id": {"type": "string"},
            "span_id": {"type": "string"},
            "trace_state": _nullable("string"),
            "flags": _nullable("integer", minimum=0),
            "attributes": {"type": "object"},
            "dropped_attributes_count": _COUNT,
        },
    },
    "Correlation": {
        "type": "object",
        "required": ["trace_id", "logs", "spans", "truncated"],
        "properties": {
            "trace_id": {"type": "string"},
            "logs": {"type": "array", "items": _ref("LogRecord")},
            "spans": {"type": "array", "items": _ref("Span")},
            "truncated": {"type": "boolean"},
        },
    },
    "Stats": {
        "type": "object",
        "required": ["total", "by_level", "by_pipeline", "error_rate", "timeline", "ingest", "runs"],
        "properties": {
            "total": {"type": "integer", "minimum": 0},
            "by_level": {"type": "object", "additionalProperties": {"type": "integer"}},
            "by_pipeline": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["pipeline_id", "count", "errors"],
                    "properties": {
                        "pipeline_id": _nullable("string"),
                        "count": {"type": "integer"},
                        "errors": {"type": "integer"},
                    },
                },
            },
            "error_rate": {"type": "number", "minimum": 0, "maximum": 1},
            "timeline": {
                "type": "object",
                "required": ["bucket_seconds", "buckets"],
                "properties": {"bucket_seconds": _nullable("integer"), "buckets": {"type": "array"}},
            },
            "ingest": {"type": "object"},
            "runs": {
                "type": "object",
                "description": "Runs queued in the range (of the pipeline, when given), by how they ended; "
                "succeeded_with_warnings: succeeded, but loaded no rows",
                "additionalProperties": {"type": "integer", "minimum": 0},
            },
        },
    },
    "Cleanup": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "older_than_days": {"type": "number", "minimum": 0, "maximum": 36500},
            "before": {"type": "string", "description": "RFC 3339"},
            "pipeline_id": {"type": "string"},
            "dry_run": {"type": "boolean", "default": False},
        },
    },
    "Cleaned": {
        "type": "object",
        "required": ["deleted", "deleted_spans", "dry_run", "before"],
        "properties": {
            "deleted": {"type": "integer", "minimum": 0},
            "deleted_spans": {"type": "integer", "minimum": 0},
            "dry_run": {"type": "boolean"},
            "before": {"type": "string"},
        },
    },
    "Template": {
        "type": "object",
        "required": ["name", "description", "parameters"],
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "parameters": {"type": "object", "description": "JSON Schema of the template's params"},
        },
    },
    "NewPipeline": {
        "type": "object",
        "required": ["name", "template"],
        "additionalProperties": False,
        "properties": {
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "description": "Unique, without case",
            },
            "template": {"type": "string"},
            "params": {"type": "object"},
            "schedule": _ref("Schedule"),
        },
    },
    "PipelineUpdate": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "description": "Replaces name, params and schedule (omitted: none). A secret parameter left out "
        "keeps its stored value.",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "template": {"type": "string", "description": "If given, the pipeline's own: it cannot change"},
            "params": {"type": "object"},
            "schedule": _ref("Schedule"),
        },
    },
    "Schedule": {
        "oneOf": [
            {"type": "null"},
            {
                "type": "object",
                "required": ["cron", "timezone"],
                "additionalProperties": False,
                "properties": {
                    "cron": {"type": "string", "description": "Five fields, e.g. 0 2 * * *"},
                    "timezone": {"type": "string", "description": "IANA name, e.g. Europe/Berlin"},
                },
            },
        ]
    },
    "RunRequest": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "params": {
                "type": "object",
                "description": "Parameters for this run only, over the pipeline's (not secrets)",
            }
        },
    },
    "Pipeline": {
        "type": "object",
        "required": ["id", "name", "template", "params", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "template": {"type": "string"},
            "params": {"type": "object", "description": "Parameters without secrets"},
            "created_at": _nullable("string"),
            "schedule": _ref("Schedule"),
            "next_run_at": _nullable("string", description="When the schedule starts the next run"),
            "runs": {"type": "array", "items": _ref("Run")},
        },
    },
    "Run": {
        "type": "object",
        "required": ["run_id", "pipeline_id", "status"],
        "properties": {
            "run_id": {"type": "string"},
            "pipeline_id": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
            "trace_id": _nullable("string"),
            "queued_at": _nullable("string"),
            "started_at": _nullable("string"),
            "finished_at": _nullable("string"),
            "duration_seconds": _nullable("number"),
            "exit_code": _nullable("integer"),
            "error_count": {
                "type": "integer",
                "minimum": 0,
                "description": "ERROR and FATAL records of the run",
            },
            "rows_loaded": {"type": "object"},
            "error": {"oneOf": [{"type": "null"}, {"type": "object"}]},
            "overrides": {"type": "object", "description": "Parameters the run was started with"},
            "warnings": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Of a run that succeeded, e.g. no rows loaded",
            },
        },
    },
    "OtlpBody": {"type": "string", "format": "binary"},
}

_OTLP_REQUEST = {
    "required": True,
    "content": {
        "application/x-protobuf": {"schema": _ref("OtlpBody")},
        "application/json": {"schema": {"type": "object"}},
    },
}
_OTLP_RESPONSES: dict[str, Any] = {
    status: {
        "description": "OTLP export response (partial_success when some records were rejected)"
        if status == "200"
        else _ERROR_STATUSES[status],
        "content": {
            "application/x-protobuf": {"schema": _ref("OtlpBody")},
            "application/json": {"schema": {"type": "object"}},
        },
    }
    for status in ("200", "400", "401", "413", "415", "421", "429", "503")
}


def _otlp(signal: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": f"Receive OTLP/HTTP {signal} (protobuf or JSON, gzip or plain)",
            "tags": ["otlp"],
            "security": [{"ingest": []}],
            "requestBody": _OTLP_REQUEST,
            "responses": _OTLP_RESPONSES,
        }
    }


def document() -> dict[str, Any]:
    """The OpenAPI document."""
    # Imported here: the alerts' description is built with this module's helpers.
    from service.alerts.openapi import ALERT_PATHS, ALERT_SCHEMAS

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Pipetrace",
            "version": "1",
            "description": "OpenTelemetry logs and traces of dlt pipelines, stored in DuckDB.",
        },
        "components": {
            "schemas": {**_SCHEMAS, **ALERT_SCHEMAS},
            "securitySchemes": {
                "api": {"type": "http", "scheme": "bearer", "description": "PIPETRACE_API_TOKEN, when set"},
                "ingest": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "PIPETRACE_INGEST_TOKEN, when set",
                },
            },
        },
        "paths": {
            "/healthz": {
                "get": {
                    "summary": "Alive",
                    "tags": ["health"],
                    "responses": {"200": {"description": "alive"}, "421": _error("421")},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Ready: the store takes writes; its path and error with the API token, if set",
                    "tags": ["health"],
                    "security": [{}, {"api": []}],
                    "responses": {
                        "200": {"description": "ready", **_json({"type": "object"})},
                        "421": _error("421"),
                        "503": {"description": "not ready", **_json({"type": "object"})},
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "tags": ["meta"],
                    "security": [{"api": []}],
                    "responses": {
                        "200": {"description": "OpenAPI 3.1", **_json({"type": "object"})},
                        "401": _error("401"),
                        "421": _error("421"),
                    },
                }
            },
            "/favicon.ico": {
                "get": {
                    "summary": "The web page's icon (SVG)",
                    "tags": ["ui"],
                    "responses": {
                        "200": {
                            "description": "SVG",
                            "content": {"image/svg+xml": {"schema": {"type": "string"}}},
                        },
                        "421": _error("421"),
                    },
                }
            },
            "/v1/logs": _otlp("logs"),
            "/v1/traces": _otlp("traces"),
            "/v1/metrics": {
                "post": {
                    "summary": "Refuse OTLP metrics: answered 404 (gRPC UNIMPLEMENTED) with the reason",
                    "tags": ["otlp"],
                    "security": [{"ingest": []}],
                    "requestBody": _OTLP_REQUEST,
                    "responses": {
                        "401": _OTLP_RESPONSES["401"],
                        "421": _OTLP_RESPONSES["421"],
                        "404": {
                            "description": "metrics are not received here; set OTEL_METRICS_EXPORTER=none",
                            "content": _OTLP_RESPONSES["400"]["content"],
                        },
                    },
                }
            },
            "/": {
                "get": {
                    "summary": "The log explorer (a web page over this API)",
                    "tags": ["ui"],
                    "responses": {
                        "200": {
                            "description": "HTML",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        },
                        "421": _error("421"),
                    },
                }
            },
            "/api/logs": {
                "get": {
                    "summary": "Every log record, newest first",
                    "tags": ["logs"],
                    "security": [{"api": []}],
                    "parameters": [
                        _query("pipeline_id", _IDENTIFIER, "Only this pipeline's records."),
                        *_FILTERS,
                    ],
                    "responses": _responses("200", _ref("LogPage")),
                }
            },
            "/api/logs/pipeline/{pipeline_id}": {
                "get": {
                    "summary": "Logs of a pipeline, newest first",
                    "tags": ["logs"],
                    "security": [{"api": []}],
                    "parameters": [_path("pipeline_id", "The pipeline's id"), *_FILTERS],
                    "responses": _responses("200", _ref("LogPage")),
                }
            },
            "/api/logs/search": {
                "get": {
                    "summary": "Case-insensitive search in bodies and attribute values, newest first",
                    "tags": ["logs"],
                    "security": [{"api": []}],
                    "parameters": [
                        _query(
                            "q", {"type": "string", "minLength": 1, "maxLength": 500}, "Text to find.", True
                        ),
                        _query("pipeline_id", _IDENTIFIER, "Only this pipeline's records."),
                        *_FILTERS,
                    ],
                    "responses": _responses("200", _ref("LogPage")),
                }
            },
            "/api/logs/tail": {
                "get": {
                    "summary": "New records as Server-Sent Events (the live tail)",
                    "description": "Events `records` (a list, oldest first), `overflow` (more new records "
                    "than one event carries: the older ones were left out) and `end` (the stream's life is "
                    "over; reconnect with `since` set to its `since`). At most a quarter of the request "
                    "threads serve tails; one more gets 503.",
                    "tags": ["logs"],
                    "security": [{"api": []}],
                    "parameters": [
                        _SERVICE,
                        _query("pipeline_id", _IDENTIFIER, "Only this pipeline's records."),
                        _query("run_id", _IDENTIFIER, "Only this run's records."),
                        _query("stage", _IDENTIFIER, "Only this stage."),
                        _query("level", {"type": "string", "enum": sorted(LEVELS)}, "Minimum severity."),
                        _query("since", _TIME, "Records at or after this time (default: now)."),
                    ],
                    "responses": {
                        "200": {
                            "description": "The stream: each event's data is JSON",
                            "content": {
                                "text/event-stream": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["event", "data"],
                                        "properties": {
                                            "event": {"enum": ["records", "overflow", "end"]},
                                            "data": {"type": "string"},
                                        },
                                    }
                                }
                            },
                        },
                        **{status: _error(status) for status in ("400", "401", "421", "503")},
                    },
                }
            },
            "/api/logs/stats": {
                "get": {
                    "summary": "Counts by level and pipeline, error rate, timeline, ingest counters",
                    "tags": ["logs"],
                    "security": [{"api": []}],
                    "parameters": [
                        _query("since", _TIME, "From this time."),
                        _query("until", _TIME, "Before this time."),
                        _query("pipeline_id", _IDENTIFIER, "Only this pipeline's records."),
                        _SERVICE,
                    ],
                    "responses": _responses("200", _ref("Stats")),
                }
            },
            "/api/logs/correlation/{trace_id}": {
                "get": {
                    "summary": "Every log (oldest first) and span of one trace",
                    "tags": ["logs"],
                    "security": [{"api": []}],
                    "parameters": [
                        _path(
                            "trace_id",
                            "32 hex characters",
                            {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"},
                        )
                    ],
                    "responses": _responses("200", _ref("Correlation"), "404"),
                }
            },
            "/api/traces": {
                "get": {
                    "summary": "Traces, newest first by start, with their root span, duration and error flag",
                    "tags": ["traces"],
                    "security": [{"api": []}],
                    "parameters": [
                        _query("service_name", _IDENTIFIER, "Traces with a span of this service."),
                        _query("name", _IDENTIFIER, "Traces whose root span has this name."),
                        _query("min_duration_ms", _DURATION_MS, "Traces lasting at least this long."),
                        _query("max_duration_ms", _DURATION_MS, "Traces lasting at most this long."),
                        _query(
                            "status",
                            {"type": "string", "enum": ["ok", "error"]},
                            "error: a span ended with status ERROR; ok: none did.",
                        ),
                        _query("pipeline_id", _IDENTIFIER, "Traces with a span of this pipeline."),
                        _query("since", _TIME, "Traces starting at or after this time."),
                        _query("until", _TIME, "Traces starting before this time."),
                        _query(
                            "limit",
                            {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20},
                            "Page size.",
                        ),
                        _query("cursor", {"type": "string"}, "next_cursor of the previous page."),
                    ],
                    "responses": _responses("200", _ref("TracePage")),
                }
            },
            "/api/services": {
                "get": {
                    "summary": "Every service name of the stored logs and spans, sorted",
                    "tags": ["traces"],
                    "security": [{"api": []}],
                    "responses": _responses(
                        "200",
                        {
                            "type": "object",
                            "required": ["services"],
                            "properties": {"services": {"type": "array", "items": {"type": "string"}}},
                        },
                    ),
                }
            },
            "/api/logs/cleanup": {
                "post": {
                    "summary": "Delete logs and spans older than a time",
                    "tags": ["logs"],
                    "security": [{"api": []}],
                    "requestBody": {"required": True, **_json(_ref("Cleanup"))},
                    "responses": _responses("200", _ref("Cleaned"), "415", "503"),
                }
            },
            "/api/backup": {
                "post": {
                    "summary": "Write a consistent copy of the store into the data folder's backups/",
                    "tags": ["admin"],
                    "security": [{"api": []}],
                    "requestBody": {
                        "required": False,
                        **_json({"type": "object", "additionalProperties": False, "maxProperties": 0}),
                    },
                    "responses": _responses(
                        "201",
                        _object(
                            path={"type": "string"},
                            bytes={"type": "integer", "minimum": 0},
                            created_at={"type": "string"},
                        ),
                        "409",
                        "415",
                        "503",
                    ),
                }
            },
            "/api/templates": {
                "get": {
                    "summary": "Pipeline templates and their parameter schemas",
                    "tags": ["pipelines"],
                    "security": [{"api": []}],
                    "responses": _responses(
                        "200",
                        {
                            "type": "object",
                            "properties": {"templates": {"type": "array", "items": _ref("Template")}},
                        },
                    ),
                }
            },
            "/api/pipelines": {
                "get": {
                    "summary": "Pipelines",
                    "tags": ["pipelines"],
                    "security": [{"api": []}],
                    "responses": _responses(
                        "200",
                        {
                            "type": "object",
                            "properties": {"pipelines": {"type": "array", "items": _ref("Pipeline")}},
                        },
                    ),
                },
                "post": {
                    "summary": "Define a pipeline from a template",
                    "tags": ["pipelines"],
                    "security": [{"api": []}],
                    "requestBody": {"required": True, **_json(_ref("NewPipeline"))},
                    "responses": _responses("201", _ref("Pipeline"), "403", "409", "415"),
                },
            },
            "/api/pipelines/{pipeline_id}": {
                "get": {
                    "summary": "A pipeline and its last runs",
                    "tags": ["pipelines"],
                    "security": [{"api": []}],
                    "parameters": [_path("pipeline_id", "The pipeline's id")],
                    "responses": _responses("200", _ref("Pipeline"), "404"),
                },
                "put": {
                    "summary": "Replace a pipeline's name, parameters and schedule",
                    "tags": ["pipelines"],
                    "security": [{"api": []}],
                    "parameters": [_path("pipeline_id", "The pipeline's id")],
                    "requestBody": {"required": True, **_json(_ref("PipelineUpdate"))},
                    "responses": _responses("200", _ref("Pipeline"), "403", "404", "409", "415"),
                },
                "delete": {
                    "summary": "Remove a pipeline (its runs and telemetry stay); 409 while one runs",
                    "tags": ["pipelines"],
                    "security": [{"api": []}],
                    "parameters": [_path("pipeline_id", "The pipeline's id")],
                    "responses": _responses(
                        "200",
                        _object(id={"type": "string"}, deleted={"type": "boolean"}),
                        "404",
                        "409",
                        "415",
                    ),
                },
            },
            "/api/pipelines/{pipeline_id}/runs": {
                "get": {
                    "summary": "Runs of a pipeline, newest first",
                    "tags": ["pipelines"],
                    "security": [{"api": []}],
                    "parameters": [
                        _path("pipeline_id", "The pipeline's id"),
                        _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "How many."),
                    ],
                    "responses": _responses(
                        "200",
                        _object(runs=_list("Run")),
                        "404",
                    ),
                },
                "post": {
                    "summary": "Start a run (continues the request's trace), with parameters for it alone",
                    "tags": ["pipelines"],
                    "security": [{"api": []}],
                    "parameters": [_path("pipeline_id", "The pipeline's id")],
                    "requestBody": {"required": False, **_json(_ref("RunRequest"))},
                    "responses": _responses(
                        "202",
                        _object(run_id={"type": "string"}, trace_id={"type": "string"}),
                        "403",
                        "404",
                        "415",
                    ),
                },
            },
            "/api/runs": {
                "post": {
                    "summary": "Record a run that `pipetrace run` started (its pipeline is found by name "
                    "and template, or created)",
                    "tags": ["pipelines"],
                    "security": [{"api": []}],
                    "requestBody": {"required": True, **_json(_RUN_MANIFEST)},
                    "responses": _responses("201", _ref("Run"), "409", "415"),
                }
            },
            "/api/runs/{run_id}/outcome": {
                "post": {
                    "summary": "How a run that `pipetrace run` registered ended",
                    "tags": ["pipelines"],
                    "security": [{"api": []}],
                    "parameters": [_path("run_id", "The run's id")],
                    "requestBody": {"required": True, **_json(_RUN_OUTCOME)},
                    "responses": _responses("200", _ref("Run"), "404", "409", "415"),
                }
            },
            "/api/runs/{run_id}": {
                "get": {
                    "summary": "A run",
                    "tags": ["pipelines"],
                    "security": [{"api": []}],
                    "parameters": [_path("run_id", "The run's id")],
                    "responses": _responses("200", _ref("Run"), "404"),
                }
            },
            "/api/runs/{run_id}/cancel": {
                "post": {
                    "summary": "Cancel a queued or running run",
                    "tags": ["pipelines"],
                    "security": [{"api": []}],
                    "parameters": [_path("run_id", "The run's id")],
                    "responses": _responses(
                        "202",
                        {
                            "type": "object",
                            "properties": {"run_id": {"type": "string"}, "status": {"type": "string"}},
                        },
                        "404",
                        "409",
                        "415",
                    ),
                }
            },
            **ALERT_PATHS,
        },
    }
