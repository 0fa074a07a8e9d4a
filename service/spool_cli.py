"""``pipetrace spool status`` and ``pipetrace spool replay``: look at and drain the spool by hand."""

from __future__ import annotations

import sys
from typing import Any

import click
import orjson

from exporters.base import ResilientExporter
from exporters.log_exporter import DuckDBLogRecordExporter
from exporters.otlp_exporter import ResilientOTLPLogExporter, ResilientOTLPSpanExporter
from exporters.settings import ExporterSettings
from exporters.span_exporter import DuckDBSpanExporter
from exporters.spool import Spool
from exporters.store import TelemetryStore
from service.checked_settings import load_exporter_settings
from service.runner import RUN_SPOOL

# Spool folders are named <sink>-<signal> by the exporter that wrote them.
_FOLDERS = ("duckdb-logs", "duckdb-traces", "otlp-logs", "otlp-traces")


def _settings() -> ExporterSettings:
    return load_exporter_settings()


@click.group()
def spool() -> None:
    """The fallback spool (FALLBACK_DIRECTORY): batches that could not be delivered yet."""


@spool.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(as_json: bool) -> None:
    """Show what is spooled, per exporter and signal."""
    settings = _settings()
    folders: dict[str, Any] = {}
    for name in _FOLDERS:
        folder = settings.fallback_directory / name
        if folder.is_dir():
            folders[name] = Spool(folder, settings.fallback_max_files).status()
    # What pipeline runs (the service's and `pipetrace run`'s) spooled; the service drains it.
    for name in ("otlp-logs", "otlp-traces"):
        folder = settings.data_dir / RUN_SPOOL / name
        if folder.is_dir():
            folders[f"{RUN_SPOOL}/{name}"] = Spool(folder, settings.fallback_max_files).status()
    if as_json:
        click.echo(orjson.dumps({"directory": str(settings.fallback_directory), "spools": folders}).decode())
        return
    click.echo(
        f"spool folder {settings.fallback_directory} (at most {settings.fallback_max_files} files each)"
    )
    if not folders:
        click.echo("  empty")
    for name, state in folders.items():
        click.echo(
            f"  {name:21} {state['files']:5} files {state['records']:9} records {state['bytes']:11} bytes"
            f" {state['quarantined_files']:4} quarantined"
        )


@spool.command()
def replay() -> None:
    """Deliver spooled batches now: into the DuckDB store, and over OTLP to OTEL_EXPORTER_OTLP_ENDPOINT."""
    settings = _settings()
    pending = {
        name for name in _FOLDERS if (folder := settings.fallback_directory / name).is_dir()
        and Spool(folder, settings.fallback_max_files).pending()
    }  # fmt: skip
    if not pending:
        click.echo("nothing to replay")
        return
    failed = False
    if pending & {"duckdb-logs", "duckdb-traces"}:
        store = TelemetryStore(settings.database, settings.memory_limit)
        if store.check_writable() is not None:
            store.close()
            click.echo(
                f"cannot open {settings.database}: {store.last_error}\n"
                "If `pipetrace serve` is running, it replays the spool by itself.",
                err=True,
            )
            sys.exit(1)
        exporters: list[ResilientExporter[Any]] = [
            DuckDBLogRecordExporter(store=store, settings=settings),
            DuckDBSpanExporter(store=store, settings=settings),
        ]
        failed |= _drain(exporters)
        store.close()
    if pending & {"otlp-logs", "otlp-traces"}:
        failed |= _drain([ResilientOTLPLogExporter(), ResilientOTLPSpanExporter()])
    sys.exit(1 if failed else 0)


def _drain(exporters: list[ResilientExporter[Any]]) -> bool:
    """Replay each exporter's spool and say what went. The counts are the exporter's counters, read
    after its shutdown: its background replayer starts with it and may deliver some (or all) of the
    spool before the replay asked for here, and what it delivered counts too."""
    failed = False
    for exporter in exporters:
        try:
            exporter.delivery.replay()
        finally:
            exporter.shutdown()  # stops the background replayer, after one last replay
        counters = exporter.counters.snapshot()
        left = exporter.delivery.spool.pending() if exporter.delivery.spool is not None else []
        click.echo(
            f"{exporter.delivery.name}: replayed {counters['replayed']} records,"
            f" {counters['quarantined']} quarantined, {len(left)} files left"
        )
        failed |= bool(left)
    return failed
