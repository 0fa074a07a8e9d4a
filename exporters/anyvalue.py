"""OTLP's typed values (``AnyValue``) in the store and in the API, without losing a type.

The store keeps attributes as JSON text. Plain JSON already tells strings, ints (no fraction), doubles
(``orjson`` always writes a fraction or an exponent), bools, arrays and maps apart, so most records
are stored that way, in one ``orjson`` call per batch. Two kinds of value plain JSON cannot hold:
bytes (which would be indistinguishable from a base64 string) and NaN / ±Infinity (written as
``null``), and an empty ``AnyValue`` is ``null`` too. A record holding any of them is stored in the
*typed* form instead: strings as bare JSON strings, every other value as its OTLP/JSON ``AnyValue``
(``{"intValue": "5"}``, ``{"bytesValue": "AAE="}``, ``{"doubleValue": "NaN"}``...). The row says which
form it is in (``typed_values``).

The API always answers in the typed form: a string is a JSON string, anything else is the OTLP/JSON
``AnyValue`` object, so a map body and a string body holding the same JSON stay distinct, and an int
and a double of the same value too.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

import orjson


def any_value(value: Any) -> dict[str, Any]:
    """A Python value (as the OTel SDK holds it) as an OTLP/JSON ``AnyValue``."""
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # OTLP/JSON writes 64-bit ints as strings
    if isinstance(value, float):
        if math.isfinite(value):
            return {"doubleValue": value}
        return {"doubleValue": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, bytes | bytearray):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": [{"key": str(k), "value": any_value(v)} for k, v in value.items()]}}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    return {}  # an empty AnyValue (None)


def typed(value: Any) -> Any:
    """A top-level value in the typed form: strings bare, anything else as its ``AnyValue``."""
    return value if isinstance(value, str) else any_value(value)


def typed_map(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: typed(value) for key, value in values.items()}


class _NotPlain(Exception):
    pass


def _refuse(value: Any) -> Any:
    raise _NotPlain


def plain_json(values: Any) -> str | None:
    """``values`` as plain JSON when that keeps every type, else None (use the typed form).

    ``null`` in the output means a NaN, an infinity or an empty value, none of which plain JSON keeps;
    the text ``null`` inside a string also sends a record the typed way, which costs time, never data.
    """
    try:
        text = orjson.dumps(values, default=_refuse)
    except (_NotPlain, TypeError):
        return None
    return None if b"null" in text else text.decode()


def encode_map(values: Mapping[str, Any]) -> tuple[str, bool]:
    """A map (attributes) as stored: its JSON text and whether it is in the typed form."""
    text = plain_json(values)
    if text is not None:
        return text, False
    return orjson.dumps(typed_map(values)).decode(), True


def plain_text(value: Any) -> str:
    """A non-string body as text, for search and for reading at a glance; never the stored value."""
    return orjson.dumps(
        value,
        default=lambda v: base64.b64encode(v).decode("ascii") if isinstance(v, bytes | bytearray) else str(v),
    ).decode()


def api_values(values: Any, typed_form: bool) -> dict[str, Any]:
    """A stored attribute map, parsed, in the API's typed form: as it is when stored typed, else each
    plain value typed (plain JSON keeps every type a value read back from it can have)."""
    if type(values) is not dict and not isinstance(values, Mapping):  # the ABC check is the slow one
        return {}
    if typed_form:
        return dict(values)
    # Strings are the same in both forms (``typed``, with its isinstance checks, for the others only:
    # this runs for every record of every page).
    return {key: value if type(value) is str else typed(value) for key, value in values.items()}


def api_map(text: str | None, typed_form: bool) -> dict[str, Any]:
    """A stored attribute map (JSON text) in the API's typed form."""
    return api_values(orjson.loads(text) if text else None, typed_form)
