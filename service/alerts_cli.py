"""``pipetrace alerts``: the alert rules of a running service, their history, silences and tests.

Like ``pipetrace pipelines`` it asks the service's API (the service owns the DuckDB file). Each command
prints a table, or with ``--json`` the API's answer as is; an answer the API refuses is one line
naming the field it refuses, with exit code 1.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import orjson
import requests

from service.checked_settings import load_settings
from service.service_client import error_of, headers

_RELATIVE = re.compile(r"^([0-9]{1,6})([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class _Api:
    """The service's ``/api/alerts``: each call returns the answer's JSON or raises a one-line error."""

    def __init__(self, service_url: str | None) -> None:
        settings = load_settings()
        self.url = (service_url or f"http://{settings.host}:{settings.port}").rstrip("/")
        self.headers = headers(settings.api_token_value)

    def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        # A body on every write: the API answers a write without a JSON body with 415.
        json_body = body if body is not None or method == "GET" else {}
        try:
            response = requests.request(method, f"{self.url}/api/alerts{path}", json=json_body,
                                        params=params, headers=self.headers, timeout=120)  # fmt: skip
        except requests.RequestException as exc:
            raise click.ClickException(
                f"no pipetrace service answers at {self.url} ({type(exc).__name__}); start one with "
                "`pipetrace serve` or give its address with --service-url"
            ) from exc
        if not 200 <= response.status_code < 300:
            raise click.ClickException(f"{self.url} answered {error_of(response)}")
        return response.json() if response.content else None


def _echo_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    every = [tuple(header), *[tuple(row) for row in rows]]
    widths = [max(len(row[i]) for row in every) for i in range(len(header))]
    for row in every:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _read_rule(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--file") from exc
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"{path} is not JSON: {exc}", param_hint="--file") from exc


def _until(value: str) -> str:
    """An RFC 3339 time as given, or one that far from now (30m, 2h, 1d) in RFC 3339."""
    match = _RELATIVE.match(value.strip())
    if match is None:
        return value
    delta = datetime.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    return (datetime.datetime.now(datetime.UTC) + delta).isoformat().replace("+00:00", "Z")


def _rule_lines(rule: dict[str, Any]) -> None:
    pipelines = ", ".join(rule["pipeline_ids"]) or "all"
    targets = ", ".join(t["type"] for t in rule["notify"]) or "none"
    for name, value in (
        ("id", rule["id"]), ("name", rule["name"]), ("kind", rule["kind"]),
        ("severity", rule.get("severity", "-")), ("state", rule["state"]), ("enabled", str(rule["enabled"])),
        ("pipelines", pipelines), ("for", f"{rule['for_seconds']:g} s"),
        ("repeat", "never" if rule["repeat_seconds"] is None else f"{rule['repeat_seconds']:g} s"),
        ("params", orjson.dumps(rule["params"]).decode()), ("notify", targets),
        ("evaluated", rule["evaluated_at"] or "never"), ("error", rule["evaluation_error"] or "-"),
    ):  # fmt: skip
        click.echo(f"{name + ':':<11}{value}")
    if rule["subjects"]:
        click.echo("")
        _table(
            ("SUBJECT", "STATE", "SINCE", "SUMMARY"),
            [(s["key"] or "(store)", s["state"], s["since"] or "-", str(s["details"].get("summary", "")))
             for s in rule["subjects"]],
        )  # fmt: skip


service_url = click.option(
    "--service-url",
    envvar="PIPETRACE_URL",
    default=None,
    help="The service to ask [env PIPETRACE_URL; default http://PIPETRACE_HOST:PIPETRACE_PORT, "
    "i.e. http://127.0.0.1:4318].",
)
as_json = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead of a table.")
rule_file = click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The rule as JSON (as POST /api/alerts/rules takes it).",
)


@click.group()
def alerts() -> None:
    """Alert rules of a running service: list, create, edit, silence and test them, read the history."""


@alerts.command("list")
@service_url
@as_json
def list_rules(service_url: str | None, as_json: bool) -> None:
    """Each rule: name, id, kind, state, pipelines and targets."""
    api = _Api(service_url)
    found = api.call("GET", "/rules")
    if as_json:
        _echo_json(found)
        return
    if not found["rules"]:
        click.echo(f"no alert rules at {api.url}")
        return
    _table(
        ("NAME", "ID", "KIND", "STATE", "PIPELINES", "NOTIFY"),
        [(r["name"], r["id"], r["kind"], r["state"] if r["enabled"] else f"{r['state']} (disabled)",
          ",".join(r["pipeline_ids"]) or "all", ",".join(t["type"] for t in r["notify"]) or "-")
         for r in found["rules"]],
    )  # fmt: skip


@alerts.command("show")
@click.argument("rule_id")
@service_url
@as_json
def show_rule(rule_id: str, service_url: str | None, as_json: bool) -> None:
    """One rule, its state and each subject's."""
    rule = _Api(service_url).call("GET", f"/rules/{rule_id}")
    if as_json:
        _echo_json(rule)
    else:
        _rule_lines(rule)


