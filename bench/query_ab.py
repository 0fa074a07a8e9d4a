"""The routes' query layer of this tree beside that of another commit, on the same file, in turns.

    .venv/bin/python -m bench.query_ab --base main       # 1M records; about 5 minutes here

A change to ``LogQueries`` is measured against the commit before it, not against a number from
another hour: this VM's speed drifts by tens of percent. The dataset (``bench.dataset``) is loaded
once, through this tree's store; then each round runs a fresh process of the base commit (exported
with ``git archive``) and one of this tree, in alternating order, each timing every query class of the
store benchmark on that file (two warm-up calls, then ``--runs`` timed ones). Both trees must open the
file at the same schema version. Reported: p50 wall and CPU time per class, and this tree's over the
base's; results in ``bench/results/query_ab.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.dataset import write_parquet
from bench.engines import Pipetrace

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent

# Run in the tree under test (its own ``exporters``): argv is the database file, the record count
# and the runs per class. Prints {class: {"wall": [...], "cpu": [...]}} in seconds.
_ROUND = """
import json, sys, time
from bench.dataset import COMMON_WORD, RARE_WORD, probe
from bench.engines import ERROR, HOUR_NS, LIMIT
from exporters.store import TelemetryStore
from exporters.store.queries import LogFilter, LogQueries

path, count, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = TelemetryStore(path)
q, p = LogQueries(store), probe(count)
last_hour = LogFilter(since_ns=p.end_ns - HOUR_NS, until_ns=p.end_ns)
queries = {
    "all logs of one trace": lambda: q.correlation(p.trace_id),
    "newest 100 logs of a pipeline": lambda: q.pipeline_logs(LogFilter(pipeline_id=p.pipeline_id), LIMIT),
    "newest 100 errors of a pipeline": lambda: q.pipeline_logs(
        LogFilter(pipeline_id=p.pipeline_id, min_severity=ERROR), LIMIT
    ),
    "search, common word": lambda: q.search(COMMON_WORD, LogFilter(), LIMIT),
    "search, rare phrase": lambda: q.search(RARE_WORD, LogFilter(), LIMIT),
    "stats, all time": lambda: q.stats(LogFilter()),
    "stats, last hour": lambda: q.stats(last_hour, now_ns=p.end_ns),
}
out = {}
for name, query in queries.items():
    query(), query()
    wall, cpu = [], []
    for _ in range(runs):
        started, used = time.perf_counter(), time.process_time()
        query()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
    out[name] = {"wall": wall, "cpu": cpu}
store.close()
print(json.dumps(out))
"""


def _export(ref: str, folder: Path) -> Path:
    """The tree of ``ref`` as files in ``folder``."""
    folder.mkdir()
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


# Timings by query class, then by kind ("wall", "cpu"), in seconds.
Samples = dict[str, dict[str, list[float]]]


def _round(tree: Path, script: Path, database: Path, count: int, runs: int) -> Samples:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, str(script), str(database), str(count), str(runs)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: Samples = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", default="main", help="the commit to compare with (any git ref)")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--runs", type=int, default=8, help="timed runs per class, tree and round")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-ab-") as folder:
        work = Path(folder)
        trees = {"base": _export(args.base, work / "base"), "this": ROOT}
        parquet = work / "logs.parquet"
        write_parquet(args.records, str(parquet))
        engine = Pipetrace(work)
        engine.load(parquet)
        engine.store.close()
        script = work / "round.py"
        script.write_text(_ROUND)
        samples: dict[str, Samples] = {name: {} for name in trees}
        for turn in range(args.rounds):
            for name in list(trees) if turn % 2 == 0 else list(trees)[::-1]:
                for query, times in _round(trees[name], script, engine.path, args.records, args.runs).items():
                    kept = samples[name].setdefault(query, {"wall": [], "cpu": []})
                    kept["wall"] += times["wall"]
                    kept["cpu"] += times["cpu"]

    def p50(name: str, query: str, kind: str) -> float:
        return statistics.median(samples[name][query][kind]) * 1e3

    rows = {
        query: {
            "base_ms": p50("base", query, "wall"),
            "this_ms": p50("this", query, "wall"),
            "base_cpu_ms": p50("base", query, "cpu"),
            "this_cpu_ms": p50("this", query, "cpu"),
        }
        for query in samples["base"]
    }
    result = {
        "command": " ".join(["python -m bench.query_ab", *sys.argv[1:]]),
        "base": args.base,
        "p50": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "query_ab.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.records:,} records, p50 ms, {args.base} -> this tree (wall; CPU of the process)")
    for query, row in rows.items():
        print(
            f"  {query}: {row['base_ms']:.2f} -> {row['this_ms']:.2f}"
            f" ({row['this_ms'] / row['base_ms']:.2f}x);"
            f" CPU {row['base_cpu_ms']:.2f} -> {row['this_cpu_ms']:.2f}"
            f" ({row['this_cpu_ms'] / row['base_cpu_ms']:.2f}x)"
        )


if __name__ == "__main__":
    main()
