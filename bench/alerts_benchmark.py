"""How long one evaluation of 50 alert rules takes over a large store (issue 19: under 1 s at 10M).

    .venv/bin/python -m bench.alerts_benchmark                    # 10M records
    .venv/bin/python -m bench.alerts_benchmark --records 1000000  # about a minute
    .venv/bin/python -m bench.alerts_benchmark --keep /tmp/alerts-10m  # keep the store, reuse it next time

Loads ``bench.dataset`` through the store's own ingest (``bench.engines.Pipetrace``), adds the 20
pipelines with one run per 100 records (a run a minute: 100,000 runs at 10M; one in 20 failed, one in
50 loaded nothing), then creates 50 rules of every kind (``service.alerts.rules`` validates them) and
times ``Evaluator.evaluate_once`` with the clock at the dataset's end: the first evaluation (every
subject new, its state written) and then the steady ones, median of ``--rounds``. Nothing is notified
(the rules have no targets). Results: ``bench/results/alerts_benchmark.json``, or ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.dataset import PIPELINES, RUN_SIZE, probe, write_parquet
from bench.engines import Pipetrace

RESULTS = Path(__file__).parent / "results"

_RUNS_SQL = f"""
INSERT INTO runs (id, pipeline_id, status, trace_id, queued_at, started_at, finished_at, exit_code,
                  rows_loaded, error)
SELECT 'run-' || r, 'pipe-' || lpad((hash(r, 'pipe') % {PIPELINES})::VARCHAR, 2, '0'),
       CASE WHEN r % 20 = 7 THEN 'failed' ELSE 'succeeded' END, md5('run' || r::VARCHAR),
       make_timestamp_ns($start_ns + r * $run_ns), make_timestamp_ns($start_ns + r * $run_ns),
       make_timestamp_ns($start_ns + r * $run_ns + (20 + hash(r, 'took') % 40)::BIGINT * 1000000000),
       CASE WHEN r % 20 = 7 THEN 1 ELSE 0 END,
       CASE WHEN r % 50 = 3 THEN '{{}}' ELSE '{{"orders": ' || (hash(r, 'rows') % 1000)::VARCHAR || '}}' END,
       CASE WHEN r % 20 = 7 THEN '{{"type": "RuntimeError", "message": "connection reset"}}' END
