"""What a secret looks like: in text (:func:`redact_text`) and as an attribute key (:func:`is_secret_key`).

Two sources of patterns:

- **Token formats** come from ``detect-secrets`` (Yelp's maintained detector): the ``denylist`` regexes of
  its plugins that recognise a credential by its own shape (AWS key ids, GitHub, GitLab, Slack, Stripe,
  SendGrid, PyPI, OpenAI, Discord, Telegram, Twilio, Mailchimp, Square, Azure storage keys), plus Google
  API keys, whole JWTs and PEM private keys of ours. Its whole scanner is not used: it reads files line
  by line, reports values rather than positions, and its keyword, high-entropy and IP plugins are tuned
  for source code, where they would mask trace ids, hashes and prose in logs. Its npm pattern
  (``//.+/:_authToken=``) is left out: its ``.+`` makes a long line with many ``//`` cost quadratic time,
  and ``_authToken=`` is a secret word already. Its Basic-Auth plugin misses ``redis://:pw@host`` and
  passwords holding ``/`` or ``@``, so URL userinfo is ours.
- **Where a secret sits** (after ``password=``, an env-style ``DB_PASSWORD=``, in a URL's userinfo, a
  ``Cookie:`` or ``Authorization:`` header, SQL ``PASSWORD '...'``) is this module's own list.

The rule for keys, in one line: a key is secret when its last dot-separated segment, lower-cased with
``-`` read as ``_``, is exactly one of :data:`SECRET_KEY_WORDS`. ``db.password`` and ``api.token`` are;
``gen_ai.token.type``, ``csrf_token_present`` and ``secret.manager.name`` are not (no semantic-convention
attribute ends in such a word; tests/instrumentation/test_redaction.py checks every one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import cast

from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector

MASK = "***"

SECRET_KEY_WORDS = frozenset(
    {
        "password", "passwd", "passphrase", "pgpassword", "db_password",
        "secret", "client_secret", "secret_key", "secret_access_key", "aws_secret_access_key",
        "token", "access_token", "refresh_token", "id_token", "auth_token", "api_token", "bearer_token",
        "session_token", "aws_session_token",
        "api_key", "apikey", "x_api_key", "private_key", "access_key",
        "authorization", "proxy_authorization", "cookie", "set_cookie", "credentials", "credential",
    }
)  # fmt: skip


def is_secret_key(key: str) -> bool:
    """True when ``key``'s last segment is exactly a secret word (see the module docstring)."""
    return key.rsplit(".", 1)[-1].lower().replace("-", "_") in SECRET_KEY_WORDS


_DETECTORS: tuple[type[RegexBasedDetector], ...] = (
    AWSKeyDetector, AzureStorageKeyDetector, DiscordBotTokenDetector, GitHubTokenDetector,
    GitLabTokenDetector, MailchimpDetector, OpenAIDetector, PypiTokenDetector, SendGridDetector,
    SlackDetector, SquareOAuthDetector, StripeDetector, TelegramBotTokenDetector, TwilioKeyDetector,
)  # fmt: skip
_TOKEN_FORMATS: tuple[re.Pattern[str], ...] = (
    # A whole JWT (detect-secrets' JWT pattern ends lazily, leaving the signature behind). It starts
    # where a run of token characters starts: one attempt per run, not one per "eyJ" in it.
    re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]*"),
    # denylist is a class attribute of each plugin (typed as an abstract property on the base).
    *(pattern for detector in _DETECTORS for pattern in cast(Iterable[re.Pattern[str]], detector.denylist)),
    re.compile(r"AIza[0-9A-Za-z_-]{35}"),  # Google API keys: no detect-secrets plugin for them
    # The body stops at the next "-----" and is bounded: an unclosed header costs no scan of the rest.
    re.compile(
        r"-----BEGIN [A-Z ]*PRIVATE KEY[A-Z ]*-----(?:(?!-----)[\s\S]){0,16384}"
        r"-----END [A-Z ]*PRIVATE KEY[A-Z ]*-----"
    ),
)

