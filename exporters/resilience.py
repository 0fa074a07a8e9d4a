"""Delivery that loses nothing: retry with backoff and jitter, a circuit breaker, and a spool.

Written once for any exporter and any signal. The OTel batch processors ignore an exporter's result
and never retry, so this has to live in the exporter itself. It also runs in the processor's only
export thread, whose queue overflows (silently, for the exporter) while an export blocks: so a batch is
retried only while the sink was healthy, and for at most ``export_timeout_seconds``; once a batch
has failed, the next ones get one attempt each until one succeeds, and none once the breaker opens.

A batch is *accepted* once it is either delivered or durably spooled; spooled batches are replayed
(oldest first) by a background thread and removed only after they are delivered, so the store's
delivery keys make a replay idempotent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

from tenacity import (
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from exporters.breaker import BreakerState, CircuitBreaker
from exporters.counters import ExportCounters
from exporters.settings import ExporterSettings
from exporters.spool import Spool

_logger = logging.getLogger(__name__)

T = TypeVar("T")


class Delivery(Protocol[T]):
    """One signal's way to a sink: send a batch, and encode / decode it for the spool."""

    def send(self, batch: Sequence[T]) -> bool: ...

    def encode(self, batch: Sequence[T]) -> bytes: ...

    def decode(self, payload: bytes) -> Sequence[T]: ...


