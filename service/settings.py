"""The service's settings: every environment variable it reads, declared once.

Values come from the environment (or CLI options, which override it); nothing else in the service
reads ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from exporters.otlp_codec import Limits
from exporters.settings import DB_FILE_NAME, DEFAULT_DATA_DIR, ExporterSettings
from instrumentation.flask import DEFAULT_EXCLUDED_URLS
from instrumentation.redaction import Redactor

DEFAULT_HOST = "127.0.0.1"
# The standard OTLP/HTTP port: an OTel SDK with default settings sends here without configuration.
DEFAULT_PORT = 4318
# The standard OTLP/gRPC port, where an SDK at its defaults (protocol grpc) sends.
DEFAULT_GRPC_PORT = 4317
# The OTLP specification's recommended default for the largest request a receiver takes.
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
# gRPC keeps message sizes in a signed 32-bit int.
_GRPC_MAX_MESSAGE = 2**31 - 1
DEFAULT_CONFIG_FILE = "otel-config.yaml"
# Loopback names only: a page on another site that rebinds its own name to 127.0.0.1 sends that name.
DEFAULT_ALLOWED_HOSTS = "localhost,127.0.0.1,[::1]"


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach; a name other than localhost counts as public."""
    if host.strip("[]").lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    host: str = Field(DEFAULT_HOST, validation_alias=_env("PIPETRACE_HOST", "host"))
    port: int = Field(DEFAULT_PORT, ge=0, le=65535, validation_alias=_env("PIPETRACE_PORT", "port"))
    grpc_port: int = Field(
        DEFAULT_GRPC_PORT,
        ge=0,
        le=65535,
        validation_alias=_env("PIPETRACE_GRPC_PORT", "grpc_port"),
        description="Port of the OTLP/gRPC receiver, on the same host; 0 turns it off.",
    )
    max_request_bytes: int = Field(
        DEFAULT_MAX_REQUEST_BYTES,
        ge=1,
        le=_GRPC_MAX_MESSAGE,
        validation_alias=_env("PIPETRACE_MAX_REQUEST_BYTES", "max_request_bytes"),
        description="Largest OTLP request, in bytes after decompression (HTTP 413, gRPC RESOURCE_EXHAUSTED).",
    )
    data_dir: Path = Field(DEFAULT_DATA_DIR, validation_alias=_env("PIPETRACE_DATA_DIR", "data_dir"))
    db_path: Path | None = Field(None, validation_alias=_env("PIPETRACE_DB", "db_path"))
    threads: int = Field(8, ge=1, le=256, validation_alias=_env("PIPETRACE_THREADS", "threads"))
    service_name: str = Field("pipetrace", validation_alias=_env("OTEL_SERVICE_NAME", "service_name"))
    log_level: str = Field("INFO", validation_alias=_env("LOG_LEVEL", "log_level"))
    enable_flask_logging: bool = Field(
        True, validation_alias=_env("ENABLE_FLASK_LOGGING", "enable_flask_logging")
    )
    log_retention_days: float | None = Field(
        None, gt=0, validation_alias=_env("LOG_RETENTION_DAYS", "log_retention_days")
    )
    retention_interval_seconds: float = Field(
        3600.0, gt=0, validation_alias=_env("PIPETRACE_RETENTION_INTERVAL", "retention_interval_seconds")
    )

    # The service's own batch processors. Larger batches than the SDK's default (512) because each
    # DuckDB insert has a fixed cost of a few milliseconds; see README, Performance.
    log_batch_size: int = Field(
        8192, ge=1, validation_alias=_env("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "log_batch_size")
    )
    log_queue_size: int = Field(
        32768, ge=1, validation_alias=_env("OTEL_BLRP_MAX_QUEUE_SIZE", "log_queue_size")
    )
    span_schedule_delay_ms: int = Field(
        1000, ge=1, validation_alias=_env("OTEL_BSP_SCHEDULE_DELAY", "span_schedule_delay_ms")
    )
    excluded_urls: str = Field(
        DEFAULT_EXCLUDED_URLS,
        validation_alias=_env(
            "OTEL_PYTHON_FLASK_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS", "excluded_urls"
        ),
        description="Comma-separated URL patterns not traced (and logged only when they fail).",
    )
    log_schedule_delay_ms: int = Field(
        1000, ge=1, validation_alias=_env("OTEL_BLRP_SCHEDULE_DELAY", "log_schedule_delay_ms")
    )

    otel_config_file: Path | None = Field(
        None,
        validation_alias=_env("OTEL_CONFIG_FILE", "otel_config_file"),
        description="Declarative OTel configuration; default ./otel-config.yaml if it exists, else env vars.",
    )
    otlp_endpoint: str | None = Field(
        None, validation_alias=_env("OTEL_EXPORTER_OTLP_ENDPOINT", "otlp_endpoint")
    )
    api_token: SecretStr | None = Field(
        None,
        validation_alias=_env("PIPETRACE_API_TOKEN", "api_token"),
        description="Bearer token required on /api/* when set.",
    )
    ingest_token: SecretStr | None = Field(
        None,
        validation_alias=_env("PIPETRACE_INGEST_TOKEN", "ingest_token"),
        description="Bearer token required on /v1/* (OTLP ingest) when set.",
    )
    redact_patterns: list[str] = Field(
        default_factory=list,
        validation_alias=_env("PIPETRACE_REDACT_PATTERNS", "redact_patterns"),
        description='Extra regular expressions whose matches are masked, as a JSON list: ["acct-[0-9]+"].',
    )
    redact_allow_keys: str = Field(
        "",
        validation_alias=_env("PIPETRACE_REDACT_ALLOW_KEYS", "redact_allow_keys"),
        description="Comma-separated attribute keys never redacted (values known to be safe).",
    )
    ingest_concurrency: int = Field(
        4,
        ge=1,
        le=256,
        validation_alias=_env("PIPETRACE_INGEST_CONCURRENCY", "ingest_concurrency"),
        description="OTLP requests stored at once; others wait, then get 429 with Retry-After.",
    )
    tail_stream_seconds: float = Field(
        30.0,
        ge=0,
        le=3600,
        validation_alias=_env("PIPETRACE_TAIL_STREAM_SECONDS", "tail_stream_seconds"),
        description="How long one live-tail stream (GET /api/logs/tail) lasts before the page reopens it.",
    )
    ingest_wait_seconds: float = Field(
        2.0,
        ge=0,
        le=60,
        validation_alias=_env("PIPETRACE_INGEST_WAIT_SECONDS", "ingest_wait_seconds"),
        description="How long an OTLP request waits for a free slot before it gets 429.",
    )
    attribute_count_limit: int = Field(
        128,
        ge=1,
        validation_alias=_env("OTEL_ATTRIBUTE_COUNT_LIMIT", "attribute_count_limit"),
        description="Attributes a received record (or resource, or scope) keeps; the rest are dropped "
        "and counted in its dropped_attributes_count.",
    )
    attribute_value_length_limit: int | None = Field(
        None,
        ge=1,
        validation_alias=_env("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "attribute_value_length_limit"),
        description="When set, longer string and bytes attribute values of received records are cut, as "
        "the OTel SDK cuts them. Unset by default, as in the SDK: nothing is cut.",
    )
    max_concurrent_runs: int = Field(
        4, ge=1, le=64, validation_alias=_env("PIPETRACE_MAX_RUNS", "max_concurrent_runs")
    )
    allow_origins: str = Field(
        "",
        validation_alias=_env("ALLOW_ORIGINS", "allow_origins"),
        description="Web origins allowed to call /api/* (and /v1/*) cross-origin, comma-separated (* for "
        "any); each prefix only once its token is set. Empty: no page of another origin can read the API.",
    )
    allowed_hosts: str = Field(
        DEFAULT_ALLOWED_HOSTS,
        validation_alias=_env("PIPETRACE_ALLOWED_HOSTS", "allowed_hosts"),
        description="Host header names answered (any port), comma-separated (* for any); the listen address "
        "is added. Others get 421: a DNS-rebinding page names its own host.",
    )
    allow_user_code: bool = Field(
        False,
        validation_alias=_env("PIPETRACE_ALLOW_USER_CODE", "allow_user_code"),
        description="Let the dlt_code template run code without PIPETRACE_API_TOKEN (on loopback only).",
    )

    alert_interval_seconds: float = Field(
        60.0,
        ge=0,
        validation_alias=_env("PIPETRACE_ALERT_INTERVAL_SECONDS", "alert_interval_seconds"),
        description="How often alert rules are evaluated and notifications sent; 0 turns the loop off.",
    )
    public_url: str | None = Field(
        None,
        validation_alias=_env("PIPETRACE_PUBLIC_URL", "public_url"),
        description="The UI's address as notification readers reach it, for links to runs, traces and "
        "logs; default the address the service listens on.",
    )
    alert_history_days: float = Field(
        30.0,
        ge=0,
        validation_alias=_env("PIPETRACE_ALERT_HISTORY_DAYS", "alert_history_days"),
        description="Alert transitions and sent or failed notifications older than this are deleted "
        "every PIPETRACE_RETENTION_INTERVAL seconds; 0 keeps them.",
    )
    alert_delivery_attempts: int = Field(
        3,
        ge=1,
        le=20,
        validation_alias=_env("PIPETRACE_ALERT_DELIVERY_ATTEMPTS", "alert_delivery_attempts"),
        description="Tries of one notification (exponential backoff between them) before it is failed.",
    )
    alert_retry_seconds: float = Field(
        1.0,
        ge=0,
        le=300,
        validation_alias=_env("PIPETRACE_ALERT_RETRY_SECONDS", "alert_retry_seconds"),
        description="The first wait between two tries of a notification; it doubles, up to 30 s.",
    )
    alert_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        validation_alias=_env("PIPETRACE_ALERT_TIMEOUT_SECONDS", "alert_timeout_seconds"),
        description="How long one try of a webhook, Slack or SMTP notification may take.",
    )
    smtp_host: str | None = Field(
        None,
        validation_alias=_env("PIPETRACE_SMTP_HOST", "smtp_host"),
        description="SMTP server for e-mail notifications; unset: e-mail targets fail, saying so.",
    )
    smtp_port: int = Field(25, ge=1, le=65535, validation_alias=_env("PIPETRACE_SMTP_PORT", "smtp_port"))
    smtp_user: str | None = Field(None, validation_alias=_env("PIPETRACE_SMTP_USER", "smtp_user"))
    smtp_password: SecretStr | None = Field(
        None,
        validation_alias=_env("PIPETRACE_SMTP_PASSWORD", "smtp_password"),
        description="SMTP password; never stored, listed or logged.",
    )
    smtp_from: str = Field("pipetrace@localhost", validation_alias=_env("PIPETRACE_SMTP_FROM", "smtp_from"))
    smtp_starttls: bool = Field(False, validation_alias=_env("PIPETRACE_SMTP_STARTTLS", "smtp_starttls"))

    @property
    def cors_origins(self) -> list[str]:
        """``ALLOW_ORIGINS`` is a comma-separated list; ``*`` allows any origin."""
        return [origin.strip() for origin in self.allow_origins.split(",") if origin.strip()]

    @model_validator(mode="after")
    def _ports_differ(self) -> Settings:
        if self.grpc_port and self.grpc_port == self.port:
            raise ValueError(f"grpc_port and port are both {self.port}; give gRPC another one, or 0 for none")
        return self

    @property
    def trusted_hosts(self) -> frozenset[str]:
        """Host names (lower case, IPv6 without brackets) the service answers; ``*`` means any."""
        names = {name.strip().strip("[]").lower() for name in self.allowed_hosts.split(",") if name.strip()}
        # Runs send their telemetry to the listen address, a wildcard too (http://0.0.0.0:port reaches
        # this machine). An address is no rebinding risk: no other server can serve a page from it.
        names.add(self.host.strip("[]").lower())
        return frozenset(names)

    @property
    def user_code_allowed(self) -> bool:
        """dlt_code runs what the request sends: only behind the API token, or when asked for on loopback."""
        return self.api_token_value is not None or (self.allow_user_code and is_loopback(self.host))

    @field_validator("api_token", "ingest_token", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def api_token_value(self) -> str | None:
        return self.api_token.get_secret_value() if self.api_token is not None else None

    @property
    def ingest_token_value(self) -> str | None:
        return self.ingest_token.get_secret_value() if self.ingest_token is not None else None

    @field_validator("redact_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from exc
        return patterns

    @property
    def redactor(self) -> Redactor:
        keys = [key.strip() for key in self.redact_allow_keys.split(",") if key.strip()]
        return Redactor(self.redact_patterns, keys)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        name = value.strip().upper()
        if name == "WARN":
            name = "WARNING"
        if not isinstance(logging.getLevelName(name), int):
            raise ValueError(f"unknown log level {value!r}")
        return name

    @property
    def database(self) -> Path:
        return self.db_path if self.db_path is not None else self.data_dir / DB_FILE_NAME

    @property
    def config_file(self) -> Path | None:
        if self.otel_config_file is not None:
            return self.otel_config_file
        default = Path(DEFAULT_CONFIG_FILE)
        return default if default.is_file() else None

    def exporter_settings(self) -> ExporterSettings:
        return ExporterSettings.with_properties(data_dir=self.data_dir, db_path=self.database)

    @property
    def receive_limits(self) -> Limits:
        """What one record received over OTLP may hold (the SDK's attribute limits)."""
        return Limits(self.attribute_count_limit, self.attribute_value_length_limit)
