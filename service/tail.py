"""The live tail: new log records streamed as Server-Sent Events (``GET /api/logs/tail``).

One request stays open and the service looks for new records once a second, instead of the page
asking for the newest page every two seconds (a request, a span and an access-log line each time).

Bounded on every side, so a tail can neither starve the service nor grow without end:

- at most ``BATCH`` records per look; when more than that arrived since the last one, the newest
  ``BATCH`` are sent and an ``overflow`` event says that older ones were left out (no silent loss: the
  page says so, and the records are in the store, paged by ``/api/logs``);
- a stream lasts ``LIFETIME_S`` seconds, then ends; the client reconnects with ``since`` set to the
  newest record it has, and drops the ids it already shows (records with the same time);
- open streams hold a request thread each, so at most a quarter of the threads (two at least) serve
  tails; one more is refused with 503 and ``Retry-After``.

Records are found by their time (``since``), so one arriving late with an older time than the newest
shown is not streamed: the tail shows what is new, the log view with live tail off shows everything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import orjson

from exporters.store.queries import LogFilter, Page
from service.params import format_time, parse_time

BATCH = 500
LIFETIME_S = 30.0
INTERVAL_S = 1.0
HEARTBEAT_S = 1.0  # a write each look: a client gone frees its thread within a second or two

_OVERFLOW = (
    f"more than {BATCH} new records at once: the older ones are not in the tail (the log view has them)"
)

# (filters, limit) -> the newest ``limit`` records passing the filters
Newest = Callable[[LogFilter, int], Page]


def tail_slots(threads: int) -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(max(2, threads // 4))


def _event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def stream(
    newest: Newest,
    filters: LogFilter,
    since_ns: int,
    release: Callable[[], None],
    *,
    lifetime_s: float = LIFETIME_S,
    interval_s: float = INTERVAL_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[bytes]:
    """Events ``records`` (a list, oldest first), ``overflow`` and ``end``; comments as heartbeats."""
    try:
        yield b"retry: 1000\n\n"  # EventSource's reconnect delay; fetch-based clients ignore it
        started = last_beat = clock()
        sent_at_newest: set[str] = set()  # ids sent whose time is the newest time sent
        while True:
            page = newest(replace(filters, since_ns=since_ns), BATCH + 1)
            fresh = [record for record in page.logs if record["id"] not in sent_at_newest]
            if len(fresh) > BATCH:
                fresh = fresh[:BATCH]
                yield _event("overflow", {"sent": BATCH, "message": _OVERFLOW})
            if fresh:
                fresh.reverse()  # oldest first: the page puts each on top in turn
                yield _event("records", fresh)
                newest_ns = max(_ns(record) for record in fresh)
                if newest_ns != since_ns:
                    since_ns, sent_at_newest = newest_ns, set()
                sent_at_newest |= {record["id"] for record in fresh if _ns(record) == newest_ns}
                last_beat = clock()
            elif clock() - last_beat >= HEARTBEAT_S:
                yield b": still here\n\n"  # a write: how a gone client is noticed
                last_beat = clock()
            if clock() - started >= lifetime_s:
                yield _event("end", {"since": format_time(since_ns)})
                return
            sleep(interval_s)
    finally:
        release()


def _ns(record: dict[str, Any]) -> int:
    return parse_time("sort_timestamp", record["sort_timestamp"])
