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

The table is the index; this process also keeps it in memory, loaded on first use and kept current
by every insert, because one gram lookup in DuckDB costs more than the whole answer for a needle
found nowhere. Its memory is bounded whatever times records carry (any ``timestamp`` from 1970 to
2262 is valid OTLP):

- Hours near now (``DENSE_HOURS`` back, ``AHEAD_HOURS`` ahead of the clock when they arrive) are bit
  sets, one per gram, one bit per hour from the oldest such hour: at most ``DENSE_HOURS`` bits a gram.
- Hours outside that window (a record dated 1970 or 2262) are kept sparsely, as a set of hours per
  gram: their cost grows with the (hour, gram) pairs actually sent, never with their distance (a bit
  set reaching from 1970 to 2262 took 320 KB per gram).
- The whole copy has a budget (a share of ``PIPETRACE_MEMORY_LIMIT``). When it would pass it, at load
  or on insert, the copy is dropped and search asks the table instead (``sql/search_span.sql``): the
  same answers, a few milliseconds slower, until the process starts again.

Writing it: a batch within one hour whose text is ASCII (the usual case) has its grams found here, in
a few C calls over the whole batch's text (``text_grams``), and compared with the grams the hour
already has, which this process keeps for the hours it writes (``SearchIndex.missing``); most batches
then add nothing and run no statement. Any other batch runs ``sql/insert_search_grams.sql``, which
finds the same grams in SQL (a test holds the two to the same answer).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import duckdb

from exporters.store.statements import statement

_logger = logging.getLogger(__name__)

BLOCK_NS = 3_600 * 1_000_000_000
# The window of hours kept as bit sets: about 3.7 years back from the clock and a day ahead of it.
DENSE_HOURS = 2**15
AHEAD_HOURS = 24
END_OF_TIME_NS = 2**63 - 1  # DuckDB's infinity: no time is at or after it
# Rough bytes per gram of the copy (its str key, int object and dict slot), and per sparse (hour,
# gram) pair (a set slot and an int): enough to hold the copy under its budget, not an exact count.
_GRAM_BYTES = 120
_SPARSE_PAIR_BYTES = 72
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


# How many dropped blocks may stay in the bits, masked, before they are shifted out: a week of hours.
_REBASE_BLOCKS = 24 * 7
_NO_BLOCK = END_OF_TIME_NS // BLOCK_NS + 1


@dataclass(frozen=True)
class TimeSpan:
    """From the start of the first candidate block to the end of the last, in epoch nanoseconds."""

    start_ns: int
    end_ns: int

    @classmethod
    def of_blocks(cls, first: int, last: int) -> TimeSpan:
        """Blocks ``first`` to ``last``, whole; the end held to ``END_OF_TIME_NS`` (the hour of 2262
        holding the largest timestamp ends past a signed 64-bit count)."""
        return cls(first * BLOCK_NS, min((last + 1) * BLOCK_NS, END_OF_TIME_NS))