class ResilientDelivery(Generic[T]):
    """Retry, then breaker, then spool, around one :class:`Delivery`; replays the spool in the background."""

    def __init__(
        self, name: str, delivery: Delivery[T], settings: ExporterSettings, counters: ExportCounters
    ) -> None:
        self.name = name
        self.delivery = delivery
        self.settings = settings
        self.counters = counters
        self.breaker = CircuitBreaker(settings.circuit_breaker_threshold, settings.circuit_breaker_timeout)
        self.spool = (
            Spool(settings.fallback_directory / name, settings.fallback_max_files)
            if settings.enable_fault_tolerance and settings.enable_fallback_storage
            else None
        )
        delay = settings.retry_delay_seconds
        self._retrying = Retrying(
            stop=stop_after_attempt(settings.max_retry_attempts + 1)
            | stop_before_delay(settings.export_timeout_seconds),
            # Exponential backoff with full jitter, capped at 30 s like the OTel Collector's.
            wait=wait_random_exponential(multiplier=delay, max=max(delay, 30.0)) if delay else lambda _: 0.0,
            retry=retry_if_result(lambda delivered: delivered is not True)
            | retry_if_exception_type(Exception),
            before_sleep=lambda state: self.counters.add("retried", 1),
            retry_error_callback=lambda state: False,
        )
        self.last_error: str | None = None
        # Whether the last attempt to deliver (a new batch or a spooled one) failed, and why the last
        # batch could not be spooled: what /readyz reports until a delivery or a spool write succeeds.
        self.failing = False
        self.spool_error: str | None = None
        self._replay_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._replayer: threading.Thread | None = None
        if self.spool is not None:
            self._replayer = threading.Thread(
                target=self._replay_loop, name=f"pipetrace-replay-{name}", daemon=True
            )
            self._replayer.start()

    def deliver(self, batch: Sequence[T]) -> bool:
        """Deliver or durably spool ``batch``; False only when it had to be dropped."""
        if not batch:
            return True
        if not self.settings.enable_fault_tolerance:
            if self._send_once(batch):
                return True
            self.counters.add("failed", len(batch))
            return False
        if self.breaker.allow():
            # A sink that failed the last batch is retried by the replayer, not here: the export thread
            # moves on to spooling at once rather than holding the processor's queue.
            failing = self.breaker.failures > 0
            if self._send_once(batch) if failing else self._retrying(self._send_once, batch):
                self._succeeded()
                if self.spool is not None and self.counters.get("spooled") > self.counters.get("replayed"):
                    self._wake.set()
                return True
            self.breaker.record_failure()
            self.failing = True
            self.counters.add("failed", len(batch))
            _logger.warning(
                "%s: could not deliver %d records (%s); breaker %s",
                self.name, len(batch), self.last_error or "the sink refused them", self.breaker.state.value,
            )  # fmt: skip
        return self._spool_batch(batch)

    def _send_once(self, batch: Sequence[T]) -> bool:
        try:
            return self.delivery.send(batch)
        except Exception as exc:
            # One warning per batch (in deliver) says what happened; each attempt's trace is for DEBUG.
            self.last_error = f"{type(exc).__name__}: {exc}"
            _logger.debug("%s: delivery attempt failed", self.name, exc_info=True)
            return False

    def _spool_batch(self, batch: Sequence[T]) -> bool:
        if self.spool is None:
            self.counters.add("dropped", len(batch))
            _logger.error("%s: dropped %d records (fallback storage is off)", self.name, len(batch))
            return False
        try:
            stored = self.spool.put(self.delivery.encode(batch), len(batch))
        except OSError as exc:
            # Its own cause (a full or read-only disk), not "spool full": the file limit is not reached.
            self.spool_error = f"cannot write to the spool {self.spool.directory}: {exc}"
            self.counters.add("dropped", len(batch))
            _logger.error("%s: %s; dropped %d new records", self.name, self.spool_error, len(batch))
            return False
        if not stored:
            self.spool_error = None
            self.counters.add("dropped", len(batch))
            _logger.error(
                "%s: spool full (%d files); dropped %d new records, kept what was spooled",
                self.name, self.spool.max_files, len(batch),
            )  # fmt: skip
            return False
        self.spool_error = None
        self.counters.add("spooled", len(batch))
        return True

    def _succeeded(self) -> None:
        self.breaker.record_success()
        self.last_error = None
        self.failing = False
        self.spool_error = None  # records go through again: the spool is not needed now

    def replay(self, *, trial: bool = False) -> int:
        """Deliver spooled batches, oldest first, until one fails; return how many records went.

        ``trial`` tries the first batch even while the breaker is open: the last chance of a process
        that is exiting, which would otherwise leave its spool for the next one to find.
        """
        if self.spool is None:
            return 0
        delivered = 0
        with self._replay_lock:
            for spooled in self.spool.pending():
                try:
                    batch = self.delivery.decode(spooled.path.read_bytes())
                except FileNotFoundError:
                    continue  # replayed by another process sharing the folder
                except Exception as exc:
                    self.spool.quarantine(spooled, f"{type(exc).__name__}: {exc}")
                    self.counters.add("quarantined", spooled.records)
                    continue
                if not (self.breaker.allow() or trial):
                    break
                trial = False
                if not self._send_once(batch):
                    self.breaker.record_failure()
                    self.failing = True
                    break
                self._succeeded()
                self.spool.remove(spooled)
                self.counters.add("replayed", len(batch))
                delivered += len(batch)
        if delivered:
            _logger.info("%s: replayed %d spooled records", self.name, delivered)
        return delivered

    def _replay_loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.spool is not None and self.spool.pending():
                    self.replay()
            except Exception:
                _logger.exception("%s: replay failed; will try again", self.name)
            self._wake.wait(self.settings.replay_interval_seconds)
            self._wake.clear()

    def status(self) -> dict[str, Any]:
        return {
            "breaker": self.breaker.state.value,
            "last_error": self.last_error,
            "spool": self.spool.status() if self.spool is not None else None,
        }

    @property
    def healthy(self) -> bool:
        return self.breaker.state is BreakerState.CLOSED

    def problem(self) -> str | None:
        """Why records sent now would not be delivered, or None. While the breaker is open, or the
        last attempt failed, new records go to the spool at best (a successful delivery, new or
        replayed, clears it); when the spool is full or cannot be written, they are dropped."""
        problems = []
        if self.spool is not None and self.spool_error is not None:
            problems.append(self.spool_error)
        elif self.spool is not None and self.spool.full:
            problems.append(f"spool full ({self.spool.max_files} files): new records are refused")
        if self.breaker.state is BreakerState.OPEN:
            problems.append(f"breaker open after failed deliveries: {self.last_error or 'refused'}")
        elif self.failing:
            problems.append(f"the last delivery failed: {self.last_error or 'refused'}")
        return f"{self.name}: {'; '.join(problems)}" if problems else None

    def shutdown(self) -> None:
        """Stop the replayer after one last replay, so a clean exit leaves as little spooled as it can."""
        self._stop.set()
        self._wake.set()
        if self._replayer is not None and self._replayer.is_alive():
            self._replayer.join(timeout=30)
        try:
            self.replay(trial=True)
        except Exception:
            _logger.exception("%s: final replay failed; the spool is kept for the next start", self.name)
        if self.spool is not None and self.spool.pending():
            status = self.spool.status()
            _logger.warning(
                "%s: %d records stay spooled in %s (%s); they are delivered by the next replay",
                self.name, status["records"], self.spool.directory, self.last_error or "the sink was away",
            )  # fmt: skip
        dropped = self.counters.get("dropped")
        if dropped:
            _logger.error("%s: %d records were dropped by this process (see above)", self.name, dropped)
