"""Starts the runs of pipelines that carry a schedule, when they are due.

Each scheduled pipeline has one next time, kept here in memory and recomputed from the clock when the
service starts and whenever the pipeline is created, edited or deleted. A tick (every second, see
``TICK_SECONDS``) starts the pipelines whose time has come and moves each to its next time after now.

Two rules, both in the README:

- **Never two at once.** A pipeline whose earlier run is still queued or running is not started again:
  the tick is skipped and logged at WARN, and the pipeline waits for its next time.
- **Missed times are skipped.** Times that passed while the service was down (or while a tick was
  late) are not made up: after a start the next run is the first scheduled time after now, and one
  late tick starts a run once, not once per missed time. A nightly job that was missed runs the next
  night, or on demand.

The clock is injected, so the rules are tested without waiting for a real minute.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable

from opentelemetry.trace import Tracer

from exporters.records import PIPELINE_ID
from exporters.store.pipelines import Pipeline, PipelineRepository
from service.schedule import schedule_of

_logger = logging.getLogger(__name__)

TICK_SECONDS = 1.0
Clock = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Scheduler:
    def __init__(
        self,
        repository: PipelineRepository,
        start_run: Callable[[Pipeline], object],
        clock: Clock = utc_now,
    ) -> None:
        self._repository = repository
        self._start_run = start_run
        self._clock = clock
        self._next: dict[str, datetime.datetime] = {}
        self._lock = threading.Lock()
        self._loaded = False
        self._paused_by: str | None = None  # why the last tick could not read the store

    def load(self) -> None:
        """Schedule every stored pipeline that has a schedule, from now on (missed times are skipped);
        one tracked already (created or edited since the start) keeps its time."""
        for pipeline in self._repository.all():
            with self._lock:
                tracked = pipeline.id in self._next
            if pipeline.schedule and not tracked:
                self.track(pipeline)
                _logger.info("pipeline %s runs on schedule %s; next run at %s", pipeline.name,
                             pipeline.schedule, self.next_run_at(pipeline.id))  # fmt: skip
        self._loaded = True

    def track(self, pipeline: Pipeline) -> None:
        """(Re)schedule ``pipeline`` from now, after it was created or edited; forget it if unscheduled."""
        schedule = schedule_of(pipeline.schedule)
        with self._lock:
            if schedule is None:
                self._next.pop(pipeline.id, None)
            else:
                self._next[pipeline.id] = schedule.next_after(self._clock())

    def forget(self, pipeline_id: str) -> None:
        with self._lock:
            self._next.pop(pipeline_id, None)

    def next_run_at(self, pipeline_id: str) -> datetime.datetime | None:
        with self._lock:
            return self._next.get(pipeline_id)

    def tick(self) -> list[str]:
        """Start each pipeline whose time has come; return the ids of those started.

        The schedules are read at the first tick that can read the store: one that is locked or away
        when the service starts delays them (the service starts degraded), and a store lost later
        pauses them, each said once in the log rather than at every tick."""
        try:
            if not self._loaded:
                self.load()
            started = self._start_due()
        except Exception as exc:
            if self._paused_by is None:
                _logger.warning("schedules paused: the store cannot be read (%s); they resume with it", exc)
            self._paused_by = str(exc)
            return []
        if self._paused_by is not None:
            _logger.info("schedules resumed: the store answers again")
            self._paused_by = None
        return started

    def _start_due(self) -> list[str]:
        now = self._clock()
        with self._lock:
            due = [pipeline_id for pipeline_id, at in self._next.items() if at <= now]
        started = []
        for pipeline_id in due:
            pipeline = self._repository.get(pipeline_id)
            schedule = schedule_of(pipeline.schedule) if pipeline else None
            with self._lock:
                if pipeline is None or schedule is None:
                    self._next.pop(pipeline_id, None)
                    continue
                self._next[pipeline_id] = schedule.next_after(now)
            in_flight = self._repository.active_runs(pipeline_id)
            if in_flight:
                _logger.warning(
                    "scheduled run of pipeline %s skipped: run %s is still in flight; next run at %s",
                    pipeline.name, in_flight[0], self.next_run_at(pipeline_id),
                )  # fmt: skip
                continue
            try:
                self._start_run(pipeline)
            except Exception:
                # One pipeline that cannot start (its store write failed, say) leaves the others due.
                _logger.exception("scheduled run of pipeline %s could not be started", pipeline.name)
                continue
            started.append(pipeline_id)
        return started


def traced_start(
    start: Callable[[Pipeline], dict[str, str]], tracer: Tracer, allowed: Callable[[Pipeline], str | None]
) -> Callable[[Pipeline], None]:
    """Start a scheduled run under a span of its own, as a request's run is under the request's span:
    the run's record then has a trace id, and the trace shows what started it."""

    def start_scheduled(pipeline: Pipeline) -> None:
        refusal = allowed(pipeline)
        if refusal is not None:
            _logger.warning("scheduled run of pipeline %s not started: %s", pipeline.name, refusal)
            return
        cron = str((pipeline.schedule or {}).get("cron"))
        attributes = {PIPELINE_ID: pipeline.id, "pipetrace.schedule.cron": cron}
        with tracer.start_as_current_span(f"scheduled run {pipeline.name}", attributes=attributes):
            started = start(pipeline)
        _logger.info("scheduled run %s of pipeline %s started", started["run_id"], pipeline.name)

    return start_scheduled
