"""``pipetrace pipelines list``: the pipelines a running service holds, with their schedules.

The service owns its DuckDB file (one writing process at a time), so this asks its API rather than
opening the file.
"""

from __future__ import annotations

from typing import Any

import click
import orjson
import requests

from service.checked_settings import load_settings


def _get(url: str, path: str, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = requests.get(f"{url}{path}", headers=headers, timeout=10)
    except requests.RequestException as exc:
        raise click.ClickException(
            f"no pipetrace service answers at {url} ({type(exc).__name__}); start one with "
            "`pipetrace serve` or give its address with --service-url"
        ) from exc
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.reason
        raise click.ClickException(f"{url} answered {response.status_code}: {message}")
    return response.json()


def _schedule(pipeline: dict[str, Any]) -> str:
    schedule = pipeline.get("schedule")
    return f"{schedule['cron']} ({schedule['timezone']})" if schedule else "on demand"


@click.group()
def pipelines() -> None:
    """Pipelines defined in a running service."""


@pipelines.command("list")
@click.option(
    "--service-url",
    envvar="PIPETRACE_URL",
    default=None,
    help="The service to ask [env PIPETRACE_URL; default http://PIPETRACE_HOST:PIPETRACE_PORT, "
    "i.e. http://127.0.0.1:4318].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of a table.")
def list_pipelines(service_url: str | None, as_json: bool) -> None:
    """Each pipeline: name, id, template, schedule and its next scheduled run."""
    settings = load_settings()
    url = (service_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    found = _get(url, "/api/pipelines", settings.api_token_value)["pipelines"]
    if as_json:
        click.echo(orjson.dumps({"pipelines": found}).decode())
        return
    if not found:
        click.echo(f"no pipelines at {url}")
        return
    rows = [("NAME", "ID", "TEMPLATE", "SCHEDULE", "NEXT RUN")] + [
        (p["name"], p["id"], p["template"], _schedule(p), p.get("next_run_at") or "-") for p in found
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
