"""What a run prints without logging it becomes log records of the run, captured by the run itself.

The run's file descriptors 1 and 2 are pointed at pipes, so C code, dlt's worker processes and a
``print`` anywhere are all caught; a thread per pipe copies each line to where the output went before
(the run folder's ``output.log``, or the terminal of ``pipetrace run``) and logs it to
``pipetrace.run.output`` with the stage ``stdout`` or ``stderr``. Done in the run rather than by the
service reading its pipes: a run outlives a service that stops or dies, and a pipe whose reader is
gone would make the run's next ``print`` fail.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
import threading
from dataclasses import dataclass

from exporters.records import STAGE

OUTPUT_LOGGER = "pipetrace.run.output"
_logger = logging.getLogger(OUTPUT_LOGGER)
# Lines still queued in a pipe when the run ends are read within this; a child process that keeps
# the pipe open longer than the run itself is not waited for.
_DRAIN_SECONDS = 5.0


@dataclass
class _Stream:
    fd: int
    stage: str
    level: int
    saved: int = -1
    thread: threading.Thread | None = None


class OutputCapture:
    """``start()`` in the context the records should carry (the run's root span); ``stop()`` before the
    run's telemetry is shut down, so the last lines are exported with the rest."""

    def __init__(self) -> None:
        self._streams = (_Stream(1, "stdout", logging.INFO), _Stream(2, "stderr", logging.WARNING))

    def start(self) -> None:
        for stream in self._streams:
            _flush(stream.fd)
            stream.saved = os.dup(stream.fd)
            read_end, write_end = os.pipe()
            os.dup2(write_end, stream.fd)
            os.close(write_end)
            context = contextvars.copy_context()
            stream.thread = threading.Thread(
                target=context.run, args=(_pump, read_end, stream), name=f"run-{stream.stage}", daemon=True
            )
            stream.thread.start()

    def stop(self) -> None:
        for stream in self._streams:
            if stream.thread is None:
                continue
            _flush(stream.fd)
            os.dup2(stream.saved, stream.fd)  # closes this process's write end: the pump reads to EOF
            stream.thread.join(_DRAIN_SECONDS)
            if not stream.thread.is_alive():  # else a child still writes: the pump keeps the descriptor
                os.close(stream.saved)
            stream.thread = None


def _flush(fd: int) -> None:
    handle = sys.stdout if fd == 1 else sys.stderr
    if handle is not None:
        with contextlib.suppress(OSError, ValueError):
            handle.flush()


def _pump(read_end: int, stream: _Stream) -> None:
    with os.fdopen(read_end, "rb") as pipe:
        for raw in pipe:
            # Where the output went may be gone (a closed terminal): the record still goes.
            with contextlib.suppress(OSError):
                os.write(stream.saved, raw)
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                _logger.log(stream.level, line, extra={STAGE: stream.stage})
