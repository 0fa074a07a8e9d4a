"""The log condition's error-rate form, end to end: records sent by the official OTel SDK's OTLP/HTTP
log exporter to a running ``pipetrace serve``, its alert loop on, and a real webhook receiver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.alert_receivers import WebhookReceiver, webhook_receiver
from tests.conftest import start_server
from tests.helpers import wait_until
from tests.service.alert_helpers import send_logs


def rate_rule(name: str, pipeline_ids: list[str], receiver: WebhookReceiver, **params: Any) -> dict[str, Any]:
    return {
        "name": name, "kind": "log_condition", "pipeline_ids": pipeline_ids, "repeat_seconds": None,
        "notify": [{"type": "webhook", "url": f"{receiver.url}/hook/{name}"}],
        "params": {"window_seconds": 3600, "service_name": "client-app", "error_rate_percent": 20, **params},
    }  # fmt: skip


def alerts_of(receiver: WebhookReceiver, rule: str) -> list[tuple[str, str, str]]:
    """(status, pipeline, value) of each alert the receiver got for a rule, in order."""
    return [
        (alert["status"], alert["labels"]["pipeline_id"], alert["annotations"]["value"])
        for payload in receiver.received
        if payload["commonLabels"]["alertname"] == rule
        for alert in payload["alerts"]
    ]


def test_a_share_of_errors_over_the_percentage_fires_and_a_few_records_do_not(tmp_path: Path) -> None:
    env = {"PIPETRACE_ALERT_INTERVAL_SECONDS": "0.3", "PIPETRACE_ALERT_RETRY_SECONDS": "0"}
    with webhook_receiver() as receiver:
        server = start_server(tmp_path / "live", env=env)
        try:
            rate = server.post(
                "/api/alerts/rules", json=rate_rule("rate", ["shop", "tiny"], receiver, min_records=5)
            )
            assert rate.status_code == 201, rate.text
            single = server.post(
                "/api/alerts/rules", json=rate_rule("single", ["tiny"], receiver, min_records=1)
            )
            assert single.status_code == 201, single.text
            # Another service's records in the same pipeline are not among those weighed: counted, they
            # would bring shop's share to 3 of 20, under 20 %.
            send_logs(server, "other-app", "shop", errors=0, infos=10)
            send_logs(server, "client-app", "shop", errors=3, infos=7)
            send_logs(server, "client-app", "tiny", errors=1, infos=0)
            assert wait_until(lambda: len(alerts_of(receiver, "rate")) >= 1 and alerts_of(receiver, "single"))
            # One error in one record is 100 %, but under the 5 records the first rule asks for.
            assert alerts_of(receiver, "rate") == [("firing", "shop", "30.0")]
            assert alerts_of(receiver, "single") == [("firing", "tiny", "100.0")]
            summary = next(p for p in receiver.received if p["commonLabels"]["alertname"] == "rate")
            assert "3 of 10 matching records" in summary["alerts"][0]["annotations"]["summary"]

            send_logs(server, "client-app", "shop", errors=0, infos=10)  # 3 of 20: 15 %
            assert wait_until(lambda: len(alerts_of(receiver, "rate")) >= 2)
            assert alerts_of(receiver, "rate") == [("firing", "shop", "30.0"), ("resolved", "shop", "30.0")]
        finally:
            server.stop()
