"""Credentials inside ordinary pipeline parameters: kept out of the stored parameters and the script.

A template's declared secrets (``x-secret``, see ``catalog.py``) are one way in; a credential can also
sit in any other field: a ``base_url`` with ``user:pass@``, a resource's ``params.api_key``, a bucket URL
with a token in its query. Every leaf of the parameters is checked with the redaction policy: one
under a secret key (its last segment is a secret word, as for attributes) or whose text holds a secret
(URL userinfo, ``api_key=`` and the rest of ``instrumentation/secret_patterns.py``) becomes a secret:

- the stored (listed) parameters keep the redacted text (``https://user:***@host``, ``***``), so a
  definition still reads as what it is;
- the run gets the value as an environment variable named after the leaf's path
  (``PIPETRACE_PARAM_<hash>``), stored in the service's 0600 secret file like the declared secrets;
- the rendered script reads it with ``sources.secret(name)`` where the literal would have been.

At run time the stored (redacted) parameters are rendered again: a leaf whose variable is among the
pipeline's secrets reads it from the environment instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import orjson

from instrumentation.secret_patterns import MASK, is_secret_key, redact_text

ENV_PREFIX = "PIPETRACE_PARAM_"


@dataclass(frozen=True)
class SecretRef:
    """A parameter the script reads from the environment variable ``env`` (see ``render.python_literal``)."""

    env: str


@dataclass
class Split:
    public: Any  # what may be stored and listed
    script: Any  # what the script is rendered from: secrets as SecretRef
    env: dict[str, str] = field(default_factory=dict)  # variable -> secret value, for the run


def env_name(path: tuple[str | int, ...]) -> str:
    """The variable a leaf's secret travels in: one per path, whatever characters its keys hold."""
    return ENV_PREFIX + hashlib.blake2s(orjson.dumps(list(path)), digest_size=8).hexdigest().upper()


def split(params: dict[str, Any], known: Collection[str] = ()) -> Split:
    """``params`` split into public and script forms; ``known`` names the variables a run already has."""
    out = Split({}, {})
    for key, value in params.items():
        out.public[key], out.script[key] = _leaf_or_node(out, (key,), key, value, frozenset(known))
    return out


def _leaf_or_node(
    out: Split, path: tuple[str | int, ...], key: str, value: Any, known: frozenset[str]
) -> Any:
    if isinstance(value, dict):
        public, script = {}, {}
        for name, item in value.items():
            public[name], script[name] = _leaf_or_node(out, (*path, name), name, item, known)
        return public, script
    if isinstance(value, list):
        pairs = [_leaf_or_node(out, (*path, index), key, item, known) for index, item in enumerate(value)]
        return [public for public, _ in pairs], [script for _, script in pairs]
    name = env_name(path)
    if name in known:
        return value, SecretRef(name)
    if value is None or isinstance(value, bool) or value in ("", MASK):
        return value, value  # nothing to hide (MASK: a stored value, already redacted)
    if is_secret_key(key):
        out.env[name] = str(value)
        return MASK, SecretRef(name)
    if isinstance(value, str):
        cleaned = redact_text(value)
        if cleaned != value:
            out.env[name] = value
            return cleaned, SecretRef(name)
    return value, value


def unchanged(stored_public: Any, sent: Any, stored_secrets: Collection[str]) -> set[str]:
    """The stored secret variables whose leaves ``sent`` holds unchanged: the redacted text the
    pipeline lists (``https://user:***@host``, ``***``) sent back as it was, so an edit that copies the
    listed parameters keeps those credentials. A leaf sent with another value is a new value."""
    kept: set[str] = set()

    def walk(path: tuple[str | int, ...], old: Any, new: Any) -> None:
        if isinstance(old, dict) and isinstance(new, dict):
            for key in old.keys() & new.keys():
                walk((*path, key), old[key], new[key])
        elif isinstance(old, list) and isinstance(new, list):
            for index, (old_item, new_item) in enumerate(zip(old, new, strict=False)):
                walk((*path, index), old_item, new_item)
        elif path and old == new and env_name(path) in stored_secrets:
            kept.add(env_name(path))

    walk((), stored_public, sent)
    return kept