# A value after a keyword: quoted (possibly with spaces, possibly JSON-escaped quotes) up to its closing
# quote, else up to whitespace, a quote, '&' (query strings) or ';' (connection strings). A comma does not
# end it: "password=abc,tail" is one password.
_VALUE = r"""(?:(?P<q>\\?["'])(?P<quoted>(?:(?!(?P=q)).)*)(?P=q)|(?P<bare>[^\s"'&;]+))"""
# Identifiers that end in a secret word: password=, db_password:, "api_key": , AWS_SECRET_ACCESS_KEY=,
# PGPASSWORD=, access_token=, client-secret=. Upper-case env names ending in _KEY too (STRIPE_KEY=); a
# lower-case *_key= is left alone (primary_key=id).
_KEYWORD = re.compile(
    r"""(?P<key>(?<![\w.-])(?:"""
    r"""(?i:[\w.-]*(?:password|passwd|passphrase|secret|token|api[_-]?key|access[_-]?key|private[_-]?key"""
    r"""|secret[_-]?key))"""
    r"""|[A-Z0-9_]*_KEY|(?i:pwd)(?=\s*=\s*[^\s/~])"""
    r"""))(?P<sep>\\?["']?\s*[=:]\s*)""" + _VALUE
)
# Header-shaped values run to the end of the line (or closing quote): "Cookie: a=1; b=2" is all secret.
_HEADER = re.compile(
    r"""(?P<key>(?<![\w.-])(?i:(?:set-)?cookie|(?:proxy-)?authorization))"""
    r"""(?P<sep>\\?["']?\s*[=:]\s*)(?:(?P<q>\\?["'])(?P<quoted>(?:(?!(?P=q)).)*)(?P=q)|(?P<bare>[^\r\n"']+))"""
)
# scheme://[user]:password@host, any scheme; the password may hold '/' and '@' (the last '@' before the
# host ends it). A port followed by a path ("http://h:8080/@scope/pkg") is not a password. Bounded, and
# tried only on text holding both '://' and '@': text packed with "a://b:" would otherwise cost a scan
# to the end of the token from each of them.
_USERINFO = re.compile(
    r"""(?P<pre>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/?#@"'<>]*:)(?!\d{1,5}(?:[/?#]|$))"""
    r"""(?P<secret>[^\s"'<>]{1,256})@(?=[^\s@"'<>/?#]*(?:[\s"'<>/?#;,]|$))"""
)
_SQL_PASSWORD = re.compile(r"""(?P<pre>(?i:\b(?:password|identified\s+by))\s+)'(?P<secret>(?:[^']|'')*)'""")
_BEARER = re.compile(r"(?P<pre>(?i:\bbearer)\s+)(?P<secret>[A-Za-z0-9._~+/=-]{8,})")


# The prefilter: one cheap search decides whether any pattern can apply, so the common case (nothing to
# mask) costs it alone. Python's re skips ahead on the first characters of a case-sensitive alternation
# that starts with literals, not of a case-insensitive one: words are looked for in the lower-cased
# text, token formats by a literal each must contain (tests/instrumentation/test_redaction.py checks a
# sample of every format against it).
_WORDS = re.compile(
    r"password|passwd|passphrase|secret|token|api_key|api-key|apikey|access_key|access-key|accesskey"
    r"|private_key|private-key|privatekey|private key|pwd|cookie|authorization|bearer"
    r"|identified|_key|aws|xox|hooks.slack.com"
)
_TOKEN_TRIGGERS = re.compile(
    r"A3T|ABIA|ACCA|AKIA|ASIA|AccountKey=|\.[A-Za-z\d_-]{6}\.|gh[pousr]_|gl[a-z]{2,5}-|GR1348941|eyJ"
    r"|-us\d|T3BlbkFJ|pypi-Ag|SG\.|sq0csp-|k_live_|:[0-9A-Za-z_-]{35}|AC[a-z0-9]{32}|SK[a-z0-9]{32}|AIza"
)


def _mask_value(match: re.Match[str]) -> str:
    if match.group("quoted") is not None:
        quote = match.group("q")
        return f"{match.group('key')}{match.group('sep')}{quote}{MASK}{quote}"
    return f"{match.group('key')}{match.group('sep')}{MASK}"


def _mask_secret_group(match: re.Match[str]) -> str:
    whole, start = match.group(0), match.start()
    return whole[: match.start("secret") - start] + MASK + whole[match.end("secret") - start :]


# Detectors whose first group is the secret (the rest of the match is its context, kept).
_SECRET_IN_GROUP = frozenset({AWSKeyDetector.denylist[1].pattern})


def _mask_token(match: re.Match[str]) -> str:
    if match.re.pattern in _SECRET_IN_GROUP and match.group(1) is not None:
        whole, start = match.group(0), match.start()
        return whole[: match.start(1) - start] + MASK + whole[match.end(1) - start :]
    return MASK


_SUBSTITUTIONS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (_SQL_PASSWORD, _mask_secret_group),
    (_HEADER, _mask_value),
    (_KEYWORD, _mask_value),
    (_BEARER, _mask_secret_group),
    *((pattern, _mask_token) for pattern in _TOKEN_FORMATS),
)


def _may_hold_userinfo(text: str) -> bool:
    return "@" in text and "://" in text


def might_hold_secret(text: str) -> bool:
    return (
        _may_hold_userinfo(text)
        or _WORDS.search(text.lower()) is not None
        or _TOKEN_TRIGGERS.search(text) is not None
    )


def redact_text(text: str) -> str:
    """``text`` with every secret replaced by ``***``; the same string object when there was none."""
    if not might_hold_secret(text):
        return text
    cleaned = _USERINFO.sub(_mask_secret_group, text) if _may_hold_userinfo(text) else text
    for pattern, replace in _SUBSTITUTIONS:
        cleaned = pattern.sub(replace, cleaned)
    return text if cleaned == text else cleaned
