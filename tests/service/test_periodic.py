"""The loop around retention and the runs' spool: a store that is away is a warning naming it, not a
traceback per job; any other failure keeps its traceback; the loop goes on either way."""

from __future__ import annotations

import logging
import threading

import pytest

from exporters.store.connection import StoreUnavailable
from service.periodic import Periodic


def _run_twice(job_errors: list[Exception]) -> threading.Event:
    done = threading.Event()
    calls = iter(job_errors)

    def job() -> None:
        error = next(calls, None)
        if error is None:
            done.set()
            return
        raise error

    worker = Periodic("retention", 0.01, job)
    worker.start()
    assert done.wait(10)
    worker.stop()
    return done


def test_a_store_that_is_away_is_one_warning_line_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="service.periodic")
    _run_twice([StoreUnavailable("telemetry store x.duckdb cannot be opened: Could not set lock")])
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert (
        "retention skipped: telemetry store x.duckdb cannot be opened: Could not set lock" in record.message
    )


def test_any_other_failure_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="service.periodic")
    _run_twice([ValueError("a bug")])
    (record,) = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