@alerts.command("create")
@rule_file
@service_url
@as_json
def create_rule(path: Path, service_url: str | None, as_json: bool) -> None:
    """Create a rule from a JSON file."""
    _saved(_Api(service_url).call("POST", "/rules", _read_rule(path)), "created", as_json)


@alerts.command("edit")
@click.argument("rule_id")
@rule_file
@service_url
@as_json
def edit_rule(rule_id: str, path: Path, service_url: str | None, as_json: bool) -> None:
    """Replace a rule's definition with a JSON file (a firing rule first sends "resolved")."""
    _saved(_Api(service_url).call("PUT", f"/rules/{rule_id}", _read_rule(path)), "updated", as_json)


def _saved(rule: dict[str, Any], done: str, as_json: bool) -> None:
    """The rule the service answered with, as JSON or one line."""
    if as_json:
        _echo_json(rule)
    else:
        click.echo(f"{done} rule {rule['id']} ({rule['name']})")


@alerts.command("delete")
@click.argument("rule_id")
@service_url
def delete_rule(rule_id: str, service_url: str | None) -> None:
    """Delete a rule (a firing rule first sends "resolved"); its history stays."""
    _Api(service_url).call("DELETE", f"/rules/{rule_id}")
    click.echo(f"deleted rule {rule_id}")


@alerts.command("silence")
@click.argument("rule_id")
@click.option(
    "--until", required=True, help="RFC 3339 time (2026-01-31T12:00:00Z), or a span from now: 30m, 2h, 1d."
)
@click.option("--pipeline", "pipeline_id", default=None, help="Only this pipeline's alerts of the rule.")
@click.option("--comment", default=None, help="Why, for whoever reads the silences.")
@service_url
@as_json
def silence_rule(
    rule_id: str,
    until: str,
    pipeline_id: str | None,
    comment: str | None,
    service_url: str | None,
    as_json: bool,
) -> None:
    """Hold a rule's notifications back until a time."""
    body = {"rule_id": rule_id, "until": _until(until), "pipeline_id": pipeline_id, "comment": comment}
    silence = _Api(service_url).call("POST", "/silences", {k: v for k, v in body.items() if v is not None})
    if as_json:
        _echo_json(silence)
        return
    where = f" for pipeline {silence['pipeline_id']}" if silence["pipeline_id"] else ""
    click.echo(f"silenced rule {rule_id}{where} until {silence['until']} (silence {silence['id']})")


@alerts.command("unsilence")
@click.argument("rule_id")
@service_url
def unsilence_rule(rule_id: str, service_url: str | None) -> None:
    """End every silence of a rule."""
    api = _Api(service_url)
    ended = [s for s in api.call("GET", "/silences")["silences"] if s["rule_id"] == rule_id]
    if not ended:
        raise click.ClickException(f"rule {rule_id} has no silence")
    for silence in ended:
        api.call("DELETE", f"/silences/{silence['id']}")
    click.echo(f"ended {len(ended)} silence(s) of rule {rule_id}")


@alerts.command("test")
@click.argument("rule_id")
@service_url
@as_json
def test_rule(rule_id: str, service_url: str | None, as_json: bool) -> None:
    """Send a test notification to each of the rule's targets; exit 1 when one was not delivered."""
    deliveries = _Api(service_url).call("POST", f"/rules/{rule_id}/test")["deliveries"]
    if as_json:
        _echo_json({"deliveries": deliveries})
    else:
        _table(
            ("TARGET", "CHANNEL", "STATUS", "ATTEMPTS", "ERROR"),
            [(str(d["target"]), d["channel"], d["status"], str(d["attempts"]), d["last_error"] or "-")
             for d in deliveries],
        )  # fmt: skip
    if any(d["status"] != "sent" for d in deliveries):
        raise click.ClickException("a test notification was not delivered")


@alerts.command("history")
@click.option("--rule", "rule_id", default=None, help="Only this rule's transitions.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@service_url
@as_json
def history(rule_id: str | None, limit: int, service_url: str | None, as_json: bool) -> None:
    """Transitions, newest first, with the notifications each caused and how they went."""
    params: dict[str, Any] = {"limit": limit, **({"rule_id": rule_id} if rule_id else {})}
    found = _Api(service_url).call("GET", "/history", params=params)
    if as_json:
        _echo_json(found)
        return
    if not found["history"]:
        click.echo("no alert history")
        return
    _table(
        ("AT", "RULE", "SUBJECT", "TRANSITION", "NOTIFICATIONS"),
        [(h["at"], h["rule_name"], h["key"] or "(store)",
          f"{h['from']} -> {h['to']}" + (" (silenced)" if h["silenced"] else ""),
          ", ".join(f"{d['channel']} {d['event']}: {d['status']}" for d in h["deliveries"]) or "-")
         for h in found["history"]],
    )  # fmt: skip
