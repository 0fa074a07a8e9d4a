"""A trigram index over hour blocks, so that search reads only the hours that can hold a match.

Search is a case-insensitive substring match over a record's body and attribute values. For every
hour of record time (a *block*) the table ``search_grams`` holds each three-letter sequence (a
*gram*) found inside a run of letters a-z in that hour's lowercased text. A needle can match in a
block only if every gram of its own letter runs is in that block; so a needle with a gram found
nowhere is answered without reading a single log row, and a rare one reads only its hours.

Why letters only: numbers, ids and hashes make almost every record's text unique, and indexing them
would cost an index row per record. Runs of letters repeat (log lines are templates), so a batch of
8192 records yields a few hundred new (block, gram) pairs. A needle's digits and other characters
simply give no grams: the index then narrows less, it never hides a match. This is sound for any
text: a needle matching inside a body contains its letter runs inside the body's letter runs (the
middle ones whole, the outer ones as parts), so their grams are there too.

Why hand-written rather than DuckDB's ``fts`` extension: that extension indexes whole words for
ranked retrieval, is rebuilt in full rather than kept up to date on insert, and cannot answer a
substring; SQLite's trigram FTS5 (the benchmark's peer) is the model here, kept per hour so that
retention can drop whole hours.

The table is the index; this process also keeps it in memory (gram -> bit set of blocks), loaded on
first use and kept current by every insert, because one gram lookup in DuckDB costs more than the
whole answer for a needle found nowhere.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

BLOCK_NS = 3_600 * 1_000_000_000
GRAM_LENGTH = 3
_LETTER_RUNS = re.compile("[a-z]+")
_PIECE = 64
_STEP = _PIECE - GRAM_LENGTH + 1


def grams_sql(source: str) -> str:
    """Distinct (block, gram) pairs of ``source``, a relation with ``timestamp``, ``body`` and
    ``attributes`` (a JSON object per row). Text is split at spaces before lowercasing and splitting
    at every non-letter: the cheap split first makes the expensive one run on distinct words only."""
    return f"""
    WITH words AS (
        SELECT DISTINCT block, unnest(string_split(text, ' ')) AS word FROM (
            SELECT epoch_ns(timestamp) // {BLOCK_NS} AS block,
                   coalesce(body, '') || ' '
                   || coalesce(array_to_string(json_extract_string(attributes, '$.*'), ' '), '') AS text
            FROM {source}
        )
    ), runs AS (
        SELECT DISTINCT block, unnest(string_split_regex(lower(word), '[^a-z]+')) AS run FROM words
        WHERE length(word) >= {GRAM_LENGTH}
    ), pieces AS (
        -- substr() counts characters from the start, so the grams of a long run are taken from
        -- overlapping pieces of {_PIECE} letters: linear in the run's length, not quadratic (a 100,000-letter
        -- value took 24 s). Piece k starts at letter {_STEP}k+1; together they hold every gram once or more.
        SELECT DISTINCT block, unnest(list_transform(
            range(0, length(run) - {GRAM_LENGTH - 1}, {_STEP}), lambda s: substr(run, s + 1, {_PIECE})
        )) AS piece
        FROM runs WHERE length(run) >= {GRAM_LENGTH}
    )
    SELECT DISTINCT block, unnest(
        list_transform(range(1, length(piece) - {GRAM_LENGTH - 2}), lambda i: substr(piece, i, {GRAM_LENGTH}))
    ) AS gram
    FROM pieces WHERE length(piece) >= {GRAM_LENGTH}
    """


def needle_grams(needle: str) -> set[str]:
    """The grams every block holding ``needle`` (already lowercased) must have."""
    return {
        run[i : i + GRAM_LENGTH]
        for run in _LETTER_RUNS.findall(needle)
        for i in range(len(run) - GRAM_LENGTH + 1)
    }


@dataclass(frozen=True)
class TimeSpan:
    """From the start of the first candidate block to the end of the last, in epoch nanoseconds."""

    start_ns: int
    end_ns: int


class SearchIndex:
    """The in-memory copy of ``search_grams``: for each gram, a bit set of blocks (bit i = block
    ``base + i``). Not loaded until the first search; until then inserts only write the table."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocks: dict[str, int] | None = None
        self._base = 0

    @property
    def loaded(self) -> bool:
        return self._blocks is not None

    def load(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Read the table. The caller holds the store's write lock, so no insert runs meanwhile."""
        rows = cur.execute("SELECT gram, list(block) FROM search_grams GROUP BY gram").fetchall()
        base = min((min(blocks) for _, blocks in rows), default=0)
        table: dict[str, int] = {}
        for gram, blocks in rows:
            bits = 0
            for block in blocks:
                bits |= 1 << (block - base)
            table[gram] = bits
        with self._lock:
            self._blocks, self._base = table, base

    def forget_before(self, block: int) -> None:
        """Drop every block before ``block`` from the copy, as cleanup drops them from the table."""
        with self._lock:
            if self._blocks is None or block <= self._base:
                return
            shift = block - self._base
            self._blocks = {g: rest for g, bits in self._blocks.items() if (rest := bits >> shift)}
            self._base = block

    def add(self, pairs: Iterable[tuple[int, str]]) -> None:
        with self._lock:
            if self._blocks is None:
                return
            for block, gram in pairs:
                if block < self._base:  # a record older than any before it: move the origin back
                    shift = self._base - block
                    self._blocks = {g: bits << shift for g, bits in self._blocks.items()}
                    self._base = block
                self._blocks[gram] = self._blocks.get(gram, 0) | 1 << (block - self._base)

    def span(self, grams: set[str]) -> TimeSpan | None:
        """Where records holding all ``grams`` can be; None if no block has them all."""
        if not grams:
            raise ValueError("no grams: every block can hold this needle")
        with self._lock:
            assert self._blocks is not None, "load() first"
            bits = -1
            for gram in grams:
                bits &= self._blocks.get(gram, 0)
                if not bits:
                    return None
            first = (bits & -bits).bit_length() - 1
            last = bits.bit_length() - 1
            return TimeSpan((self._base + first) * BLOCK_NS, (self._base + last + 1) * BLOCK_NS)
