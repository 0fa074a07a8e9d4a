"""Pipeline names in any script are accepted, kept as given, and their runs run."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from exporters.store.pipelines import Pipeline
from tests.conftest import ALLOW_USER_CODE, start_server
from tests.service.pipeline_helpers import create, start, wait_for_run

CODE = textwrap.dedent(
    """
    import dlt

    @dlt.resource(name="orders")
    def orders():
        yield [{"id": i} for i in range(7)]

    def data_source():
        return orders
    """
)


@pytest.mark.parametrize(
    ("name", "dlt_name"),
    [("übersicht", "ubersicht_0123abcd"), ("数据管道", "pipeline_0123abcd"), ("Çà va 2", "ca_va_2_0123abcd"),
     ("2024 Ärger", "p_2024_arger_0123abcd")],
)  # fmt: skip
def test_dlt_gets_an_ascii_identifier_whatever_the_name(name: str, dlt_name: str) -> None:
    assert Pipeline("0123abcd" * 2, name, "dlt_code", {}, None).dlt_name == dlt_name


def test_pipelines_named_in_other_scripts_run_and_keep_their_names(tmp_path: Path) -> None:
    server = start_server(tmp_path / "svc", env=ALLOW_USER_CODE)
    try:
        pipelines = [
            create(server, "dlt_code", {"code": CODE}, name=name) for name in ("übersicht", "数据管道")
        ]
        runs = [start(server, pipeline["id"])["run_id"] for pipeline in pipelines]
        for pipeline, run_id in zip(pipelines, runs, strict=True):
            run = wait_for_run(server, run_id)
            assert run["status"] == "succeeded", run
            assert run["rows_loaded"] == {"orders": 7}
            assert server.get(f"/api/pipelines/{pipeline['id']}").json()["name"] == pipeline["name"]
        assert {p["name"] for p in server.get("/api/pipelines").json()["pipelines"]} == {
            "übersicht",
            "数据管道",
        }
    finally:
        server.stop()
