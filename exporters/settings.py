"""Settings of the exporters, read from the environment in this one place.

An exporter built with no arguments (``OTEL_LOGS_EXPORTER=duckdb`` in any program) takes these; one
built from a config file or by the service gets them as constructor arguments instead.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path(".pipetrace")
DB_FILE_NAME = "telemetry.duckdb"


class ExporterSettings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    data_dir: Path = Field(
        DEFAULT_DATA_DIR,
        validation_alias=AliasChoices("PIPETRACE_DATA_DIR", "data_dir"),
        description="Folder for the database and the spool.",
    )
    db_path: Path | None = Field(
        None,
        validation_alias=AliasChoices("PIPETRACE_DB", "db_path"),
        description="The DuckDB file; defaults to telemetry.duckdb in the data folder.",
    )

    @property
    def database(self) -> Path:
        return self.db_path if self.db_path is not None else self.data_dir / DB_FILE_NAME
