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

Writing it: a batch within one hour whose text is ASCII (the usual case) has its grams found here, in
a few C calls over the whole batch's text (``text_grams``), and compared with the grams the hour
already has, which this process keeps for the hours it writes (``SearchIndex.missing``); most batches
then add nothing and run no statement. Any other batch runs ``sql/insert_search_grams.sql``, which
finds the same grams in SQL (a test holds the two to the same answer).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

from exporters.store.statements import statement

BLOCK_NS = 3_600 * 1_000_000_000
GRAM_LENGTH = 3
_LETTER_RUNS = re.compile("[a-z]+")
# Bytes a-z stay, A-Z become a-z, every other byte a space.
_LOWER_LETTERS_ELSE_SPACE = bytes(
    c + 32 if 65 <= c <= 90 else c if 97 <= c <= 122 else 32 for c in range(256)
)
_PIECE = 64
_STEP = _PIECE - GRAM_LENGTH + 1
# How many hours' grams ``SearchIndex.missing`` keeps: records arrive in time order, so the current
# hour and a few before it.
_WRITTEN_HOURS = 4
_BLOCK_GRAMS = statement("block_grams")


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


def text_grams(text: str) -> set[str] | None:
    """The grams ``grams_sql`` finds in ``text`` (one block's), or None when the text is not ASCII.

    Only for ASCII do Python's and DuckDB's lower-casing agree (``lower('\u212a')`` is ``k`` in both, but
    not every letter is alike), and the index must hold what DuckDB's ``lower`` makes of the text,
    because search looks for the needle in what DuckDB makes of the text. Splitting at spaces first
    (as ``grams_sql`` does) changes nothing: spaces are not letters.
    """
    try:
        ascii_text = text.encode("ascii")
    except UnicodeEncodeError:
        return None
    # The runs of letters, lower-cased, each once: three C calls over the whole batch's text.
    runs = set(ascii_text.translate(_LOWER_LETTERS_ELSE_SPACE).split())
    return {
        run[i : i + GRAM_LENGTH].decode("ascii") for run in runs for i in range(len(run) - GRAM_LENGTH + 1)
    }


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
        # The grams the table holds for each of the last hours written (see ``missing``), and the first
        # hour retention kept: an hour before it is never remembered, as its grams are being deleted.
        self._written: dict[int, set[str]] = {}
        self._first_kept = -(2**63)

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

    def missing(self, cur: duckdb.DuckDBPyConnection, block: int, grams: set[str]) -> list[str]:
        """The ``grams`` the table lacks for ``block``, read from it once per hour (in the writer's
        transaction, ``cur``) and then remembered, with what each insert adds (``add``), for the
        last few hours written. Remembering less than the table holds costs a repeated row, never a
        missing one: what is remembered was read from the table or committed to it."""
        with self._lock:
            known = self._written.get(block)
        if known is None:
            known = {str(row[0]) for row in _BLOCK_GRAMS.run(cur, {"block": block}).fetchall()}
            with self._lock:
                if block >= self._first_kept:
                    self._written[block] = known = self._written.get(block, set()) | known
                    for old in sorted(self._written)[:-_WRITTEN_HOURS]:
                        del self._written[old]
        return sorted(grams - known)

    def forget_before(self, block: int) -> None:
        """Drop every block before ``block`` from the copy, as cleanup drops them from the table."""
        with self._lock:
            self._first_kept = max(self._first_kept, block)
            self._written = {b: grams for b, grams in self._written.items() if b >= block}
            if self._blocks is None or block <= self._base:
                return
            shift = block - self._base
            self._blocks = {g: rest for g, bits in self._blocks.items() if (rest := bits >> shift)}
            self._base = block

    def add(self, pairs: Iterable[tuple[int, str]]) -> None:
        """Pairs committed to the table."""
        with self._lock:
            for block, gram in pairs:
                written = self._written.get(block)
                if written is not None:
                    written.add(gram)
                if self._blocks is None:
                    continue
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
