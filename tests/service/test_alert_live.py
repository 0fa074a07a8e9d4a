"""End to end: ``pipetrace serve`` with its alert loop on, real pipeline runs that fail and then load
nothing, and a real webhook receiver that gets Alertmanager payloads for each."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.alert_receivers import webhook_receiver
from tests.conftest import ALLOW_USER_CODE, start_server
from tests.helpers import wait_until
from tests.service.pipeline_helpers import create, start, wait_for_run


def test_a_real_failing_run_fires_and_a_later_empty_load_resolves_it_and_fires_no_rows(
    tmp_path: Path,
) -> None:
    flag = tmp_path / "source-is-back"
    code = textwrap.dedent(
        f"""
        import os
        import dlt

        @dlt.resource(name="orders")
        def orders():
            if not os.path.exists({str(flag)!r}):
                raise RuntimeError("the source is down")
            yield from []

        def data_source():
            return orders
        """
    )
    env = {**ALLOW_USER_CODE, "PIPETRACE_ALERT_INTERVAL_SECONDS": "0.3", "PIPETRACE_ALERT_RETRY_SECONDS": "0"}
    with webhook_receiver() as receiver:
        server = start_server(tmp_path / "live", env=env)
        try:
            hook = [{"type": "webhook", "url": f"{receiver.url}/hook"}]
            for kind in ("run_failed", "no_rows"):
                body = {"name": kind, "kind": kind, "notify": hook}
                assert server.post("/api/alerts/rules", json=body).status_code == 201
            pipeline = create(server, "dlt_code", {"code": code})
            failed = wait_for_run(server, start(server, pipeline["id"])["run_id"])
            assert failed["status"] == "failed"
            assert wait_until(lambda: len(receiver.received) >= 1, timeout=30)
            (firing,) = receiver.received
            assert (firing["status"], firing["commonLabels"]["alertname"]) == ("firing", "run_failed")
            alert = firing["alerts"][0]
            assert alert["annotations"]["run_id"] == failed["run_id"]
            assert alert["annotations"]["trace_id"] == failed["trace_id"]
            assert "the source is down" in alert["annotations"]["summary"]
            assert alert["annotations"]["run_url"] == f"{server.url}/#/run/{failed['run_id']}"

            flag.touch()
            empty = wait_for_run(server, start(server, pipeline["id"])["run_id"])
            assert empty["status"] == "succeeded" and empty["rows_loaded"] == {}
            assert wait_until(lambda: len(receiver.received) >= 3, timeout=30)
            later = {(p["commonLabels"]["alertname"], p["status"]) for p in receiver.received[1:]}
            assert later == {("run_failed", "resolved"), ("no_rows", "firing")}
            rules = {r["name"]: r["state"] for r in server.get("/api/alerts/rules").json()["rules"]}
            assert rules == {"run_failed": "resolved", "no_rows": "firing"}
        finally:
            server.stop()
        assert len(receiver.received) == 3  # nothing more while the server ran its loop, nothing on stop


def test_a_real_slow_run_fires_while_it_runs_and_a_pipeline_that_never_runs_goes_stale(
    tmp_path: Path,
) -> None:
    flag = tmp_path / "slow-today"
    code = textwrap.dedent(
        f"""
        import os
        import time
        import dlt

        @dlt.resource(name="ticks")
        def ticks():
            if os.path.exists({str(flag)!r}):
                time.sleep(25)
            yield {{"i": 1}}

        def data_source():
            return ticks
        """
    )
    env = {**ALLOW_USER_CODE, "PIPETRACE_ALERT_INTERVAL_SECONDS": "0.3", "PIPETRACE_ALERT_RETRY_SECONDS": "0"}
    with webhook_receiver() as receiver:
        server = start_server(tmp_path / "live", env=env)
        try:
            loads = create(server, "dlt_code", {"code": code}, name="loads")
            idle = create(server, "dlt_code", {"code": code}, name="idle")
            rules = {
                "slow": {"kind": "slow_run", "pipeline_ids": [loads["id"]],
                         "params": {"factor": 2, "last_n": 5, "min_runs": 2}},
                "stale": {"kind": "freshness", "pipeline_ids": [idle["id"]],
                          "params": {"window_seconds": 15}},
            }  # fmt: skip
            for name, rule in rules.items():
                body = {"name": name, **rule, "repeat_seconds": None,
                        "notify": [{"type": "webhook", "url": f"{receiver.url}/{name}"}]}  # fmt: skip
                assert server.post("/api/alerts/rules", json=body).status_code == 201, name

            def told(name: str) -> list[tuple[str, str]]:
                return [
                    (payload["status"], payload["alerts"][0]["annotations"].get("run_id") or "")
                    for (path, _), payload in zip(receiver.requests, receiver.received, strict=False)
                    if path == f"/{name}"
                ]

            for _ in range(2):
                assert wait_for_run(server, start(server, loads["id"])["run_id"])["status"] == "succeeded"
            flag.touch()
            slow_id = start(server, loads["id"])["run_id"]
            # Told while the run is still going: over twice the median of the two before it.
            assert wait_until(lambda: bool(told("slow")), timeout=60)
            assert told("slow") == [("firing", slow_id)]
            assert wait_for_run(server, slow_id)["status"] == "succeeded"
            flag.unlink()
            assert wait_for_run(server, start(server, loads["id"])["run_id"])["status"] == "succeeded"
            assert wait_until(lambda: len(told("slow")) >= 2, timeout=30)
            assert [status for status, _ in told("slow")] == ["firing", "resolved"]

            # Never run since it was defined, 15 s ago and more: stale, until a run succeeds.
            assert wait_until(lambda: bool(told("stale")), timeout=30)
            assert [status for status, _ in told("stale")] == ["firing"]
            assert wait_for_run(server, start(server, idle["id"])["run_id"])["status"] == "succeeded"
            assert wait_until(lambda: len(told("stale")) >= 2, timeout=30)
            assert [status for status, _ in told("stale")][:2] == ["firing", "resolved"]
        finally:
            server.stop()
