"""``pipetrace config check [FILE]``: validate a telemetry configuration and say what it wires."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from instrumentation.config import ConfigError, plan_from_environment, plan_from_file
from service.checked_settings import load_settings


@click.group()
def config() -> None:
    """The service's OpenTelemetry configuration (otel-config.yaml or OTEL_* env vars)."""


@config.command()
@click.argument("file", required=False, type=click.Path(path_type=Path))
def check(file: Path | None) -> None:
    """Validate FILE (default: OTEL_CONFIG_FILE, else ./otel-config.yaml, else the env vars) and
    every setting the service reads from the environment."""
    target = file or load_settings().config_file  # settings are checked whichever file is named
    try:
        plan = plan_from_file(target) if target is not None else plan_from_environment(os.environ)
    except ConfigError as error:
        click.echo(f"invalid configuration: {error}", err=True)
        sys.exit(1)
    click.echo(plan.describe())
    click.echo("configuration and settings are valid")