FROM range($runs) AS t(r)
"""


def _rules() -> list[dict[str, Any]]:
    """50 rules: every kind, over all pipelines and over a few, with windows from an hour to a day."""
    some = [f"pipe-{i:02d}" for i in (1, 4, 7)]
    rules: list[dict[str, Any]] = []
    for i in range(10):
        rules.append({"kind": "run_failed", "pipeline_ids": [] if i % 2 else some})
    for i in range(5):
        rules.append({"kind": "no_rows", "params": {"table": "orders", "min_rows": 1 + i * 100}})
    for i in range(10):
        rules.append({"kind": "freshness", "params": {"window_seconds": 3600 * (1 + i)},
                      "pipeline_ids": [] if i % 2 else some})  # fmt: skip
    for i in range(5):
        rules.append({"kind": "slow_run", "params": {"factor": 1.5 + i, "last_n": 10 + i * 10}})
    levels = ["WARN", "ERROR", "FATAL", None]
    texts = [None, "connection reset", "crashed", "rate limited", "kangaroo"]
    for i in range(15):
        params = {"window_seconds": [3600, 6 * 3600, 86_400][i % 3], "threshold": i * 3,
                  "level": levels[i % 4], "text": texts[i % 5]}  # fmt: skip
        if i % 4 == 1:
            params["service_name"] = "pipeline-run"
        rules.append({"kind": "log_condition", "params": params, "pipeline_ids": some if i % 3 == 0 else []})
    for i in range(5):
        rules.append({"kind": "ingest_health", "params": {"spool_records_above": 100 * i}})
    return [{"name": f"{rule['kind']} {i}", **rule} for i, rule in enumerate(rules)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="Build the store in this folder and keep it; a later run with the same --records reuses it "
        "(the rules and their state start afresh).",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "alerts_benchmark.json")
    args = parser.parse_args()

    from bench.dataset import NS_PER_RECORD, START_NS
    from exporters.store.alert_queries import AlertQueries
    from exporters.store.alerts import AlertStore
    from service.alerts.evaluator import Evaluator
    from service.alerts.rules import parse_rule

    with contextlib.ExitStack() as stack:
        if args.keep is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-alerts-"))
        else:
            args.keep.mkdir(parents=True, exist_ok=True)
            folder = str(args.keep)
        loaded = Path(folder) / f"loaded-{args.records}"
        runs = args.records // RUN_SIZE
        started = time.perf_counter()
        if loaded.exists():
            engine = Pipetrace(Path(folder))
            with engine.store.writer() as cur:
                for table in ("alert_rules", "alert_instances", "alert_history", "alert_deliveries"):
                    cur.execute(f"DELETE FROM {table}")
        else:
            parquet = Path(folder) / "logs.parquet"
            write_parquet(args.records, str(parquet))
            engine = Pipetrace(Path(folder))
            engine.load(parquet)
            parquet.unlink()
            with engine.store.writer() as cur:
                cur.execute(
                    "INSERT INTO pipelines (id, name, template, params, created_at) "
                    "SELECT 'pipe-' || lpad(i::VARCHAR, 2, '0'), 'pipeline ' || i, "
                    "'dlt_code', '{}', make_timestamp_ns($start_ns) FROM range($n) AS t(i)",
                    {"start_ns": START_NS, "n": PIPELINES},
                )
                cur.execute(
                    _RUNS_SQL, {"start_ns": START_NS, "run_ns": RUN_SIZE * NS_PER_RECORD, "runs": runs}
                )
                cur.execute("CHECKPOINT")
            loaded.touch()
        loaded_seconds = time.perf_counter() - started

        alerts = AlertStore(engine.store, Path(folder) / "secrets")
        end = datetime.datetime.fromtimestamp(probe(args.records).end_ns / 1e9, datetime.UTC)
        for rule in _rules():
            definition, secrets = parse_rule(rule)
            alerts.create_rule(definition, secrets, end)
        closed = {"breaker": "closed", "dropped": 0, "quarantined": 0, "spool": {"records": 0}}
        counters = {"logs": closed, "spans": closed}
        clock = [end]
        evaluator = Evaluator(
            alerts, AlertQueries(engine.store), lambda: counters, lambda: None, lambda: clock[0]
        )
        first_started = time.perf_counter()
        evaluator.evaluate_once()
        first = time.perf_counter() - first_started
        steady: list[float] = []
        for _ in range(args.rounds):
            clock[0] += datetime.timedelta(seconds=60)
            round_started = time.perf_counter()
            evaluator.evaluate_once()
            steady.append(time.perf_counter() - round_started)
        # Each kind's queries alone (no state kept), to see where an evaluation's time goes.
        query_seconds: dict[str, float] = {}
        slow = [r.definition["params"]["last_n"] + 1 for r in alerts.rules() if r.kind == "slow_run"]
        conditions, shared = evaluator._conditions, evaluator.queries.for_one_evaluation(max(slow, default=0))
        for rule in alerts.rules():
            query_started = time.perf_counter()
            conditions[rule.kind](shared, {**rule.definition, "id": rule.id}, clock[0])
            query_seconds[rule.kind] = query_seconds.get(rule.kind, 0) + time.perf_counter() - query_started
        states: dict[str, int] = {}
        for subjects in alerts.instances().values():
            for instance in subjects.values():
                states[instance.state] = states.get(instance.state, 0) + 1
        errors = [rule.evaluation_error for rule in alerts.rules() if rule.evaluation_error]
        engine.store.close()

    result = {
        "records": args.records,
        "runs": runs,
        "rules": len(_rules()),
        "load_seconds": round(loaded_seconds, 1),
        "first_evaluation_seconds": round(first, 3),
        "steady_evaluation_seconds_median": round(statistics.median(steady), 3),
        "steady_evaluation_seconds": [round(s, 3) for s in steady],
        "query_seconds_by_kind": {kind: round(seconds, 3) for kind, seconds in query_seconds.items()},
        "subject_states": states,
        # This machine is shared: the load average says how much else ran meanwhile.
        "load_average_1m": round(os.getloadavg()[0], 1),
        "evaluation_errors": errors,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
