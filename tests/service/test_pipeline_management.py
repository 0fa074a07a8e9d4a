"""Managing pipeline definitions: edit (PUT), remove (DELETE), unique names, per-run overrides, and
user code checked when it is defined."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import close_app, create_app
from service.state import state
from tests.conftest import ALLOW_USER_CODE, start_server
from tests.helpers import wait_until
from tests.service.pipeline_helpers import (
    FINISHED,
    create,
    delete,
    start,
    wait_for_logs,
    wait_for_run,
    wait_for_status,
)
from tests.service.test_pipeline_lifecycle import SLOW_CODE

SIMPLE = {"bucket_url": "/data/in", "file_glob": "orders_*.csv"}


@pytest.fixture
def code_app(tmp_path: Path) -> Iterator[Flask]:
    """An app on loopback that lets dlt_code be defined (as PIPETRACE_ALLOW_USER_CODE does)."""
    application = create_app(data_dir=tmp_path / "data", allow_user_code=True)
    yield application
    close_app(application)


def _define(client: FlaskClient, name: str, template: str, params: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/pipelines", json={"name": name, "template": template, "params": params})
    assert response.status_code == 201, response.json
    assert response.json is not None
    return response.json


def test_put_replaces_the_parameters_and_the_name_validated_as_at_creation(client: FlaskClient) -> None:
    pipeline = _define(client, "orders", "simple", SIMPLE)
    response = client.put(
        f"/api/pipelines/{pipeline['id']}",
        json={"name": "orders v2", "params": {"bucket_url": "/data/other", "table_name": "orders"}},
    )
    assert response.status_code == 200, response.json
    assert response.json is not None
    assert response.json["name"] == "orders v2"
    assert response.json["params"]["bucket_url"] == "/data/other"
    # Replaced, not merged: the glob left out is the template's default again, not orders_*.csv.
    assert response.json["params"]["file_glob"] == "*.csv"
    assert response.json["params"]["table_name"] == "orders"
    assert client.get(f"/api/pipelines/{pipeline['id']}").json == {**response.json, "runs": []}

    bad = client.put(f"/api/pipelines/{pipeline['id']}", json={"name": "x", "params": {"bucket_url": 7}})
    assert bad.status_code == 400 and bad.json is not None
    assert bad.json["error"]["parameter"] == "params.bucket_url"
    other_template = client.put(
        f"/api/pipelines/{pipeline['id']}", json={"name": "x", "template": "api", "params": SIMPLE}
    )
    assert other_template.status_code == 400 and other_template.json is not None
    assert other_template.json["error"]["parameter"] == "template"
    unknown = client.put(f"/api/pipelines/{pipeline['id']}", json={"name": "x", "params": SIMPLE, "x": 1})
    assert unknown.status_code == 400
    assert client.put("/api/pipelines/nope", json={"name": "x", "params": SIMPLE}).status_code == 404
    # Nothing refused was kept.
    assert client.get(f"/api/pipelines/{pipeline['id']}").json["name"] == "orders v2"


def test_a_secret_left_out_of_a_put_is_kept_and_one_sent_replaces_it(app: Flask) -> None:
    client = app.test_client()
    params = {"host": "db.example", "database": "shop", "username": "u", "password": "first-secret"}
    pipeline = _define(client, "sql", "sql_db_old", params)
    repository = state(app).repository
    assert repository.secret_env(pipeline["id"]) == {"SOURCES__SQL_DATABASE__PASSWORD": "first-secret"}
    edited = client.put(
        f"/api/pipelines/{pipeline['id']}",
        json={"name": "sql", "params": {"host": "db2.example", "database": "shop", "username": "u"}},
    )
    assert edited.status_code == 200 and edited.json is not None
    assert "password" not in edited.json["params"]
    assert repository.secret_env(pipeline["id"]) == {"SOURCES__SQL_DATABASE__PASSWORD": "first-secret"}
    client.put(
        f"/api/pipelines/{pipeline['id']}",
        json={"name": "sql", "params": {**params, "password": "second-secret"}},
    )
    assert repository.secret_env(pipeline["id"]) == {"SOURCES__SQL_DATABASE__PASSWORD": "second-secret"}


def test_pipeline_names_are_unique_without_case(client: FlaskClient) -> None:
    first = _define(client, "Orders", "simple", SIMPLE)
    second = _define(client, "customers", "simple", SIMPLE)
    again = client.post("/api/pipelines", json={"name": " orders ", "template": "simple", "params": SIMPLE})
    assert again.status_code == 409 and again.json is not None
    assert again.json["error"]["parameter"] == "name" and first["id"] in again.json["error"]["message"]
    renamed = client.put(f"/api/pipelines/{second['id']}", json={"name": "ORDERS", "params": SIMPLE})
    assert renamed.status_code == 409
    # Keeping one's own name is not a clash.
    assert (
        client.put(f"/api/pipelines/{first['id']}", json={"name": "orders", "params": SIMPLE}).status_code
        == 200
    )
    assert len(client.get("/api/pipelines").json["pipelines"]) == 2


def test_delete_removes_the_definition_and_its_secrets(app: Flask) -> None:
    client = app.test_client()
    params = {"host": "db.example", "database": "shop", "username": "u", "password": "pw-9f1e"}
    pipeline = _define(client, "gone", "sql_db_old", params)
    secrets_file = state(app).settings.data_dir / "secrets" / f"{pipeline['id']}.json"
    assert secrets_file.exists()
    response = client.delete(f"/api/pipelines/{pipeline['id']}", json={})
    assert response.status_code == 200 and response.json == {"id": pipeline["id"], "deleted": True}
    assert client.get(f"/api/pipelines/{pipeline['id']}").status_code == 404
    assert not secrets_file.exists()
    assert client.delete(f"/api/pipelines/{pipeline['id']}", json={}).status_code == 404
    # Its name is free again.
    again = client.post("/api/pipelines", json={"name": "gone", "template": "simple", "params": SIMPLE})
    assert again.status_code == 201


def test_a_run_body_takes_parameter_overrides_and_refuses_anything_else(client: FlaskClient) -> None:
    pipeline = _define(client, "overrides", "simple", {"bucket_url": "/nowhere/at/all"})
    path = f"/api/pipelines/{pipeline['id']}/runs"
    cases = [
        ({"param": {}}, "param"),
        ({"params": {"file_glob": 3}}, "params.file_glob"),
        ({"params": {"no_such_parameter": 1}}, "params.no_such_parameter"),
        ({"params": []}, "params"),
        ([], "body"),
    ]
    for body, parameter in cases:
        response = client.post(path, json=body)
        assert response.status_code == 400, (body, response.json)
        assert response.json is not None and response.json["error"]["parameter"] == parameter
    assert client.get(path).json == {"runs": []}  # nothing refused was started
    started = client.post(path, json={"params": {"file_glob": "*.jsonl", "file_format": "jsonl"}})
    assert started.status_code == 202 and started.json is not None
    run = client.get(f"/api/runs/{started.json['run_id']}").json
    assert run is not None and run["overrides"] == {"file_glob": "*.jsonl", "file_format": "jsonl"}
    # Runs outlive the service that started them: let this one end before the app closes.
    assert wait_until(
        lambda: client.get(f"/api/runs/{run['run_id']}").json["status"] in FINISHED, timeout=120, interval=0.2
    )
    # The definition is unchanged.
    assert client.get(f"/api/pipelines/{pipeline['id']}").json["params"]["file_glob"] == "*.csv"


def test_a_secret_cannot_be_overridden_per_run(client: FlaskClient) -> None:
    pipeline = _define(client, "secret", "sql_db", {"connection_url": "sqlite:////nowhere.db"})
    response = client.post(
        f"/api/pipelines/{pipeline['id']}/runs", json={"params": {"connection_url": "sqlite:////other.db"}}
    )
    assert response.status_code == 400 and response.json is not None
    assert response.json["error"]["parameter"] == "params.connection_url"


def test_an_override_is_what_the_run_uses(tmp_path: Path) -> None:
    server = start_server(tmp_path / "svc")
    try:
        for folder, rows in (("few", 2), ("more", 5)):
            (tmp_path / folder).mkdir()
            lines = "\n".join(f"{i},row {i}" for i in range(rows))
            (tmp_path / folder / "rows.csv").write_text(f"id,name\n{lines}\n")
        pipeline = create(server, "simple", {"bucket_url": str(tmp_path / "few"), "table_name": "rows"})
        response = server.post(
            f"/api/pipelines/{pipeline['id']}/runs", json={"params": {"bucket_url": str(tmp_path / "more")}}
        )
        assert response.status_code == 202, response.text
        run = wait_for_run(server, response.json()["run_id"])
        assert run["status"] == "succeeded" and run["rows_loaded"] == {"rows": 5}
        assert run["overrides"] == {"bucket_url": str(tmp_path / "more")}
        plain = wait_for_run(server, start(server, pipeline["id"])["run_id"])
        assert plain["rows_loaded"] == {"rows": 2} and plain["overrides"] == {}
    finally:
        server.stop()


BROKEN_CODE = textwrap.dedent(
    """
    import dlt

    def data_source(:
        return None
    """
)


def test_dlt_code_that_does_not_compile_or_lacks_data_source_is_refused_naming_the_line(
    code_app: Flask,
) -> None:
    client = code_app.test_client()
    broken = client.post(
        "/api/pipelines", json={"name": "b", "template": "dlt_code", "params": {"code": BROKEN_CODE}}
    )
    assert broken.status_code == 400 and broken.json is not None
    assert broken.json["error"]["parameter"] == "params.code"
    assert "line 4" in broken.json["error"]["message"]
    missing = client.post(
        "/api/pipelines",
        json={"name": "m", "template": "dlt_code", "params": {"code": "def source():\n    pass\n"}},
    )
    assert missing.status_code == 400 and missing.json is not None
    assert "data_source" in missing.json["error"]["message"]
    assert client.get("/api/pipelines").json == {"pipelines": []}
    fine = client.post(
        "/api/pipelines",
        json={"name": "ok", "template": "dlt_code", "params": {"code": "from x import data_source\n"}},
    )
    assert fine.status_code == 201
    # An edit is checked the same way.
    edit = client.put(
        f"/api/pipelines/{fine.json['id']}", json={"name": "ok", "params": {"code": BROKEN_CODE}}
    )
    assert edit.status_code == 400


def test_a_pipeline_is_not_deleted_while_it_runs_and_its_telemetry_outlives_it(tmp_path: Path) -> None:
    server = start_server(tmp_path / "svc", env=ALLOW_USER_CODE)
    try:
        pipeline = create(server, "dlt_code", {"code": SLOW_CODE})
        run_id = start(server, pipeline["id"])["run_id"]
        wait_for_status(server, run_id, "running")
        busy = delete(server, pipeline["id"])
        assert busy.status_code == 409 and run_id in busy.json()["error"]["message"]
        assert server.post(f"/api/runs/{run_id}/cancel", json={}).status_code == 202
        run = wait_for_run(server, run_id)
        assert run["status"] == "cancelled"
        wait_for_logs(server, f"/api/logs/pipeline/{pipeline['id']}?run_id={run_id}", lambda b: b["logs"])
        assert delete(server, pipeline["id"]).status_code == 200
        assert server.get(f"/api/pipelines/{pipeline['id']}").status_code == 404
        assert server.get(f"/api/logs/pipeline/{pipeline['id']}?run_id={run_id}").json()["logs"]
        assert server.get(f"/api/logs/correlation/{run['trace_id']}").status_code == 200
        assert server.get(f"/api/runs/{run_id}").json()["status"] == "cancelled"
    finally:
        server.stop()


def test_credentials_in_ordinary_fields_survive_an_edit_that_sends_back_what_was_listed(app: Flask) -> None:
    """The usual edit: GET the definition, change one thing, PUT it back. The listed parameters hold
    the redacted text (``user:***@``); sent back unchanged, the stored credential is kept."""
    client = app.test_client()
    params = {
        "base_url": "https://apiuser:base-pw-4e@api.example.test/v1",
        "resources": [{"name": "users", "path": "users", "params": {"api_key": "res-key-5f", "page": 2}}],
    }
    pipeline = _define(client, "rest", "api", params)
    repository = state(app).repository
    before = repository.secret_env(pipeline["id"])
    assert sorted(before.values()) == ["https://apiuser:base-pw-4e@api.example.test/v1", "res-key-5f"]
    listed = client.get(f"/api/pipelines/{pipeline['id']}").json["params"]
    assert listed["base_url"] == "https://apiuser:***@api.example.test/v1"
    listed["resources"][0]["params"]["page"] = 3  # the edit
    assert (
        client.put(f"/api/pipelines/{pipeline['id']}", json={"name": "rest", "params": listed}).status_code
        == 200
    )
    assert repository.secret_env(pipeline["id"]) == before
    assert (
        client.get(f"/api/pipelines/{pipeline['id']}").json["params"]["resources"][0]["params"]["page"] == 3
    )
    # A credential sent anew replaces the old one; a field sent without one keeps none.
    listed["base_url"] = "https://apiuser:new-pw-9z@api.example.test/v1"
    listed["resources"][0]["params"].pop("api_key")
    assert (
        client.put(f"/api/pipelines/{pipeline['id']}", json={"name": "rest", "params": listed}).status_code
        == 200
    )
    assert sorted(repository.secret_env(pipeline["id"]).values()) == [
        "https://apiuser:new-pw-9z@api.example.test/v1"
    ]
