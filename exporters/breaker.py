"""A circuit breaker: after ``threshold`` consecutive failures, stop trying for ``timeout`` seconds.

closed -> (threshold failures) -> open -> (timeout passes) -> half-open: one trial call is let through;
its success closes the breaker, its failure opens it again for another timeout. Hand-written rather
than taken from a library: the states are a dozen lines, and the libraries (pybreaker, circuitbreaker)
wrap calls in ways that do not fit an exporter that must spool, not raise, when the circuit is open.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, threshold: int, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.timeout = timeout
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False
        self._lock = threading.Lock()

    @property
    def state(self) -> BreakerState:
        with self._lock:
            if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.timeout:
                return BreakerState.HALF_OPEN
            return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures since the last success."""
        with self._lock:
            return self._failures

    def allow(self) -> bool:
        """May a call go through now? In half-open, only one trial call at a time may."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return True
            if self._state is BreakerState.OPEN:
                if self._clock() - self._opened_at < self.timeout:
                    return False
                self._state = BreakerState.HALF_OPEN
            if self._trial_running:
                return False
            self._trial_running = True
            return True

    def record_success(self) -> None:
        with self._lock:
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._state is BreakerState.HALF_OPEN or self._failures >= self.threshold:
                self._state = BreakerState.OPEN
                self._opened_at = self._clock()
            self._trial_running = False
