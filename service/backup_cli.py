"""``pipetrace backup DEST``: a consistent copy of the store, whether or not the service runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import requests

from exporters.store import StoreUnavailable, TelemetryStore
from exporters.store.backup import BackupError, backup
from service import service_client
from service.checked_settings import load_settings


@click.command("backup")
@click.argument("destination", type=click.Path(dir_okay=False, path_type=Path))
@service_client.service_url_option
def backup_command(destination: Path, service_url: str) -> None:
    """Write a consistent copy of the telemetry store to DESTINATION (a new file).

    With the service running (at --service-url), the service takes the copy, since it holds the file;
    otherwise this command opens the file itself. Restore by stopping the service and putting the copy
    in place of PIPETRACE_DB (without the old .wal file beside it).
    """
    settings = load_settings()
    destination = destination.resolve()
    if destination.exists():
        raise click.UsageError(f"{destination} exists already; a backup never overwrites a file")
    if not destination.parent.is_dir():
        raise click.UsageError(f"{destination.parent} is not a folder")
    if service_client.answers(service_url):
        try:
            response = requests.post(
                f"{service_url.rstrip('/')}/api/backup",
                json={},
                headers=service_client.headers(settings.api_token_value),
                timeout=600,
            )
        except requests.RequestException as exc:
            raise click.ClickException(f"the service at {service_url} did not answer: {exc}") from exc
        if response.status_code != 201:
            raise click.ClickException(f"the service refused: {service_client.error_of(response)}")
        taken = Path(response.json()["path"])
        if not taken.exists():  # a service on another machine: its copy stays there
            click.echo(f"backup written by the service at {service_url} to {taken} (on its machine)")
            return
        shutil.move(taken, destination)
        click.echo(f"backup of the running service's store written to {destination}")
        return
    if not settings.database.exists():
        raise click.ClickException(
            f"no service answers at {service_url}, and there is no store at {settings.database}"
        )
    store = TelemetryStore(settings.database)
    try:
        size = backup(store, destination)
    except StoreUnavailable as exc:
        raise click.ClickException(
            f"no service answers at {service_url}, and the store cannot be opened: {exc}"
        ) from exc
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
    click.echo(
        f"no service at {service_url}; backup of {settings.database} written to {destination} ({size} bytes)"
    )
