from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

BIN = Path(sys.executable).parent


def pipetrace_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIPETRACE_DATA_DIR": str(tmp_path / "data"), "PIPETRACE_PORT": "1"}
    return subprocess.run(
        [str(BIN / "pipetrace"), "run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_pipetrace_run_loads_and_says_where_to_look(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "a.csv").write_text("id,name\n1,one\n2,two\n3,three\n")
    result = pipetrace_run(
        tmp_path,
        "simple",
        "--param",
        f"bucket_url={folder}",
        "--param",
        "table_name=things",
        "--name",
        "local things",
    )
    assert result.returncode == 0, result.stderr
    assert "succeeded: rows loaded {'things': 3}" in result.stdout
    trace_id = result.stdout.split("trace id ")[1].split(";")[0]
    assert "dlt.progress" in result.stderr or "Extract" in result.stderr  # the progress was on screen
    with duckdb.connect(str(tmp_path / "data" / "telemetry.duckdb"), read_only=True) as con:
        stages = {
            row[0]
            for row in con.execute(
                "SELECT DISTINCT stage FROM logs WHERE trace_id = ?", [trace_id]
            ).fetchall()
        }
        spans = {
            row[0] for row in con.execute("SELECT name FROM spans WHERE trace_id = ?", [trace_id]).fetchall()
        }
    assert {"extract", "normalize", "load"} <= stages
    assert {"run", "extract", "normalize", "load"} <= spans


def test_pipetrace_run_exits_non_zero_on_failure(tmp_path: Path) -> None:
    code = tmp_path / "code.py"
    code.write_text("def data_source():\n    raise RuntimeError('no data today')\n")
    result = pipetrace_run(tmp_path, "dlt_code", "--param", f"code=@{code}")
    assert result.returncode == 1
    assert "failed" in result.stdout and "no data today" in result.stdout


def test_pipetrace_run_refuses_bad_parameters(tmp_path: Path) -> None:
    result = pipetrace_run(tmp_path, "simple", "--param", "bucket_url=/x", "--param", "table_name=a b")
    assert result.returncode == 2 and "params.table_name" in result.stderr
