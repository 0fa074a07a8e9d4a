"""Settings built for a command: every object the service reads, each problem said in one line.

pydantic reports a bad environment variable as a multi-line error (or, for a value that is not JSON,
as a traceback from its settings source); a command should instead say which variable is wrong and
why, and stop before it starts anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, ValidationError
from pydantic_settings import SettingsError

from exporters.settings import ExporterSettings
from service.settings import Settings

T = TypeVar("T")

# Values of these variables are never repeated in a message.
_SECRET = re.compile(r"TOKEN|SECRET|PASSWORD|HEADERS", re.IGNORECASE)


class InvalidSettings(ValueError):
    """A setting that cannot be used; the message is one line naming the variable or option."""


def _variable(model: type[BaseModel], name: str, options: frozenset[str]) -> str:
    """The name a user set: the CLI option for a value given as one, else the environment variable."""
    if name in options:
        return "--" + name.replace("_", "-")
    field = model.model_fields.get(name)
    alias = field.validation_alias if field is not None else None
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return name


def _problem(model: type[BaseModel], error: Any, options: frozenset[str]) -> str:
    variable = _variable(model, ".".join(str(part) for part in error["loc"]) or "settings", options)
    given = error.get("input")
    shown = f"={given!r}" if isinstance(given, str) and not _SECRET.search(variable) else ""
    return f"{variable}{shown}: {error['msg'].removeprefix('Value error, ')}"


def _build(model: type[BaseModel], make: Callable[[], T], options: frozenset[str] = frozenset()) -> T:
    try:
        return make()
    except ValidationError as exc:
        problems = "; ".join(_problem(model, error, options) for error in exc.errors())
        raise InvalidSettings(f"invalid settings: {problems}") from exc
    except SettingsError as exc:
        # A list or dict setting whose value is not JSON: the source names the field, not the variable.
        match = re.search(r'field "(\w+)"', str(exc))
        variable = _variable(model, match.group(1), options) if match else "a setting"
        cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
        raise InvalidSettings(f"invalid settings: {variable}: not valid JSON{cause}") from exc


def load_settings(**options: Any) -> Settings:
    """The service's settings from the environment (``options`` override it), and the exporters'
    settings they imply, so that every problem is found before anything starts."""
    given = {key: value for key, value in options.items() if value is not None}
    settings = _build(Settings, lambda: Settings(**given), frozenset(given))
    _build(ExporterSettings, settings.exporter_settings)
    return settings


def load_exporter_settings() -> ExporterSettings:
    """The exporters' settings alone, for commands that touch only the spool or the store."""
    return _build(ExporterSettings, ExporterSettings)
