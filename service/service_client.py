"""How the ``pipetrace`` commands that talk to a running service find it and call it."""

from __future__ import annotations

from typing import Any

import click
import requests

DEFAULT_SERVICE_URL = "http://127.0.0.1:4318"
# A service on this machine answers /healthz in milliseconds; a dead port fails at once.
PROBE_SECONDS = 0.5

service_url_option = click.option(
    "--service-url",
    envvar="PIPETRACE_URL",
    default=DEFAULT_SERVICE_URL,
    show_default=True,
    help="The Pipetrace service to use [env PIPETRACE_URL].",
)


def answers(url: str) -> bool:
    """Whether a Pipetrace service answers at ``url``."""
    try:
        return requests.get(f"{url.rstrip('/')}/healthz", timeout=PROBE_SECONDS).ok
    except requests.RequestException:
        return False


def headers(api_token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_token}"} if api_token else {}


def error_of(response: requests.Response) -> str:
    """The API's one-line error, or the status line when the answer is not the API's."""
    try:
        body: Any = response.json()
        return f"{response.status_code}: {body['error']['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.reason}"
