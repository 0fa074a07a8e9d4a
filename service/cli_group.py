"""The ``pipetrace`` command group: every error a command refuses with is one line.

Click prints a usage banner and a help hint above a usage error; the line itself already names the
option or setting, so the banner is dropped. Usage errors keep click's exit code 2.
"""

from __future__ import annotations

from typing import Any

import click

from service.checked_settings import InvalidSettings


class OneLineErrors(click.Group):
    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as error:
            error.ctx = None  # no banner: the message is the whole answer
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InvalidSettings as error:
            # Settings are read by the commands themselves; a bad one is a usage error.
            raise click.UsageError(str(error)) from error
        except click.UsageError as error:
            error.ctx = None
            raise
