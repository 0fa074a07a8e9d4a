"""The fallback spool: batches that could not be delivered, one OTLP/JSON export request per file.

Files are written atomically (temporary file, fsync, rename, fsync of the folder), so a file that
exists is complete; names sort oldest first. A batch counts as accepted only once its file exists.
When the spool holds ``max_files`` files, a new batch is refused (the OpenTelemetry Collector's
persistent-queue policy): what is already on disk is kept, and the caller counts the refused records
as dropped and logs it.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_logger = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{20})-(\d+)-(\d+)-n(\d+)\.otlp\.json$")
QUARANTINE = "quarantine"


@dataclass(frozen=True, order=True)
class SpooledBatch:
    path: Path
    records: int


class Spool:
    """A folder of spooled batches for one signal of one exporter."""

    def __init__(self, directory: str | Path, max_files: int) -> None:
        self.directory = Path(directory)
        self.max_files = max_files
        self._sequence = itertools.count()
        self._lock = threading.Lock()
        self.directory.mkdir(parents=True, exist_ok=True)
        # A temporary file left by a crash was never renamed, so never acknowledged: safe to remove.
        # Only a dead writer's, though: processes share a folder (pipeline runs, the service draining
        # them), and a live one may be between writing its file and renaming it.
        for leftover in self.directory.glob(".*.tmp"):
            if not _writer_alive(leftover.name[1 : -len(".tmp")]):
                leftover.unlink(missing_ok=True)

    def put(self, payload: bytes, records: int) -> bool:
        """Store a batch durably; False when the spool is full (nothing is written then). An
        ``OSError`` (a full disk) leaves nothing behind, not even the temporary file.

        The count and the write happen under one lock: checked apart, two writers could both see
        one free place and leave the spool a file over its limit."""
        with self._lock:
            if self.full:
                return False
            name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._sequence)}-n{records}.otlp.json"
            self.directory.mkdir(parents=True, exist_ok=True)
            final = self.directory / name
            temporary = self.directory / f".{name}.tmp"
            try:
                with open(temporary, "wb") as handle:
                    handle.write(payload)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, final)
            except OSError:
                temporary.unlink(missing_ok=True)
                raise
        _fsync_directory(self.directory)
        return True

    @property
    def full(self) -> bool:
        """Whether a new batch would be refused."""
        return len(self._names()) >= self.max_files

    def pending(self) -> list[SpooledBatch]:
        """Spooled batches, oldest first."""
        batches = []
        for name in sorted(self._names()):
            match = _NAME.match(name)
            batches.append(SpooledBatch(self.directory / name, int(match.group(4)) if match else 0))
        return batches

    def remove(self, batch: SpooledBatch) -> None:
        batch.path.unlink(missing_ok=True)
        _fsync_directory(self.directory)

    def quarantine(self, batch: SpooledBatch, reason: str) -> Path:
        """Set an unreadable file aside (never delete it silently) so the rest can still replay."""
        folder = self.directory / QUARANTINE
        folder.mkdir(exist_ok=True)
        target = folder / batch.path.name
        os.replace(batch.path, target)
        _fsync_directory(self.directory)
        _logger.warning("spool file %s cannot be replayed (%s); moved to %s", batch.path.name, reason, folder)
        return target

    def status(self) -> dict[str, int]:
        pending = self.pending()
        quarantined = self.directory / QUARANTINE
        return {
            "files": len(pending),
            "records": sum(batch.records for batch in pending),
            "bytes": sum(batch.path.stat().st_size for batch in pending if batch.path.exists()),
            "max_files": self.max_files,
            "quarantined_files": len(list(quarantined.iterdir())) if quarantined.is_dir() else 0,
        }

    def _names(self) -> list[str]:
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return []  # the folder was removed under us: nothing is spooled
        return [entry.name for entry in entries if entry.is_file() and _NAME.match(entry.name)]


def _writer_alive(name: str) -> bool:
    """Whether the process that named a spool file (its pid is in the name) is still running."""
    match = _NAME.match(name)
    if match is None:
        return False
    pid = int(match.group(2))
    if pid == os.getpid():
        return False  # this process is only starting this spool: nothing of it is in flight
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, someone else's
    return True


def _fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
