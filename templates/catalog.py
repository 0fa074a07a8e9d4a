"""The ten pipeline templates: what each takes (a JSON Schema), which values are secret, which script.

A secret parameter never reaches a script, the store or a log: it is removed from the parameters and
handed to the run as the environment variable named here, where dlt's config resolution finds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

IDENTIFIER = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,62}$"}
NAME = {"type": "string", "minLength": 1, "maxLength": 200}

COMMON: dict[str, Any] = {
    "dataset_name": {
        **IDENTIFIER,
        "default": "pipetrace",
        "description": "Dataset (schema) in the destination.",
    },
    "destination": {
        "enum": [
            "duckdb",
            "postgres",
            "motherduck",
            "bigquery",
            "snowflake",
            "redshift",
            "mssql",
            "filesystem",
        ],
        "default": "duckdb",
        "description": "dlt destination; its credentials come from dlt's DESTINATION__... config. "
        "The default is "
        "a DuckDB file per pipeline in the data folder.",
    },
    "write_disposition": {"enum": ["append", "replace", "merge"], "default": "append"},
}

TRANSFORMATION: dict[str, Any] = {
    "type": "object",
    "required": ["op", "field"],
    "additionalProperties": False,
    "properties": {
        "op": {"enum": ["rename", "cast", "derive", "drop"]},
        "field": NAME,
        "to": NAME,
        "type": {"enum": ["string", "integer", "number", "boolean"]},
        "from": {"type": "array", "items": NAME, "maxItems": 20},
        "separator": {"type": "string", "maxLength": 20},
        "case": {"enum": ["upper", "lower"]},
        "value": {"type": ["string", "number", "boolean", "null"]},
    },
    "allOf": [
        {"if": {"properties": {"op": {"const": "rename"}}}, "then": {"required": ["to"]}},
        {"if": {"properties": {"op": {"const": "cast"}}}, "then": {"required": ["type"]}},
        {
            "if": {"properties": {"op": {"const": "derive"}}},
            "then": {"anyOf": [{"required": ["from"]}, {"required": ["value"]}]},
        },
    ],
}
TRANSFORMATIONS = {"type": "array", "items": TRANSFORMATION, "maxItems": 100, "default": []}
TABLE_TRANSFORMATIONS = {"type": "object", "additionalProperties": TRANSFORMATIONS, "default": {}}

FILES: dict[str, Any] = {
    "bucket_url": {
        "type": "string",
        "minLength": 1,
        "maxLength": 2000,
        "description": "Local folder (file:// or a path) or a URL the filesystem source reads.",
    },
    "file_glob": {"type": "string", "minLength": 1, "maxLength": 500, "default": "*.csv"},
    "file_format": {"enum": ["csv", "jsonl"], "default": "csv"},
    "table_name": {**IDENTIFIER, "default": "files"},
    "primary_key": {"type": ["string", "null"], "maxLength": 200, "default": None},
}

SQL_TABLES: dict[str, Any] = {
    "tables": {
        "type": "array",
        "items": NAME,
        "maxItems": 500,
        "default": [],
        "description": "Tables to load; empty for all.",
    },
    "primary_keys": {
        "type": "object",
        "additionalProperties": {"type": "array", "items": NAME, "minItems": 1},
        "default": {},
    },
    "chunk_size": {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 50_000},
}

SQL_PARTS: dict[str, Any] = {
    "host": {"type": "string", "minLength": 1, "maxLength": 255},
    "port": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535, "default": None},
    "username": {"type": "string", "maxLength": 200, "default": ""},
    "password": {"type": "string", "maxLength": 1000, "default": "", "x-secret": True},
    "database": {"type": "string", "minLength": 1, "maxLength": 500},
}

PAGINATOR: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type"],
    "properties": {
        "type": {"enum": ["none", "page_number", "offset", "cursor", "header_link"]},
        "page_param": NAME,
        "base_page": {"type": "integer"},
        "total_path": {"type": ["string", "null"]},
        "limit": {"type": "integer", "minimum": 1},
        "offset_param": NAME,
        "limit_param": NAME,
        "cursor_path": NAME,
        "cursor_param": NAME,
        "maximum_page": {"type": "integer", "minimum": 1},
    },
    "default": {"type": "none"},
}

AUTH: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type"],
    "properties": {
        "type": {"enum": ["none", "bearer", "api_key", "basic"]},
        "name": NAME,
        "location": {"enum": ["header", "query"]},
        "username": {"type": "string", "maxLength": 200},
    },
    "default": {"type": "none"},
}


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    script: str
    properties: dict[str, Any]
    required: tuple[str, ...] = ()
    # Secret parameter -> the environment variable the run gets it as.
    secrets: dict[str, str] = field(default_factory=dict)

    def schema(self) -> dict[str, Any]:
        properties = {**self.properties, **COMMON}
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": self.name,
            "description": self.description,
            "type": "object",
            "additionalProperties": False,
            "required": list(self.required),
            "properties": properties,
        }


def _sql_parts(name: str, description: str, engine: str, transform: bool) -> Template:
    properties = {
        **SQL_PARTS,
        **SQL_TABLES,
        "engine": {
            "type": "string",
            "pattern": "^[a-z0-9]+(\\+[a-z0-9_]+)?$",
            "default": engine,
            "description": "SQLAlchemy dialect and driver.",
        },
    }
    if transform:
        properties["transformations"] = TABLE_TRANSFORMATIONS
    return Template(
        name,
        description,
        "sql_parts.py.j2",
        properties,
        ("host", "database"),
        {"password": "SOURCES__SQL_DATABASE__PASSWORD"},
    )


def _sql_url(name: str, description: str, transform: bool) -> Template:
    properties: dict[str, Any] = {
        "connection_url": {
            "type": "string",
            "minLength": 1,
            "maxLength": 4000,
            "x-secret": True,
            "description": "SQLAlchemy URL, e.g. postgresql+psycopg2://user:pass@host/db",
        },
        **SQL_TABLES,
    }
    if transform:
        properties["transformations"] = TABLE_TRANSFORMATIONS
    return Template(
        name,
        description,
        "sql_db.py.j2",
        properties,
        ("connection_url",),
        {"connection_url": "SOURCES__SQL_DATABASE__CREDENTIALS"},
    )


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template(
            "api",
            "REST API: resources from endpoints of one base URL, with pagination and authentication.",
            "api.py.j2",
            {
                "base_url": {"type": "string", "pattern": "^https?://", "maxLength": 2000},
                "resources": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 100,
                    "items": {
                        "type": "object",
                        "required": ["name", "path"],
                        "additionalProperties": False,
                        "properties": {
                            "name": IDENTIFIER,
                            "path": {"type": "string", "maxLength": 2000},
                            "params": {
                                "type": "object",
                                "additionalProperties": {"type": ["string", "integer", "number", "boolean"]},
                            },
                            "data_selector": {"type": "string", "maxLength": 500},
                            "primary_key": {"type": "string", "maxLength": 200},
                        },
                    },
                },
                "paginator": PAGINATOR,
                "auth": AUTH,
                "token": {"type": "string", "maxLength": 10000, "x-secret": True},
                "api_key": {"type": "string", "maxLength": 10000, "x-secret": True},
                "password": {"type": "string", "maxLength": 10000, "x-secret": True},
            },
            ("base_url", "resources"),
            {
                "token": "SOURCES__API__TOKEN",
                "api_key": "SOURCES__API__API_KEY",
                "password": "SOURCES__API__PASSWORD",
            },
        ),
        Template(
            "simple",
            "Files (CSV or JSONL) from a local folder or a URL.",
            "simple.py.j2",
            FILES,
            ("bucket_url",),
        ),
        Template(
            "dlt_code",
            "Your own dlt code: it must define data_source() returning a dlt source or resource.",
            "dlt_code.py.j2",
            {"code": {"type": "string", "minLength": 1, "maxLength": 200_000}},
            ("code",),
        ),
        Template(
            "simple_s3_anon_login",
            "CSV files from an S3 bucket readable without credentials; any S3-compatible endpoint.",
            "simple_s3_anon_login.py.j2",
            {
                "bucket": {"type": "string", "pattern": "^[a-z0-9][a-z0-9.-]{1,62}$"},
                "prefix": {"type": "string", "maxLength": 1000, "default": ""},
                "endpoint_url": {"type": ["string", "null"], "pattern": "^https?://", "default": None},
                "file_glob": {"type": "string", "minLength": 1, "maxLength": 500, "default": "*.csv"},
                "table_name": {**IDENTIFIER, "default": "objects"},
                "primary_key": {"type": ["string", "null"], "maxLength": 200, "default": None},
                "chunk_size": {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 10_000},
            },
            ("bucket",),
        ),
        Template(
            "simple_transform_field",
            "Files from a folder or URL, with field transformations (rename, cast, derive, drop).",
            "simple_transform_field.py.j2",
            {**FILES, "transformations": TRANSFORMATIONS},
            ("bucket_url",),
        ),
        _sql_url("sql_db", "Tables of a SQL database (sql_database), by connection URL.", transform=False),
        _sql_parts(
            "sql_db_old",
            "Tables of a SQL database from host, port, user, password, database, engine.",
            "postgresql+psycopg2",
            transform=False,
        ),
        _sql_url(
            "sql_db_transform",
            "Tables of a SQL database with per-table field transformations.",
            transform=True,
        ),
        _sql_parts(
            "sql_server", "Tables of a SQL Server database (mssql+pymssql).", "mssql+pymssql", transform=False
        ),
        _sql_parts(
            "sql_server_transform",
            "SQL Server tables with per-table field transformations.",
            "mssql+pymssql",
            transform=True,
        ),
    )
}
