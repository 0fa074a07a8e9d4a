"""``pipetrace`` with a memory probe inside: where the process's memory is, sampled from within.

``bench.soak --probe`` runs the service through this module instead of the ``pipetrace`` script. A
thread writes one JSON line every ``PIPETRACE_MEMPROBE_INTERVAL`` seconds (default 15) to the file
named by ``PIPETRACE_MEMPROBE_FILE``, splitting the RSS by who holds it:

- ``smaps_rollup``: anonymous memory against file mappings (a mapped database file or WAL would show
  in the second);
- glibc ``mallinfo2``: what Python, protobuf, grpc and waitress allocated through ``malloc``, in use
  and free inside its arenas (free but not returned to the system: fragmentation);
- DuckDB's jemalloc (``duckdb_je_mallctl``, DuckDB links its own): allocated, active, resident and
  retained; beside DuckDB's own account (``duckdb_memory()``);
- pyarrow's pool (mimalloc): bytes allocated;
- the Python heap (``sys.getallocatedblocks()``), threads, and the search index's estimate.

Two knobs try glibc's usual remedies for fragmentation before anything moves into the service:
``PIPETRACE_MEMPROBE_ARENA_MAX`` (``mallopt(M_ARENA_MAX)`` at start) and
``PIPETRACE_MEMPROBE_TRIM_SECONDS`` (``malloc_trim(0)`` that often). Measured at 64MiB
(``bench/results/soak-ab-64MiB-glibc-*.json``): 2 arenas and a trim every 30 s ended at 323.5 MB RSS
against 325.0 MB without in 6 minutes side by side, and at 340.7 MB against 340.0 MB in 15 minutes
(``soak-64MiB.json``); no benefit, so the service sets neither. ``PIPETRACE_MEMPROBE_DUCKDB_SET``
runs ``SET`` statements on the store's connection (DuckDB's allocator settings, for one), and
``PIPETRACE_MEMPROBE_TRACEMALLOC=<seconds>`` writes the Python allocations that grew most since that
warm-up beside each sample.

A bench tool, not part of the service: it reads private attributes of the store to find it.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pyarrow as pa

from exporters.store.connection import TelemetryStore


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
            "keepcost",
        )
    ]  # fmt: skip


_LIBC = ctypes.CDLL("libc.so.6")
_LIBC.mallinfo2.restype = _MallInfo2


def _duckdb_library() -> ctypes.CDLL | None:
    import importlib.util

    spec = importlib.util.find_spec("_duckdb")
    if spec is None or spec.origin is None:
        return None
    return ctypes.CDLL(spec.origin)


def _mb(value: float) -> float:
    return round(value / 2**20, 1)


def _jemalloc(library: ctypes.CDLL | None) -> dict[str, float]:
    if library is None or not hasattr(library, "duckdb_je_mallctl"):
        return {}
    mallctl = library.duckdb_je_mallctl
    epoch = ctypes.c_uint64(1)
    size = ctypes.c_size_t(ctypes.sizeof(epoch))
    mallctl(b"epoch", ctypes.byref(epoch), ctypes.byref(size), ctypes.byref(epoch), size)
    out: dict[str, float] = {}
    for name in ("allocated", "active", "resident", "retained", "mapped"):
        value = ctypes.c_size_t(0)
        length = ctypes.c_size_t(ctypes.sizeof(value))
        if mallctl(f"stats.{name}".encode(), ctypes.byref(value), ctypes.byref(length), None, 0) == 0:
            out[f"je_{name}_mb"] = _mb(value.value)
    return out


def _smaps() -> dict[str, float]:
    fields: dict[str, float] = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        if name in ("Rss", "Anonymous", "Pss_File", "Pss_Anon"):
            fields[f"smaps_{name.lower()}_mb"] = _mb(int(rest.split()[0]) * 1024)
    return fields


def _store_memory() -> dict[str, Any]:
    stores = list(TelemetryStore._open_stores.values())
    if not stores:
        return {}
    store = stores[0]
    connection = store._connection
    out: dict[str, Any] = {"search_index_mb": _mb(store._search_index.memory_estimate())}
    if connection is None:
        return out
    cur = connection.cursor()
    try:
        tags = cur.execute(
            "SELECT tag, memory_usage_bytes FROM duckdb_memory() WHERE memory_usage_bytes > 0"
        ).fetchall()
        out["duckdb_memory_mb"] = _mb(sum(int(b) for _, b in tags))
        out["duckdb_memory_tags_mb"] = {tag: _mb(int(b)) for tag, b in tags}
        size = cur.execute("SELECT memory_usage, wal_size FROM pragma_database_size()").fetchone()
        if size is not None:
            out["database_memory_usage"], out["wal_size"] = size
    finally:
        cur.close()
    return out


def sample() -> dict[str, Any]:
    info = _LIBC.mallinfo2()
    pool = pa.default_memory_pool()
    return {
        "time": round(time.time(), 1),
        **_smaps(),
        "glibc_arena_mb": _mb(info.arena),
        "glibc_mmap_mb": _mb(info.hblkhd),
        "glibc_in_use_mb": _mb(info.uordblks),
        "glibc_free_mb": _mb(info.fordblks),
        **_jemalloc(_LIBRARY),
        "arrow_pool_mb": _mb(pool.bytes_allocated()),
        "arrow_pool_backend": pool.backend_name,
        "python_blocks": sys.getallocatedblocks(),
        "threads": threading.active_count(),
        "os_threads": len(os.listdir("/proc/self/task")),
        **_store_memory(),
    }


_LIBRARY = _duckdb_library()


def _apply_duckdb_settings(statements: str) -> bool:
    """Run ``PIPETRACE_MEMPROBE_DUCKDB_SET`` (``;``-separated ``SET`` statements) once the store is
    open: an A/B knob for DuckDB's allocator settings."""
    stores = list(TelemetryStore._open_stores.values())
    if not stores or stores[0]._connection is None:
        return False
    cur = stores[0]._connection.cursor()
    try:
        for statement in filter(None, (s.strip() for s in statements.split(";"))):
            cur.execute(statement)
    finally:
        cur.close()
    return True


