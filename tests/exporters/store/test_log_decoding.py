"""Promoted attributes go back where they stood, by the worked-out places the decoder caches, exactly
as the plain algorithm (kept here as the reference) puts them."""

from __future__ import annotations

import itertools
from typing import Any

from exporters.records import PROMOTED_KEYS
from exporters.store.queries import _with_promoted


def _reference(
    attributes: dict[str, Any], promoted_keys: int, places: int, values: tuple[Any, ...]
) -> dict[str, Any]:
    back = sorted(
        (places >> (8 * bit) & 0xFF or len(attributes) + 1 + bit, key, values[bit])
        for bit, (key, _) in enumerate(PROMOTED_KEYS)
        if promoted_keys >> bit & 1
    )
    if back[-1][0] == len(back):
        return {key: value for _, key, value in back} | attributes
    items = list(attributes.items())
    for place, key, value in back:
        items.insert(place - 1, (key, value))
    return dict(items)


def test_every_placement_of_promoted_attributes_equals_the_reference() -> None:
    values = ("orders", "run-1", "load")
    checked = 0
    for count in range(4):
        attributes = {f"k{i}": i for i in range(count)}
        for promoted_keys in range(1, 8):
            bits = [bit for bit in range(len(PROMOTED_KEYS)) if promoted_keys >> bit & 1]
            # Each promoted key at any place among all the record's attributes, or unknown (0).
            for chosen in itertools.product(range(count + len(bits) + 1), repeat=len(bits)):
                places = sum(place << (8 * bit) for bit, place in zip(bits, chosen, strict=True))
                for _ in range(2):  # the second time from the cache
                    got = _with_promoted(dict(attributes), promoted_keys, places, values)
                    want = _reference(dict(attributes), promoted_keys, places, values)
                    assert list(got.items()) == list(want.items())
                checked += 1
    assert checked > 500
