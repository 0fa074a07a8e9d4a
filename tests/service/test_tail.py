"""The live tail's stream (``service.tail``): new records once each, oldest first, an overflow said out
loud, a bounded life, and its slot given back however it ends."""

from __future__ import annotations

from typing import Any

import orjson

from exporters.store.queries import LogFilter, Page
from service import tail
from service.params import format_time

BASE = 1_790_000_000 * 10**9


def _record(i: int, ns: int) -> dict[str, Any]:
    return {"id": format(i, "016x"), "sort_timestamp": format_time(ns)}


class Store:
    """Records by time; answers as ``LogQueries.pipeline_logs`` does: newest first, from ``since_ns``."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.times: dict[str, int] = {}

    def add(self, i: int, ns: int) -> None:
        self.records.append(_record(i, ns))
        self.times[format(i, "016x")] = ns

    def newest(self, filters: LogFilter, limit: int) -> Page:
        since = filters.since_ns or 0
        found = sorted((r for r in self.records if self.times[r["id"]] >= since),
                       key=lambda r: (self.times[r["id"]], r["id"]), reverse=True)  # fmt: skip
        return Page(found[:limit], None)


def _events(chunks: list[bytes]) -> list[tuple[str, Any]]:
    out = []
    for chunk in chunks:
        if chunk.startswith(b"event: "):
            head, data = chunk.strip().split(b"\n", 1)
            out.append((head[7:].decode(), orjson.loads(data[6:])))
    return out


def test_new_records_are_sent_once_each_oldest_first_and_the_stream_ends_with_where_it_stopped() -> None:
    store = Store()
    store.add(1, BASE)  # already shown by the page: at the time the tail starts from, and listed
    now = [0.0]  # time passes only while the stream sleeps
    released: list[bool] = []

    def sleep(seconds: float) -> None:
        step = now[0]
        now[0] += seconds
        if step == 0:
            store.add(2, BASE)  # the same time as the one shown: still new
            store.add(3, BASE + 5)
        if step == 1:
            store.add(4, BASE + 9)

    events = _events(list(tail.stream(store.newest, LogFilter(), BASE, lambda: released.append(True),
                                      lifetime_s=3, clock=lambda: now[0], sleep=sleep)))  # fmt: skip
    records = [[r["id"][-1] for r in data] for name, data in events if name == "records"]
    assert records == [["1"], ["2", "3"], ["4"]]
    assert events[-1] == ("end", {"since": format_time(BASE + 9)})
    assert released == [True]


def test_more_new_records_than_a_batch_are_cut_to_the_newest_and_the_cut_is_said() -> None:
    store = Store()
    for i in range(tail.BATCH + 7):
        store.add(i, BASE + i)
    stream = tail.stream(store.newest, LogFilter(), BASE, lambda: None, lifetime_s=0, sleep=lambda _: None)
    events = _events(list(stream))
    assert events[0][0] == "overflow" and str(tail.BATCH) in events[0][1]["message"]
    sent = events[1][1]
    assert len(sent) == tail.BATCH and sent[-1]["id"] == format(tail.BATCH + 6, "016x")


def test_a_client_going_away_gives_its_slot_back() -> None:
    slots = tail.tail_slots(8)
    assert slots.acquire(blocking=False)
    stream = tail.stream(Store().newest, LogFilter(), BASE, slots.release, sleep=lambda _: None)
    next(stream)
    stream.close()  # what the server does when the connection is gone
    assert slots.acquire(blocking=False) and slots.acquire(blocking=False)  # both slots free again
