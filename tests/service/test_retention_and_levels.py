from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from service.app import close_app, create_app
from service.params import NS
from service.state import state
from tests.helpers import make_record


def test_scheduled_retention_deletes_what_is_older_than_the_period(tmp_path: Path) -> None:
    app = create_app(data_dir=tmp_path, log_retention_days=1, retention_interval_seconds=0.1)
    try:
        service = state(app)
        now = time.time_ns()
        service.log_exporter.export(
            [
                make_record("two days old", timestamp=now - 2 * 86400 * NS, attributes={"pipeline.id": "r"}),
                make_record("an hour old", timestamp=now - 3600 * NS, attributes={"pipeline.id": "r"}),
            ]
        )
        client = app.test_client()
        deadline = time.monotonic() + 10
        bodies: list[str] = []
        while time.monotonic() < deadline:
            bodies = [log["body"] for log in client.get("/api/logs/pipeline/r").get_json()["logs"]]
            if bodies == ["an hour old"]:
                break
            time.sleep(0.05)
        assert bodies == ["an hour old"]
    finally:
        close_app(app)


@pytest.mark.parametrize(
    ("level", "stored"), [("INFO", ["info line", "warning line"]), ("WARN", ["warning line"])]
)
def test_log_level_decides_what_std_logging_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, level: str, stored: list[str]
) -> None:
    monkeypatch.setenv("LOG_LEVEL", level)
    app = create_app(data_dir=tmp_path)
    try:
        logger = logging.getLogger("level.test")
        logger.info("info line", extra={"pipeline.id": "lv"})
        logger.warning("warning line", extra={"pipeline.id": "lv"})
        state(app).telemetry.force_flush()
        logs = app.test_client().get("/api/logs/pipeline/lv").get_json()["logs"]
        assert sorted(log["body"] for log in logs) == stored
    finally:
        close_app(app)
        logging.getLogger().setLevel(logging.WARNING)


def test_an_unknown_log_level_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOG_LEVEL", "LOUD")
    with pytest.raises(ValueError, match="unknown log level"):
        create_app(data_dir=tmp_path)
