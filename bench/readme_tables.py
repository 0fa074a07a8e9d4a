"""Copy the last store benchmark's tables into the README, between its markers.

    .venv/bin/python -m bench.readme_tables

So the README quotes exactly the results file of the last run.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- store-benchmark -->", "<!-- /store-benchmark -->"


def main() -> None:
    readme = (ROOT / "README.md").read_text()
    tables = (ROOT / "bench" / "results" / "store_benchmark.md").read_text().strip()
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    (ROOT / "README.md").write_text(f"{before}{START}\n{tables}\n{END}{after}")


if __name__ == "__main__":
    main()