class SearchIndex:
    """The in-memory copy of ``search_grams``: for each gram, a bit set of the blocks near now (bit i
    = block ``base + i``) and a set of the blocks far from it. Not loaded until the first search;
    until then inserts only write the table. ``budget_bytes`` (None: no budget) bounds the copy."""

    def __init__(self, budget_bytes: int | None = None, clock: Callable[[], int] = time.time_ns) -> None:
        self.budget_bytes = budget_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._blocks: dict[str, int] | None = None
        self._base = 0
        # Blocks before ``_cut`` were deleted by cleanup but are still in the bits: a search masks
        # them. Shifting every gram's bits at each cleanup cost about 7 ms at ten weeks of hours (a
        # day's cleanup took twice as long), so they are shifted out once _REBASE_BLOCKS gather, or
        # before a block older than the cut is added.
        self._cut = 0
        self._far: dict[str, set[int]] = {}
        self._far_first = _NO_BLOCK  # the oldest far block: a cleanup before it leaves the far ones alone
        self._far_pairs = 0
        self._dropped = False
        # The grams the table holds for each of the last hours written (see ``missing``), and the first
        # hour retention kept: an hour before it is never remembered, as its grams are being deleted.
        self._written: dict[int, set[str]] = {}
        self._first_kept = -(2**63)

    @property
    def loaded(self) -> bool:
        return self._blocks is not None or self._dropped

    @property
    def in_memory(self) -> bool:
        """False once the copy was dropped for its size: search asks the table then."""
        return not self._dropped

    def _window(self) -> tuple[int, int]:
        """The first and last block kept as bits now."""
        now = self._clock() // BLOCK_NS
        return now - (DENSE_HOURS - AHEAD_HOURS) + 1, now + AHEAD_HOURS

    def load(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Read the table, unless its copy would pass the budget. The caller holds the store's write
        lock, so no insert runs meanwhile."""
        lo, hi = self._window()
        window = {"lo": lo, "hi": hi}
        size = cur.execute(
            """SELECT count(DISTINCT gram) AS grams,
                      coalesce(max(block) FILTER (WHERE block BETWEEN $lo AND $hi)
                               - min(block) FILTER (WHERE block BETWEEN $lo AND $hi) + 1, 0) AS hours,
                      count(*) FILTER (WHERE block NOT BETWEEN $lo AND $hi) AS far_pairs
               FROM search_grams""",
            window,
        ).fetchone()
        grams, hours, far_pairs = size if size is not None else (0, 0, 0)
        estimate = grams * (_GRAM_BYTES + hours // 8) + far_pairs * _SPARSE_PAIR_BYTES
        if self.budget_bytes is not None and estimate > self.budget_bytes:
            with self._lock:
                self._drop(estimate)
            return
        rows = cur.execute(
            """SELECT gram, list(block) FILTER (WHERE block BETWEEN $lo AND $hi) AS near,
                      list(block) FILTER (WHERE block NOT BETWEEN $lo AND $hi) AS far
               FROM search_grams GROUP BY gram""",
            window,
        ).fetchall()
        base = min((min(near) for _, near, _ in rows if near), default=lo)
        table: dict[str, int] = {}
        far: dict[str, set[int]] = {}
        for gram, near, far_blocks in rows:
            bits = 0
            for block in near or ():
                bits |= 1 << (block - base)
            if bits:
                table[gram] = bits
            if far_blocks:
                far[gram] = set(far_blocks)
        with self._lock:
            self._blocks, self._base, self._far, self._far_pairs = table, base, far, int(far_pairs)
            self._far_first = min((min(blocks) for blocks in far.values()), default=_NO_BLOCK)
            self._cut = base

    def _drop(self, estimate: int) -> None:
        _logger.warning(
            "the search index would take about %d MB in memory, over its budget of %d MB "
            "(PIPETRACE_MEMORY_LIMIT): search reads it from the database instead",
            estimate // 2**20, (self.budget_bytes or 0) // 2**20,
        )  # fmt: skip
        self._blocks, self._far, self._far_pairs, self._dropped = None, {}, 0, True

    def memory_estimate(self) -> int:
        """About how many bytes the copy holds."""
        with self._lock:
            return self._estimate()

    def _estimate(self) -> int:
        if self._blocks is None:
            return 0
        bits = sum(bits.bit_length() for bits in self._blocks.values())
        grams = len(self._blocks.keys() | self._far.keys())
        return grams * _GRAM_BYTES + bits // 8 + self._far_pairs * _SPARSE_PAIR_BYTES

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
            if self._blocks is None:
                return
            if block > self._cut:
                self._cut = block
                if self._cut - self._base >= _REBASE_BLOCKS:
                    self._rebase()
            if block <= self._far_first:  # no far block before the cut (far ones are mostly ahead)
                return
            far: dict[str, set[int]] = {}
            for gram, blocks in self._far.items():
                if kept := {b for b in blocks if b >= block}:
                    far[gram] = kept
            self._far, self._far_pairs = far, sum(len(blocks) for blocks in far.values())
            self._far_first = min((min(blocks) for blocks in far.values()), default=_NO_BLOCK)

    def _rebase(self) -> None:
        """Shift the blocks before the cut out of the bits (under the lock, loaded)."""
        assert self._blocks is not None
        if self._cut > self._base:
            shift = self._cut - self._base
            self._blocks = {g: rest for g, bits in self._blocks.items() if (rest := bits >> shift)}
            self._base = self._cut

    def add(self, pairs: Iterable[tuple[int, str]]) -> None:
        """Pairs committed to the table."""
        with self._lock:
            lo, hi = self._window()
            for block, gram in pairs:
                written = self._written.get(block)
                if written is not None:
                    written.add(gram)
                if self._blocks is None:
                    continue
                if not lo <= block <= hi:
                    blocks = self._far.setdefault(gram, set())
                    if block not in blocks:
                        blocks.add(block)
                        self._far_pairs += 1
                        self._far_first = min(self._far_first, block)
                    continue
                if block < self._cut:  # a block cleanup dropped comes again: its old bits go first
                    self._rebase()
                if not self._blocks:  # the first near block: the origin is its own
                    self._base = self._cut = block
                elif block < self._base:  # older than any before it (in the window): move the origin back
                    shift = self._base - block
                    self._blocks = {g: bits << shift for g, bits in self._blocks.items()}
                    self._base = self._cut = block
                self._blocks[gram] = self._blocks.get(gram, 0) | 1 << (block - self._base)
            if self.budget_bytes is not None and (estimate := self._estimate()) > self.budget_bytes:
                self._drop(estimate)

    def span(self, grams: set[str]) -> TimeSpan | None:
        """Where records holding all ``grams`` can be; None if no block has them all."""
        if not grams:
            raise ValueError("no grams: every block can hold this needle")
        with self._lock:
            assert self._blocks is not None, "load() first, and only while in_memory"
            bits = -1 << (self._cut - self._base)  # none of the blocks cleanup dropped
            for gram in grams:
                bits &= self._blocks.get(gram, 0)
                if not bits:
                    break
            far: set[int] | None = None
            for gram in sorted(grams, key=lambda g: len(self._far.get(g, ()))):
                far = set(self._far.get(gram, ())) if far is None else far & self._far.get(gram, set())
                if not far:
                    break
            candidates = []
            if bits > 0:
                first = (bits & -bits).bit_length() - 1
                candidates += [self._base + first, self._base + bits.bit_length() - 1]
            if far:
                candidates += [min(far), max(far)]
            if not candidates:
                return None
            return TimeSpan.of_blocks(min(candidates), max(candidates))
