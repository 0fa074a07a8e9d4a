"""What the store's late-materialization setting buys, side by side on the benchmark's data.

    .venv/bin/python -m bench.late_materialization            # 1M records, about a minute

``exporters.store.connection`` raises DuckDB's ``late_materialization_max_rows`` from its default (50)
to 1,024, so that a page of up to 1,000 rows is picked on the filter and sort columns before the other
columns are read, for the page's rows only. This loads the dataset once (``bench.dataset``, through
``TelemetryStore.insert_logs``) and times the routes' queries (``LogQueries``) with the setting at
DuckDB's default and at ours, alternating in rounds. Results: ``bench/results/late_materialization.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.dataset import COMMON_WORD, probe, write_parquet
from bench.engines import ERROR, LIMIT, Pipetrace

RESULTS = Path(__file__).parent / "results"
SETTINGS = (50, 1024)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=10, help="runs per query, setting and round")
    args = parser.parse_args()

    from exporters.store.queries import LogFilter

    with tempfile.TemporaryDirectory(prefix="bench-late-") as folder:
        parquet = Path(folder) / "logs.parquet"
        write_parquet(args.records, str(parquet))
        engine = Pipetrace(Path(folder))
        engine.load(parquet)
        p, q = probe(args.records), engine.queries
        queries: dict[str, Callable[[], Any]] = {
            "newest 100 logs of a pipeline": lambda: q.pipeline_logs(
                LogFilter(pipeline_id=p.pipeline_id), LIMIT
            ),
            "newest 100 errors of a pipeline": lambda: q.pipeline_logs(
                LogFilter(pipeline_id=p.pipeline_id, min_severity=ERROR), LIMIT
            ),
            "search, common word": lambda: q.search(COMMON_WORD, LogFilter(), LIMIT),
        }
        samples: dict[str, dict[int, list[float]]] = {name: {s: [] for s in SETTINGS} for name in queries}
        cursor = engine.store.cursor()
        for turn in range(args.rounds):
            for setting in SETTINGS if turn % 2 == 0 else SETTINGS[::-1]:
                cursor.execute(f"SET GLOBAL late_materialization_max_rows = {setting}")
                for name, query in queries.items():
                    query()  # warm
                    for _ in range(args.runs):
                        started = time.perf_counter()
                        query()
                        samples[name][setting].append(time.perf_counter() - started)

    result = {
        "command": "python -m bench.late_materialization",
        "records": args.records,
        "p50_ms": {
            name: {str(s): statistics.median(xs) * 1e3 for s, xs in by_setting.items()}
            for name, by_setting in samples.items()
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "late_materialization.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{args.records:,} records, p50 ms: DuckDB's default (50 rows) -> ours (1,024 rows)")
    for name, by_setting in result["p50_ms"].items():
        print(f"  {name}: {by_setting['50']:.2f} -> {by_setting['1024']:.2f}")


if __name__ == "__main__":
    main()
