"""Search's ``ILIKE`` pattern matches exactly the values ``contains(lower(value), lower(text))`` does,
on text whose lower-casing changes length, needs context or differs between engines, and on needles
holding LIKE's wildcards and escape character."""

# ruff: noqa: RUF001  (letters that look like Latin ones are the point of the test)

from __future__ import annotations

import duckdb
import pytest

from exporters.store.queries import like_pattern

TEXTS = [
    "ΟΔΟΣ", "οδος", "οδοσ", "ΣΑΣ", "σας", "İstanbul", "istanbul", "ISTANBUL", "ıstanbul", "\u0130\u0307",
    "i\u0307", "KELVIN \u212a k", "Straße", "STRASSE", "ẞß", "ǅemal", "Ǆ", "ǆ", "ꭰ Ꭰ", "café", "CAFÉ",
    "cafe\u0301", "😀 Rows", "100% done_ok", "back\\slash", 'quote "', "a_b%c\\d", "ﬁle", "FILE",
    "Ω ohm \u2126", "ω", "Å \u212b", "Ⅻ ⅻ", "ǰ", "ΐ", "MIXED Rows and ΟΔΟΣ", "plain ascii rows", "", None,
]  # fmt: skip
NEEDLES = [
    "οδος", "σας", "ς", "σ", "i̇stanbul", "istanbul", "k", "straße", "ß", "ǆ", "ǳ", "ꭰ", "é", "e\u0301",
    "rows", "%", "_", "\\", '"', "100%", "a_b%c\\d", "%c\\", "ﬁ", "fi", "ω", "å", "ⅻ", "i\u0307", "i", "😀",
    "mixed rows", "x",
]  # fmt: skip


@pytest.mark.parametrize("ascii_only", [True, False], ids=["ascii-table", "unicode-table"])
def test_ilike_pattern_matches_as_contains_lower(ascii_only: bool) -> None:
    """Both tables: DuckDB takes a faster path for ILIKE on columns it knows to be ASCII."""
    con = duckdb.connect()
    texts = [t for t in TEXTS if t is None or t.isascii()] if ascii_only else TEXTS
    con.execute("CREATE TABLE t AS SELECT unnest($texts) AS s", {"texts": texts})
    compared = 0
    for text in NEEDLES + [n.upper() for n in NEEDLES]:
        (needle,) = con.execute("SELECT lower($text)", {"text": text}).fetchone() or ("",)
        (want,) = con.execute(
            "SELECT list(s ORDER BY s) FILTER (contains(lower(s), $needle)) FROM t", {"needle": needle}
        ).fetchone() or (None,)
        (got,) = con.execute(
            "SELECT list(s ORDER BY s) FILTER (s ILIKE $pattern ESCAPE '\\') FROM t",
            {"pattern": like_pattern(needle)},
        ).fetchone() or (None,)
        assert got == want, (text, needle)
        compared += want is not None
    assert compared > 20  # most needles match something: the comparison is not of empty lists
