"""Settings of the exporters, read from the environment in this one place.

An exporter built with no arguments (``OTEL_LOGS_EXPORTER=duckdb`` in any program) takes these; one
built from a config file gets the file's properties (the same names, lower case) on top of them.
Names and defaults of the fault-tolerance settings are the seed's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, ByteSize, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path(".pipetrace")
DB_FILE_NAME = "telemetry.duckdb"


def _env(name: str, field: str) -> AliasChoices:
    return AliasChoices(name, field)


class ExporterSettings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    data_dir: Path = Field(DEFAULT_DATA_DIR, validation_alias=_env("PIPETRACE_DATA_DIR", "data_dir"))
    db_path: Path | None = Field(None, validation_alias=_env("PIPETRACE_DB", "db_path"))

    memory_limit: ByteSize = Field(
        ByteSize(512 * 2**20),
        ge=64 * 2**20,
        validation_alias=_env("PIPETRACE_MEMORY_LIMIT", "memory_limit"),
        description="Memory the store may use (512MiB, 2GB, ...): 7/8 is DuckDB's memory_limit, 1/8 the "
        "search index's in-memory copy (past it, search reads the index from the database).",
    )

    enable_fault_tolerance: bool = Field(
        True, validation_alias=_env("ENABLE_FAULT_TOLERANCE", "enable_fault_tolerance")
    )
    max_retry_attempts: int = Field(
        3, ge=0, le=100, validation_alias=_env("MAX_RETRY_ATTEMPTS", "max_retry_attempts")
    )
    retry_delay_seconds: float = Field(
        1.0, ge=0, le=3600, validation_alias=_env("RETRY_DELAY_SECONDS", "retry_delay_seconds")
    )
    circuit_breaker_threshold: int = Field(
        5, ge=1, validation_alias=_env("CIRCUIT_BREAKER_THRESHOLD", "circuit_breaker_threshold")
    )
    circuit_breaker_timeout: float = Field(
        60.0, ge=0, validation_alias=_env("CIRCUIT_BREAKER_TIMEOUT", "circuit_breaker_timeout")
    )
    enable_fallback_storage: bool = Field(
        True, validation_alias=_env("ENABLE_FALLBACK_STORAGE", "enable_fallback_storage")
    )
    fallback_directory: Path = Field(
        Path("./logs/fallback"), validation_alias=_env("FALLBACK_DIRECTORY", "fallback_directory")
    )
    fallback_max_files: int = Field(
        100, ge=1, validation_alias=_env("FALLBACK_MAX_FILES", "fallback_max_files")
    )
    # How long one export may spend retrying before it spools its batch. The SDK's batch processor
    # exports from one thread and drops the newest records once its queue (2,048 at its defaults) is
    # full: at 500 records/s an export held for more than ~4 s loses records no spool could save.
    export_timeout_seconds: float = Field(
        2.0, ge=0, le=3600, validation_alias=_env("PIPETRACE_EXPORT_TIMEOUT", "export_timeout_seconds")
    )
    replay_interval_seconds: float = Field(
        5.0, gt=0, validation_alias=_env("PIPETRACE_REPLAY_INTERVAL", "replay_interval_seconds")
    )

    @property
    def database(self) -> Path:
        return self.db_path if self.db_path is not None else self.data_dir / DB_FILE_NAME

    @classmethod
    def with_properties(cls, **properties: Any) -> ExporterSettings:
        """The environment's settings, overridden by properties given by a config file or by code.

        ``path`` is accepted for the database file, as config files name it.
        """
        if "path" in properties:
            properties["db_path"] = properties.pop("path")
        return cls(**{key: value for key, value in properties.items() if value is not None})
