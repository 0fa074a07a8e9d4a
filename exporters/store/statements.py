"""The statements the store runs, each a whole file in ``sql/`` with ``$named`` parameters.

A statement read in one piece is read once: assembling one from fragments meant reading the Python
that builds it and the parameter list beside it together (otel-desktop-viewer keeps its DuckDB
queries as files for the same reason). The files are package data, read with ``importlib.resources``
so an installed package finds them too.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from itertools import repeat
from typing import Any

import duckdb
import pyarrow as pa


@dataclass(frozen=True)
class Statement:
    """One SQL statement and the ``$named`` parameters it declares (DuckDB's parser names them)."""

    name: str
    sql: str
    parameters: frozenset[str]

    def run(
        self,
        cur: duckdb.DuckDBPyConnection,
        values: Mapping[str, Any],
        incoming: pa.Table | None = None,
    ) -> duckdb.DuckDBPyConnection:
        """Run with the parameters this statement declares, read from ``values``: DuckDB refuses
        parameters a statement does not use, and a missing one fails here, by name.

        ``incoming`` is the batch a statement reads under that name, unless a view of that name
        exists (``exporters.store.ingest``'s Parquet path). DuckDB finds it among the local variables
        of the frame that runs the statement (its replacement scan): registering and unregistering a
        view for each batch cost more than the rest of a 512-record insert's overhead together.
        """
        return cur.execute(self.sql, {name: values[name] for name in self.parameters})


@functools.cache
def statement(name: str) -> Statement:
    """The statement in ``sql/<name>.sql``."""
    sql = resources.files(__package__).joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")
    (parsed,) = duckdb.extract_statements(sql)
    return Statement(name, sql, frozenset(parsed.named_parameters))


def records(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The rows of the statement ``cur`` just ran, each a dict by column name."""
    names = [column[0] for column in cur.description or ()]
    return list(map(dict, map(zip, repeat(names), cur.fetchall())))


def record(cur: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The first row of the statement ``cur`` just ran, by column name; None when there is none."""
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip((column[0] for column in cur.description or ()), row, strict=True))