def _python_growth(baseline: tracemalloc.Snapshot | None) -> list[str]:
    """The ten sources (file and line) whose Python allocations grew most since ``baseline``."""
    if baseline is None:
        return []
    stats = tracemalloc.take_snapshot().compare_to(baseline, "lineno")
    return [str(stat) for stat in stats[:10]]


def _run(path: Path, interval: float) -> None:
    settings = os.environ.get("PIPETRACE_MEMPROBE_DUCKDB_SET", "")
    # PIPETRACE_MEMPROBE_TRACEMALLOC=<seconds>: trace Python allocations (slow), take a baseline
    # after that warm-up, then write the top growth beside each sample.
    warm_up = float(os.environ.get("PIPETRACE_MEMPROBE_TRACEMALLOC", "0"))
    started = time.monotonic()
    baseline: tracemalloc.Snapshot | None = None
    with path.open("a") as out:
        while True:
            try:
                if warm_up and baseline is None and time.monotonic() - started >= warm_up:
                    baseline = tracemalloc.take_snapshot()
                if baseline is not None:
                    out.write(json.dumps({"python_growth": _python_growth(baseline)}) + "\n")
                if settings and _apply_duckdb_settings(settings):
                    out.write(json.dumps({"applied": settings}) + "\n")
                    settings = ""
                out.write(json.dumps(sample()) + "\n")
            except Exception as error:  # a probe must not stop the service
                out.write(json.dumps({"error": repr(error)}) + "\n")
            out.flush()
            time.sleep(interval)


def _trim(interval: float) -> None:
    while True:
        time.sleep(interval)
        _LIBC.malloc_trim(0)


def main() -> None:
    from service.cli import main as pipetrace

    # A/B knobs for glibc's allocator, to measure before anything moves into the service.
    arena_max = os.environ.get("PIPETRACE_MEMPROBE_ARENA_MAX")
    if arena_max:
        _LIBC.mallopt(-8, int(arena_max))  # M_ARENA_MAX
    trim_seconds = float(os.environ.get("PIPETRACE_MEMPROBE_TRIM_SECONDS", "0"))
    if trim_seconds:
        threading.Thread(target=_trim, args=(trim_seconds,), daemon=True, name="memprobe-trim").start()
    target = os.environ.get("PIPETRACE_MEMPROBE_FILE")
    if target and os.environ.get("PIPETRACE_MEMPROBE_TRACEMALLOC"):
        tracemalloc.start()
    if target:
        interval = float(os.environ.get("PIPETRACE_MEMPROBE_INTERVAL", "15"))
        threading.Thread(target=_run, args=(Path(target), interval), daemon=True, name="memprobe").start()
    pipetrace()


if __name__ == "__main__":
    main()
