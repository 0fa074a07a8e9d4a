"""dlt sources that generated scripts build from their (literal) parameters.

Kept here, not pasted into each template, so that the ten templates stay short and read as what they
are: which dlt source, with which parameters. Secrets never pass through here as parameters: they are
read from the environment with dlt's config conventions (``SOURCES__...``, ``CREDENTIALS``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast
from urllib.parse import quote_plus

_logger = logging.getLogger(__name__)


def secret(name: str) -> str:
    """A credential found in a parameter (``templates/secret_params.py``), handed over in the environment."""
    try:
        return os.environ[name]
    except KeyError:
        raise RuntimeError(f"the secret parameter {name} is missing from the run's environment") from None


# Field transformations: a closed set of operations on one record, never code from a parameter.
_CASTS: dict[str, Callable[[Any], Any]] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": lambda v: str(v).lower() in ("1", "true", "yes"),
}


def transform_record(
    record: dict[str, Any],
    operations: Sequence[Mapping[str, Any]],
    missing: Callable[[Mapping[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Apply rename / cast / derive / drop operations, in order, to one record.

    ``missing`` is told of each cast whose field the record does not have (a misspelt field, say).
    """
    out = dict(record)
    for op in operations:
        kind, field = op["op"], op["field"]
        if kind == "rename" and field in out:
            out[op["to"]] = out.pop(field)
        elif kind == "cast" and field not in out:
            if missing is not None:
                missing(op)
        elif kind == "cast" and out[field] is not None:
            out[field] = _CASTS[op["type"]](out[field])
        elif kind == "drop":
            out.pop(field, None)
        elif kind == "derive":
            if "value" in op:
                out[field] = op["value"]
            else:
                parts = [str(out.get(name, "")) for name in op["from"]]
                out[field] = op.get("separator", " ").join(parts)
                if op.get("case") == "upper":
                    out[field] = out[field].upper()
                elif op.get("case") == "lower":
                    out[field] = out[field].lower()
    return out


# dlt column types for casts: a SQL source's reflected column type would otherwise win.
_CAST_TYPES = {"string": "text", "integer": "bigint", "number": "double", "boolean": "bool"}


def with_transformations(resource: Any, operations: Sequence[Mapping[str, Any]]) -> Any:
    if not operations:
        return resource
    warned: set[str] = set()

    def missing(op: Mapping[str, Any]) -> None:
        if op["field"] not in warned:  # once per field and run: the same record shape repeats
            warned.add(op["field"])
            _logger.warning("cast to %s: field %r is not in the records of %s; nothing cast",
                            op["type"], op["field"], resource.name)  # fmt: skip

    resource.add_map(lambda record: transform_record(record, operations, missing))
    # A column hint makes the cast's type win over a SQL source's reflected type. It is given only for
    # a column the source declares: a hint for a field that never comes adds an all-NULL column. Files
    # declare none; the cast values carry their type.
    declared = resource.columns if isinstance(resource.columns, dict) else {}
    casts = {
        op["field"]: {"data_type": _CAST_TYPES[op["type"]]}
        for op in operations
        if op["op"] == "cast" and op["field"] in declared
    }
    if casts:
        resource.apply_hints(columns=casts)
    return resource


def files(bucket_url: str, file_glob: str, file_format: str, table_name: str, primary_key: str | None) -> Any:
    """CSV or JSONL files from a local folder or a URL, through dlt's filesystem source."""
    from dlt.sources.filesystem import filesystem, read_csv, read_jsonl

    reader = read_csv() if file_format == "csv" else read_jsonl()
    resource = (filesystem(bucket_url=bucket_url, file_glob=file_glob) | reader).with_name(table_name)
    if primary_key:
        resource.apply_hints(primary_key=primary_key)
    return resource


def s3_anonymous(
    bucket: str,
    prefix: str,
    endpoint_url: str | None,
    file_glob: str,
    table_name: str,
    primary_key: str | None,
    chunk_size: int,
) -> Any:
    """CSV files from a public S3 bucket, read without credentials (unsigned requests), in chunks."""
    import dlt
    import pandas as pd
    import s3fs

    client_kwargs = {"endpoint_url": endpoint_url} if endpoint_url else {}
    fs = s3fs.S3FileSystem(anon=True, client_kwargs=client_kwargs)

    def objects() -> Iterator[list[dict[str, Any]]]:
        pattern = (
            f"{bucket}/{prefix.strip('/')}/{file_glob}" if prefix.strip("/") else f"{bucket}/{file_glob}"
        )
        for path in sorted(fs.glob(pattern)):
            with fs.open(path, "rb") as handle:
                for chunk in pd.read_csv(handle, chunksize=chunk_size):
                    yield chunk.to_dict(orient="records")

    resource = dlt.resource(objects(), name=table_name)
    if primary_key:
        resource.apply_hints(primary_key=primary_key)
    return resource


def rest_api(config: dict[str, Any]) -> Any:
    """dlt's REST API source; auth secrets come from ``SOURCES__API__*`` in the environment."""
    import dlt
    from dlt.sources.rest_api import rest_api_source

    auth = config["client"].get("auth")
    if auth:
        secret = {"bearer": "token", "api_key": "api_key", "http_basic": "password"}[auth["type"]]
        auth[secret] = dlt.secrets[f"sources.api.{secret}"]
    return rest_api_source(cast(Any, config))


def sql_url_from_parts(engine: str, host: str, port: int | None, username: str, database: str) -> str:
    """A SQLAlchemy URL from separate parts; the password comes from ``SOURCES__SQL_DATABASE__PASSWORD``."""
    password = os.environ.get("SOURCES__SQL_DATABASE__PASSWORD", "")
    credentials = f"{quote_plus(username)}:{quote_plus(password)}@" if username else ""
    address = f"{host}:{port}" if port else host
    return f"{engine}://{credentials}{address}/{database}"


def sql(
    url: str | None, tables: Sequence[str], primary_keys: Mapping[str, Sequence[str]], chunk_size: int,
    transformations: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> Any:  # fmt: skip
    """Tables of a SQL database (all of them when ``tables`` is empty) through dlt's sql_database source.

    With ``url`` None the connection string is dlt's secret ``sources.sql_database.credentials``.
    """
    import dlt
    from dlt.sources.sql_database import sql_database

    credentials = url if url is not None else dlt.secrets["sources.sql_database.credentials"]
    source = sql_database(credentials=credentials, table_names=list(tables) or None, chunk_size=chunk_size)
    for table, keys in primary_keys.items():
        if table in source.resources:
            source.resources[table].apply_hints(primary_key=list(keys))
    for table, operations in (transformations or {}).items():
        if table in source.resources:
            with_transformations(source.resources[table], operations)
    return source
