"""A bounded soak: steady OTLP ingest and searches against a real ``pipetrace serve``, its RSS sampled
over time (not a test: numbers, not assertions). Issue 15 asks that RSS level off under
``PIPETRACE_MEMORY_LIMIT`` instead of growing with the data.

``--clients`` threads post OTLP/HTTP protobuf requests of ``--batch`` records each, as fast as the
service answers (every request differs: each is a new delivery, stored whole); one more thread
searches (a word found in many hours, one found nowhere) and reads the newest page, in a loop. Every
``--interval`` seconds the service's RSS (psutil) and its stored-record counter are written down;
with ``--probe`` (the default) the service runs under ``bench.memprobe``, which writes down from
inside where that memory is (DuckDB's own account and its allocator, glibc's arenas, pyarrow's pool,
the Python heap, threads). The summary gives RSS growth per minute in each third of the run.

Run:  .venv/bin/python -m bench.soak --seconds 900 --memory-limit 128MiB
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import requests
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber

RESULTS = Path(__file__).parent / "results"
WORDS = ["extract", "normalize", "load", "orders", "customers", "retry", "schema", "page", "rows", "table"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _request(rng: random.Random, client: int, sequence: int, batch: int) -> bytes:
    """One OTLP request of ``batch`` records, stamped now, with text that repeats as log lines do
    (templates with a few changing words and numbers), so the search index grows as it would."""
    now = time.time_ns()
    records = [
        LogRecord(
            time_unix_nano=now + i,
            observed_time_unix_nano=now + i,
            severity_number=SeverityNumber.SEVERITY_NUMBER_INFO,
            severity_text="INFO",
            body=AnyValue(
                string_value=f"{rng.choice(WORDS)} {rng.choice(WORDS)} batch {sequence} row {i} "
                + "".join(rng.choices(string.ascii_lowercase, k=6))
            ),
            attributes=[
                KeyValue(key="pipeline.id", value=AnyValue(string_value=f"soak-{client}")),
                KeyValue(key="row", value=AnyValue(int_value=i)),
            ],
        )
        for i in range(batch)
    ]
    resource = ResourceLogs(scope_logs=[ScopeLogs(log_records=records)])
    resource.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="soak")))
    return ExportLogsServiceRequest(resource_logs=[resource]).SerializeToString()


class Soak:
    def __init__(self, url: str, clients: int, batch: int) -> None:
        self.url = url
        self.clients = clients
        self.batch = batch
        self.stop = threading.Event()
        self.sent = 0
        self.refused = 0
        self.searches = 0
        self.search_ms: list[float] = []
        self._lock = threading.Lock()

    def post(self, client: int) -> None:
        rng = random.Random(client)
        session = requests.Session()
        sequence = 0
        while not self.stop.is_set():
            body = _request(rng, client, sequence, self.batch)
            sequence += 1
            response = session.post(
                f"{self.url}/v1/logs",
                data=body,
                headers={"Content-Type": "application/x-protobuf"},
                timeout=60,
            )
            with self._lock:
                if response.status_code == 200:
                    self.sent += self.batch
                else:
                    self.refused += self.batch
            if response.status_code != 200:
                time.sleep(float(response.headers.get("Retry-After", "1")))

    def search(self) -> None:
        session = requests.Session()
        queries = ["normalize", "kangaroo", "orders batch", None]
        n = 0
        while not self.stop.is_set():
            query = queries[n % len(queries)]
            n += 1
            started = time.perf_counter()
            if query is None:
                response = session.get(f"{self.url}/api/logs?limit=100", timeout=60)
            else:
                response = session.get(
                    f"{self.url}/api/logs/search", params={"q": query, "limit": "100"}, timeout=60
                )
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            with self._lock:
                self.searches += 1
                self.search_ms.append(elapsed)
            time.sleep(0.2)


def _slope_per_minute(points: list[tuple[float, float]]) -> float | None:
    """Least-squares MB per minute: single samples swing by 20-50 MB as DuckDB's in-memory appends
    are checkpointed, so a difference of two samples says little about a third of a run."""
    if len(points) < 3:
        return None
    seconds, values = zip(*points, strict=True)
    return round(statistics.linear_regression(seconds, values).slope * 60, 2)


def _thirds(points: list[tuple[float, float]]) -> list[float | None]:
    n = len(points)
    return [_slope_per_minute(points[n * k // 3 : n * (k + 1) // 3]) for k in range(3)]


def memory_summary(samples: list[dict[str, Any]], probe: list[dict[str, Any]]) -> dict[str, Any]:
    """RSS at start, half time, end and its peak; its slope in each third of the run; and, from the
    probe, DuckDB's own account (``duckdb_memory()``), what DuckDB's allocator holds (jemalloc's
    resident pages), the rest of the RSS (``outside_duckdb``: RSS less those pages, which
    ``PIPETRACE_MEMORY_LIMIT`` does not bound) and glibc's arenas, at the end and at most."""
    rss = [s["rss_mb"] for s in samples]
    summary: dict[str, Any] = {
        "rss_mb_start": rss[0],
        "rss_mb_half": rss[len(rss) // 2],
        "rss_mb_end": rss[-1],
        "rss_mb_max": max(rss),
        "rss_mb_mean_last_third": round(statistics.fmean(rss[len(rss) * 2 // 3 :]), 1),
        "rss_mb_per_minute_by_third": _thirds([(s["seconds"], s["rss_mb"]) for s in samples]),
    }
    probed = [
        {**p, "outside_duckdb_mb": round(p["smaps_rss_mb"] - p["je_resident_mb"], 1)}
        for p in probe
        if "duckdb_memory_mb" in p and "je_resident_mb" in p
    ]
    if probed:
        start = probed[0]["time"]
        names = ("duckdb_memory_mb", "je_resident_mb", "outside_duckdb_mb", "glibc_arena_mb")
        for name in names:
            values = [p[name] for p in probed if name in p]
            summary[f"{name}_end"] = values[-1]
            summary[f"{name}_max"] = max(values)
            summary[f"{name}_per_minute_by_third"] = _thirds(
                [(p["time"] - start, p[name]) for p in probed if name in p]
            )
        summary["duckdb_base_table_mb_end"] = probed[-1]["duckdb_memory_tags_mb"].get("BASE_TABLE")
    return summary


def resummarise(path: Path) -> None:
    """Recompute the memory figures of a saved result (after this summary changed)."""
    result = json.loads(path.read_text())
    result["summary"].update(memory_summary(result["samples"], result.get("probe", [])))
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--interval", type=float, default=5)
    parser.add_argument("--memory-limit", default="512MiB")
    parser.add_argument("--output", type=Path, help="default: bench/results/soak-<memory limit>.json")
    parser.add_argument("--probe", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--resummarise", type=Path, help="recompute the summary of a saved result, and stop")
    args = parser.parse_args()
    if args.resummarise:
        resummarise(args.resummarise)
        return
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="pipetrace-soak-") as folder:
        port = _free_port()
        log = Path(folder) / "serve.log"
        probe_file = Path(folder) / "probe.jsonl"
        env = {
            **os.environ,
            "PIPETRACE_MEMORY_LIMIT": args.memory_limit,
            "PIPETRACE_GRPC_PORT": "0",
            "FALLBACK_DIRECTORY": str(Path(folder) / "spool"),
        }
        command = [str(Path(sys.executable).parent / "pipetrace")]
        if args.probe:
            root = str(Path(__file__).resolve().parent.parent)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
            env["PIPETRACE_MEMPROBE_FILE"] = str(probe_file)
            env["PIPETRACE_MEMPROBE_INTERVAL"] = str(args.interval)
            command = [sys.executable, "-m", "bench.memprobe"]
        with log.open("w") as out:
            server = subprocess.Popen(
                [*command, "serve", "--port", str(port), "--data-dir", str(Path(folder) / "data")],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"{url}/readyz", timeout=10).status_code == 200:
                        break
                except (requests.ConnectionError, requests.Timeout):
                    pass
                time.sleep(0.2)
            process = psutil.Process(server.pid)
            soak = Soak(url, args.clients, args.batch)
            threads = [
                threading.Thread(target=soak.post, args=(c,), daemon=True) for c in range(args.clients)
            ]
            threads.append(threading.Thread(target=soak.search, daemon=True))
            started = time.monotonic()
            samples: list[dict[str, Any]] = []

            def sample() -> None:
                ready = requests.get(f"{url}/readyz", timeout=30).json()
                samples.append({
                    "seconds": round(time.monotonic() - started, 1),
                    "rss_mb": round(process.memory_info().rss / 2**20, 1),
                    "stored_records": ready["ingest"]["logs"]["exported"],
                    "ready": ready["status"],
                })  # fmt: skip
                print(json.dumps(samples[-1]), flush=True)

            sample()
            for thread in threads:
                thread.start()
            while time.monotonic() - started < args.seconds:
                time.sleep(args.interval)
                sample()
            soak.stop.set()
            for thread in threads:
                thread.join(timeout=60)
        finally:
            server.terminate()
            server.wait(timeout=60)
        errors = [line for line in log.read_text().splitlines() if re.search(r"\b(ERROR|Traceback)\b", line)]
        probe_lines = probe_file.read_text().splitlines() if probe_file.exists() else []
        probe = [json.loads(line) for line in probe_lines]
    load_after = os.getloadavg()

    last = samples[-1]
    ordered = sorted(soak.search_ms)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in load_after]},
        "settings": {"seconds": args.seconds, "clients": args.clients, "batch": args.batch,
                     "memory_limit": args.memory_limit},
        "summary": {
            "records_stored": last["stored_records"],
            "records_per_second": round(last["stored_records"] / max(last["seconds"], 1e-9)),
            "refused_records": soak.refused,
            **memory_summary(samples, probe),
            "searches": soak.searches,
            "search_ms_median": round(ordered[len(ordered) // 2], 1) if ordered else None,
            "search_ms_p95": round(ordered[int(len(ordered) * 0.95)], 1) if ordered else None,
            "service_errors": errors[:20],
        },
        "samples": samples,
        "probe": probe,
    }  # fmt: skip
    output: Path = args.output or RESULTS / f"soak-{args.memory_limit}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
