"""The comparison itself: it must see a changed type, a moved key and a missing record."""

from __future__ import annotations

from tests.conformance.expect import RECEIVED, compare, differences


def test_a_value_of_another_json_type_is_a_difference() -> None:
    assert differences({"n": 2.0}, {"n": 2}) == [".n: sent 2.0, returned 2"]
    assert differences([True], [1]) == ["[0]: sent True, returned 1"]
    assert differences({"intValue": "5"}, {"intValue": 5}) != []


def test_key_order_is_compared() -> None:
    assert differences({"a": 1, "b": 2}, {"b": 2, "a": 1}) == [": keys sent ['a', 'b'], returned ['b', 'a']"]


def test_records_are_paired_whatever_order_they_come_back_in() -> None:
    sent = [{"body": "one", "n": 1}, {"body": "two", "n": 2}]
    assert compare(sent, list(reversed(sent)), "log") == []
    assert compare(sent, sent[:1], "log") == ["2 log sent, 1 returned"]
    assert compare(sent, [{"body": "one", "n": 1}, {"body": "two", "n": 3}], "log") == [
        "log[1] ('two').n: sent 2, returned 3"
    ]


def test_a_record_sent_without_a_time_needs_a_time_of_receipt() -> None:
    assert differences(RECEIVED, "2026-11-29T12:00:00.123456789Z") == []
    assert differences(RECEIVED, None) != []
