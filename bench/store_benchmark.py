"""The store benchmark: our DuckDB store beside SQLite and chDB on the same data, in one run.

    .venv/bin/pip install -e '.[test,bench]'
    .venv/bin/python -m bench.store_benchmark            # 1M and 10M records, all engines

For each size it writes the dataset (``bench.dataset``) to Parquet and loads it into each engine, one
process per engine (``bench.engines``), then queries the engines in interleaved rounds (``measure``).
Once per run it also measures ingest: the
OTel SDK's own emit path, our exporter, a row-by-row ``executemany`` exporter, and a real
``pipetrace serve`` fed by the official OTLP/HTTP exporter and, side by side, the OTLP/gRPC one
(``--receivers-only`` measures just those two), whose peak memory is sampled while it ingests and
answers queries. Results go to ``bench/results/store_benchmark.json`` and, as the tables
the README quotes, ``bench/results/store_benchmark.md``.

Not a test: figures, not assertions. Ratios compare engines measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import duckdb

from bench.dataset import write_parquet
from bench.engines import DAY_NS, percentiles

RESULTS = Path(__file__).parent / "results"
PEERS = ("sqlite", "chdb")
QUERY_LABELS = {
    "trace": "all logs of one trace",
    "pipeline_page": "newest 100 logs of a pipeline",
    "pipeline_errors": "newest 100 errors of a pipeline",
    "search_common": "search, common word",
    "search_rare": "search, rare phrase",
    "search_absent": "search, absent word",
    "stats_all": "stats, all time",
    "stats_last_hour": "stats, last hour",
    "cleanup_one_day": "cleanup of one day",
}
POINT_LOOKUPS = ("trace", "pipeline_page")
CLEANUP_DAYS = 3


class EngineProcess:
    """One engine in a process of its own (``bench.engines.serve``), asked one command at a time."""

    def __init__(self, engine: str, parquet: Path, count: int) -> None:
        self.engine = engine
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.engines", engine, str(parquet), str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parent.parent,
        )
        self.loaded = self._read()

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        return self._read()

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            _, stderr = self._process.communicate(timeout=60)
            raise RuntimeError(f"{self.engine} failed:\n{stderr[-3000:]}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def finish(self) -> float:
        peak = float(self.ask(do="finish")["peak_rss_mb"])
        self._process.communicate(timeout=60)
        return peak

    def kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.communicate()


def measure(
    engines: list[str], parquet: Path, count: int, rounds: int, runs: int, heavy_runs: int
) -> dict[str, dict[str, Any]]:
    """Load every engine (one after the other, so each load has the machine to itself), then time the
    queries in ``rounds`` rounds, each engine in turn, starting with a different one each round, and
    cleanups likewise, one day per round. Interleaving keeps a slow spell on this shared machine from
    landing on one engine only: the ratios compare engines measured side by side."""
    from bench.dataset import START_NS

    processes = [EngineProcess(engine, parquet, count) for engine in engines]
    samples: dict[str, dict[str, list[float]]] = {engine: {} for engine in engines}
    cleanups: dict[str, list[float]] = {engine: [] for engine in engines}
    try:
        for turn in range(rounds):
            for process in processes[turn % len(processes) :] + processes[: turn % len(processes)]:
                timed = process.ask(do="time", runs=runs, heavy_runs=heavy_runs)["samples"]
                for query, seconds in timed.items():
                    samples[process.engine].setdefault(query, []).extend(seconds)
        for day in range(1, CLEANUP_DAYS + 1):
            for process in processes:
                cleanup = process.ask(do="cleanup", before_ns=START_NS + day * DAY_NS)
                cleanups[process.engine].append(cleanup["seconds"])
        peaks = {process.engine: process.finish() for process in processes}
    finally:
        for process in processes:
            process.kill()
    return {
        process.engine: {
            "engine": process.engine,
            "records": count,
            **process.loaded,
            "peak_rss_mb": peaks[process.engine],
            "queries": {
                **{query: percentiles(seconds) for query, seconds in samples[process.engine].items()},
                "cleanup_one_day": percentiles(cleanups[process.engine]),
            },
        }
        for process in processes
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


TRANSPORTS = ("http", "grpc")


def _log_exporter(transport: str, http_port: int, grpc_port: int) -> Any:
    """The official OTLP log exporter of ``transport``, pointed at the service."""
    if transport == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcExporter

        return GrpcExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True, timeout=60)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpExporter

    return HttpExporter(endpoint=f"http://127.0.0.1:{http_port}/v1/logs", timeout=60)


def otlp_receiver(records: int, transport: str = "http", batches: list[Any] | None = None) -> dict[str, Any]:
    """A real ``pipetrace serve`` (empty store, free loopback ports) fed by two official OTLP log
    exporters of ``transport`` ("http" or "grpc"), batches of 8192."""
    import psutil
    import requests

    from bench.exporter_throughput import make_batches

    batches = batches if batches is not None else make_batches(records, 8192)
    port, grpc_port = _free_port(), _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as folder:
        env = {
            **os.environ,
            "PIPETRACE_DATA_DIR": folder,
            "PIPETRACE_PORT": str(port),
            "PIPETRACE_GRPC_PORT": str(grpc_port),
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve"],
            env=env,
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    time.sleep(0.1)
            process = psutil.Process(server.pid)
            peak = [process.memory_info().rss]
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(0.02):
                    peak[0] = max(peak[0], process.memory_info().rss)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            # Two senders, as two programs would: each encodes its next batch (the official encoder is
            # Python, about as slow per record as the receiver) while the service stores the other's.
            exporters = [_log_exporter(transport, port, grpc_port) for _ in range(2)]
            failures: list[str] = []

            def send(exporter: Any, mine: list[Any]) -> None:
                for batch in mine:
                    result = exporter.export(batch)
                    if result.name != "SUCCESS":
                        failures.append(str(result))

            senders = [
                threading.Thread(target=send, args=(exporter, batches[i::2]))
                for i, exporter in enumerate(exporters)
            ]
            started = time.perf_counter()
            for thread in senders:
                thread.start()
            for thread in senders:
                thread.join()
            seconds = time.perf_counter() - started
            if failures:
                raise RuntimeError(f"OTLP export failed: {failures[:3]}")
            ingest_peak = peak[0]
            for _ in range(5):
                for path in (
                    "/api/logs/pipeline/pipe-1",
                    "/api/logs/search?q=rows",
                    "/api/logs/search?q=kangaroo",
                    "/api/logs/stats",
                ):
                    requests.get(f"{base}{path}", timeout=60).raise_for_status()
            stop.set()
            sampler.join()
            for exporter in exporters:
                exporter.shutdown()
        finally:
            server.terminate()
            server.wait(30)
    return {
        "transport": transport,
        "records": records,
        "records_per_second": records / seconds,
        "service_peak_rss_mb_ingesting": ingest_peak / 2**20,
        "service_peak_rss_mb_ingesting_and_querying": peak[0] / 2**20,
    }


def otlp_receivers(records: int, rounds: int) -> dict[str, dict[str, Any]]:
    """Both receivers side by side: the same batches, transports alternating within each round (the
    VM's speed drifts), a fresh service each time; the median round of each is reported."""
    from bench.exporter_throughput import make_batches

    batches = make_batches(records, 8192)
    runs: dict[str, list[dict[str, Any]]] = {transport: [] for transport in TRANSPORTS}
    for round_ in range(rounds):
        order = TRANSPORTS if round_ % 2 == 0 else TRANSPORTS[::-1]
        for transport in order:
            runs[transport].append(otlp_receiver(records, transport, batches))
            print(f"  {transport}: {runs[transport][-1]['records_per_second']:,.0f} records/s", flush=True)
    return {
        transport: {
            **sorted(results, key=lambda r: r["records_per_second"])[len(results) // 2],
            "rounds": [r["records_per_second"] for r in results],
        }
        for transport, results in runs.items()
    }


def exporter_paths(records: int) -> dict[str, float]:
    """Records/s of the SDK's emit path, our exporter's export() and the row-by-row exporter."""
    from bench.exporter_throughput import (
        NullExporter,
        RowByRowExporter,
        emit_through_sdk,
        make_batches,
        time_export,
    )
    from exporters.log_exporter import DuckDBLogRecordExporter
    from exporters.store import TelemetryStore

    with tempfile.TemporaryDirectory(prefix="bench-export-") as folder:
        sdk_loop, _ = emit_through_sdk(NullExporter(), records, 8192)
        batches = make_batches(records, 8192)
        ours = time_export(
            lambda: DuckDBLogRecordExporter(
                store=TelemetryStore(Path(folder) / "e.duckdb"), fallback_directory=Path(folder) / "spool"
            ),
            batches,
        )
        small = make_batches(2_000, 512)
        row_by_row = time_export(lambda: RowByRowExporter(TelemetryStore(Path(folder) / "r.duckdb")), small)
    return {
        "sdk_emit": records / sdk_loop,
        "duckdb_exporter": records / ours,
        "row_by_row_executemany": 2_000 / row_by_row,
    }


def _fmt_ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _verdicts(sizes: dict[str, dict[str, Any]], ingest: dict[str, Any]) -> list[str]:
    lines = []
    smallest, largest = min(sizes, key=int), max(sizes, key=int)
    small = sizes[smallest]
    ours = small["pipetrace"]["queries"]
    for query, label in QUERY_LABELS.items():
        peers = {p: small[p]["queries"][query]["p50_ms"] for p in PEERS if p in small}
        if not peers:
            continue
        mine = ours[query]["p50_ms"]
        if query in POINT_LOOKUPS and "sqlite" in peers:
            target, goal = 3 * peers["sqlite"], "within 3x of SQLite"
        else:
            target, goal = min(peers.values()), "at least as fast as the faster peer"
        verdict = "met" if mine <= target else "NOT met"
        lines.append(
            f"- {smallest} records, {label}: {_fmt_ms(mine)} ms; "
            f"target {goal} ({_fmt_ms(target)} ms): {verdict}"
        )
    if largest != smallest:
        factor = int(largest) / int(smallest)
        big = sizes[largest]["pipetrace"]["queries"]
        for query in (*POINT_LOOKUPS, "search_common", "search_absent", "stats_all", "stats_last_hour"):
            growth = big[query]["p50_ms"] / ours[query]["p50_ms"]
            limit = 2 if query in POINT_LOOKUPS else factor
            verdict = "met" if growth <= limit else "NOT met"
            lines.append(
                f"- {largest} vs {smallest} records, {QUERY_LABELS[query]}: {growth:.1f}x "
                f"(target <= {limit:g}x): {verdict}"
            )
    bytes_per = small["pipetrace"]["bytes_per_record"]
    lines.append(
        f"- bytes per stored record: {bytes_per:.0f} (target <= 40): "
        f"{'met' if bytes_per <= 40 else 'NOT met'}"
    )
    paths = ingest["exporter_paths"]
    ratio = paths["duckdb_exporter"] / paths["row_by_row_executemany"]
    lines.append(
        f"- exporter vs row-by-row: {ratio:.0f}x (target >= 100x): {'met' if ratio >= 100 else 'NOT met'}"
    )
    for transport, key in (("HTTP", "otlp_receiver"), ("gRPC", "otlp_receiver_grpc")):
        if key in ingest:
            otlp = ingest[key]["records_per_second"]
            lines.append(
                f"- OTLP/{transport} receiver: {otlp:,.0f} records/s (target >= 50,000): "
                f"{'met' if otlp >= 50_000 else 'NOT met'}"
            )
    return lines


def markdown(result: dict[str, Any]) -> str:
    out = [f"Command: `{result['command']}`  \nMachine: {result['machine']}\n"]
    for size, engines in result["sizes"].items():
        names = [e for e in ("pipetrace", *PEERS) if e in engines]
        out.append(
            f"\n**{int(size):,} records** (p50 / p95 in ms; ratio = peer p50 / our p50, "
            "above 1 means we are faster)\n"
        )
        header = "| query | " + " | ".join(names) + " | " + " | ".join(f"vs {p}" for p in names[1:]) + " |"
        out.append(header)
        out.append("|" + "---|" * (1 + 2 * len(names) - 1))
        for query, label in QUERY_LABELS.items():
            cells = []
            for name in names:
                q = engines[name]["queries"][query]
                cells.append(f"{_fmt_ms(q['p50_ms'])} / {_fmt_ms(q['p95_ms'])}")
            ours = engines["pipetrace"]["queries"][query]["p50_ms"]
            ratios = [f"{engines[p]['queries'][query]['p50_ms'] / ours:.2f}x" for p in names[1:]]
            out.append(f"| {label} | " + " | ".join(cells + ratios) + " |")
        out.append(
            "| bytes per record | "
            + " | ".join(f"{engines[n]['bytes_per_record']:.0f}" for n in names)
            + " |"
            + " |" * (len(names) - 1)
        )
        out.append(
            "| load, records/s | "
            + " | ".join(f"{engines[n]['load_records_per_second']:,.0f}" for n in names)
            + " |"
            + " |" * (len(names) - 1)
        )
        out.append(
            "| peak memory, MB | "
            + " | ".join(f"{engines[n]['peak_rss_mb']:.0f}" for n in names)
            + " |"
            + " |" * (len(names) - 1)
        )
    ingest = result["ingest"]
    paths, otlp = ingest["exporter_paths"], ingest["otlp_receiver"]
    out.append(f"\n**Ingest** ({ingest['records']:,} records)\n")
    out.append("| path | records/s |\n|---|---:|")
    out.append(
        "| OTel SDK emit path, exporter that does nothing (the in-process limit) | "
        f"{paths['sdk_emit']:,.0f} |"
    )
    out.append(f"| our DuckDB exporter, `export()` on batches of 8192 | {paths['duckdb_exporter']:,.0f} |")
    out.append(f"| row-by-row `executemany` exporter | {paths['row_by_row_executemany']:,.0f} |")
    out.append(
        "| `pipetrace serve` OTLP receiver, two official OTLP/HTTP exporters as clients | "
        f"{otlp['records_per_second']:,.0f} |"
    )
    if "otlp_receiver_grpc" in ingest:
        out.append(
            "| `pipetrace serve` OTLP receiver, two official OTLP/gRPC exporters as clients | "
            f"{ingest['otlp_receiver_grpc']['records_per_second']:,.0f} |"
        )
    out.append(
        f"\nService peak memory: {otlp['service_peak_rss_mb_ingesting']:.0f} MB ingesting, "
        f"{otlp['service_peak_rss_mb_ingesting_and_querying']:.0f} MB ingesting and querying.\n"
    )
    out.append("\n**Targets**\n")
    out.extend(result.get("verdicts", []))
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--engines", nargs="+", default=["pipetrace", *PEERS])
    parser.add_argument(
        "--large-engines",
        nargs="+",
        default=["pipetrace", "chdb"],
        help="engines run at sizes above 1M: SQLite's trigram FTS5 build takes most of an hour at 10M",
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds, each engine queried once per round")
    parser.add_argument("--runs", type=int, default=4, help="runs per point query and round")
    parser.add_argument("--heavy-runs", type=int, default=2, help="runs per search and stats query and round")
    parser.add_argument("--ingest-records", type=int, default=100_000)
    parser.add_argument("--receiver-rounds", type=int, default=3, help="rounds of the HTTP/gRPC receivers")
    parser.add_argument(
        "--receivers-only",
        action="store_true",
        help="measure only the OTLP/HTTP and OTLP/gRPC receivers, side by side; print, write nothing",
    )
    args = parser.parse_args()
    if args.receivers_only:
        receivers = otlp_receivers(args.ingest_records, args.receiver_rounds)
        print(json.dumps(receivers, indent=2))
        return

    sizes: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-data-") as folder:
        for size in args.sizes:
            parquet = Path(folder) / f"logs-{size}.parquet"
            write_parquet(size, str(parquet))
            engines = (
                args.engines if size <= 1_000_000 else [e for e in args.engines if e in args.large_engines]
            )
            print(f"{size:,} records: {', '.join(engines)}...", flush=True)
            sizes[str(size)] = measure(engines, parquet, size, args.rounds, args.runs, args.heavy_runs)
            parquet.unlink()
    print("ingest...", flush=True)
    ingest = {
        "records": args.ingest_records,
        "exporter_paths": exporter_paths(args.ingest_records),
    }
    receivers = otlp_receivers(args.ingest_records, args.receiver_rounds)
    ingest["otlp_receiver"], ingest["otlp_receiver_grpc"] = receivers["http"], receivers["grpc"]
    command = "python -m bench.store_benchmark"
    if args.sizes != [1_000_000, 10_000_000]:
        command += " --sizes " + " ".join(map(str, args.sizes))
    for option in ("rounds", "runs", "heavy_runs"):
        if getattr(args, option) != parser.get_default(option):
            command += f" --{option.replace('_', '-')} {getattr(args, option)}"
    result: dict[str, Any] = {
        "command": command,
        "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, CPython {platform.python_version()}, "
        f"DuckDB {duckdb.__version__}",
        "sizes": sizes,
        "ingest": ingest,
    }
    if "pipetrace" in args.engines:
        result["verdicts"] = _verdicts(sizes, ingest)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "store_benchmark.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (RESULTS / "store_benchmark.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
