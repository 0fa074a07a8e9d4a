"""``pipetrace alerts`` against a running ``pipetrace serve``: every subcommand, as a table and as JSON,
and the API's refusals shown in one line with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from service.cli import main
from tests.alert_receivers import WebhookReceiver
from tests.conftest import LiveServer, free_port, start_server
from tests.helpers import wait_until
from tests.service.alert_helpers import send_logs


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    env = {"PIPETRACE_ALERT_INTERVAL_SECONDS": "0.3", "PIPETRACE_ALERT_RETRY_SECONDS": "0"}
    found = start_server(tmp_path / "live", env=env)
    yield found
    found.stop()


def alerts(server: LiveServer, *args: str) -> Result:
    return CliRunner().invoke(main, ["alerts", *args], env={"PIPETRACE_URL": server.url})


def rule_file(tmp_path: Path, name: str, body: dict[str, Any]) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(body))
    return str(path)


def test_rules_are_created_listed_shown_edited_silenced_tested_and_deleted(
    server: LiveServer, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    assert alerts(server, "list").output == f"no alert rules at {server.url}\n"
    params = {"window_seconds": 3600, "threshold": 0, "level": "ERROR"}
    notify = [{"type": "webhook", "url": f"{receiver.url}/hook/s3cret"}]
    body = {"name": "errors", "kind": "log_condition", "params": params, "notify": notify}
    created = alerts(server, "create", "--file", rule_file(tmp_path, "rule", body))
    assert created.exit_code == 0, created.output
    assert created.output.startswith("created rule ") and created.output.endswith(" (errors)\n")
    rule_id = created.output.split()[2]

    table = alerts(server, "list").output.splitlines()
    assert table[0].split() == ["NAME", "ID", "KIND", "STATE", "PIPELINES", "NOTIFY"]
    assert table[1].split() == ["errors", rule_id, "log_condition", "ok", "all", "webhook"]
    listed = json.loads(alerts(server, "list", "--json").output)
    assert [r["id"] for r in listed["rules"]] == [rule_id]
    assert "s3cret" not in json.dumps(listed)  # the secret URL stays masked
    shown = alerts(server, "show", rule_id).output
    assert "kind:      log_condition" in shown and '"threshold":0' in shown and "s3cret" not in shown
    assert json.loads(alerts(server, "show", rule_id, "--json").output)["name"] == "errors"

    edited = alerts(server, "edit", rule_id, "--file", rule_file(tmp_path, "edit", {**body, "name": "loud"}))
    assert edited.output == f"updated rule {rule_id} (loud)\n"

    silenced = alerts(server, "silence", rule_id, "--until", "2h", "--comment", "maintenance")
    assert silenced.exit_code == 0 and silenced.output.startswith(f"silenced rule {rule_id} until 20")
    assert alerts(server, "unsilence", rule_id).output == f"ended 1 silence(s) of rule {rule_id}\n"
    again = alerts(server, "unsilence", rule_id)
    assert again.exit_code == 1 and again.output == f"Error: rule {rule_id} has no silence\n"

    tested = alerts(server, "test", rule_id)
    assert tested.exit_code == 0, tested.output
    assert tested.output.splitlines()[1].split() == ["0", "webhook", "sent", "1", "-"]
    assert receiver.received[-1]["alerts"][0]["labels"]["test"] == "true"
    receiver.statuses = [500] * 3
    failed = alerts(server, "test", rule_id, "--json")
    assert failed.exit_code == 1
    assert json.loads(failed.output.split("Error:")[0])["deliveries"][0]["last_error"].endswith("HTTP 500")
    assert failed.output.endswith("Error: a test notification was not delivered\n")

    assert alerts(server, "history").output == "no alert history\n"
    send_logs(server, "client-app", "shop", errors=1, infos=0)
    assert wait_until(lambda: json.loads(alerts(server, "history", "--json").output)["history"])
    assert wait_until(lambda: "webhook firing: sent" in alerts(server, "history", "--rule", rule_id).output)
    history = alerts(server, "history", "--rule", rule_id, "--limit", "5").output.splitlines()
    assert history[0].split() == ["AT", "RULE", "SUBJECT", "TRANSITION", "NOTIFICATIONS"]
    assert "loud" in history[1] and "ok -> firing" in history[1] and "(store)" in history[1]

    assert alerts(server, "delete", rule_id).output == f"deleted rule {rule_id}\n"
    gone = alerts(server, "show", rule_id)
    assert gone.exit_code == 1 and gone.output == f"Error: {server.url} answered 404: no rule {rule_id}\n"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["create", "--file", "{bad}"], 1, "answered 400: kind: must be one of run_failed"),
        (["create", "--file", "{missing}"], 2, "Invalid value for --file: cannot read"),
        (["create", "--file", "{notjson}"], 2, "is not JSON"),
        (["edit", "nosuchrule", "--file", "{bad}"], 1, "answered 404: no rule nosuchrule"),
        (["silence", "nosuchrule", "--until", "1h"], 1, "answered 400: rule_id: no rule nosuchrule"),
        (["test", "nosuchrule"], 1, "answered 404"),
        (["history", "--rule", "x" * 300], 1, "answered 400: rule_id: must be 1.."),
    ],
)
def test_refusals_are_one_line_with_a_non_zero_exit(
    server: LiveServer, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    files = {
        "bad": rule_file(tmp_path, "bad", {"name": "x", "kind": "nope"}),
        "missing": str(tmp_path / "none.json"),
    }
    (tmp_path / "notjson.json").write_text("{")
    files["notjson"] = str(tmp_path / "notjson.json")
    result = alerts(server, *[arg.format(**files) for arg in args])
    assert result.exit_code == code, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_the_installed_command_says_when_no_service_answers(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "pipetrace"), "alerts", "list", "--service-url", url],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: no pipetrace service answers at {url}")
