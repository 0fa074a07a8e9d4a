"""A small tmpfs that only the processes of one mount namespace see, to fill a disk for real.

A process started with ``unshare -m`` mounts the tmpfs in a mount namespace of its own and then
sleeps, keeping the namespace alive; the service is started inside it (``nsenter``), and the test
reaches the files through ``/proc/<pid>/root``, which shows that namespace's view. The tests run as
root, which both need.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Tmpfs:
    mountpoint: Path
    process: subprocess.Popen[str]

    @property
    def enter(self) -> tuple[str, ...]:
        """A command prefix that runs a program inside the namespace, in this folder (nsenter would
        move it to the namespace's first process's, and a relative PYTHONPATH would then miss)."""
        return ("nsenter", f"--mount=/proc/{self.process.pid}/ns/mnt", f"--wd={os.getcwd()}", "--")

    def inside(self, path: Path) -> Path:
        """``path`` as the namespace sees it."""
        return Path(f"/proc/{self.process.pid}/root") / path.relative_to("/")

    def copy_out(self, path: Path, folder: Path) -> Path:
        """A copy of a file of the namespace (and of its ``.wal``), for programs that resolve
        ``/proc/<pid>/root`` as a plain link to ``/`` (DuckDB does) and so would miss it."""
        folder.mkdir(parents=True, exist_ok=True)
        for source in (path, path.with_name(path.name + ".wal")):
            if self.inside(source).exists():
                shutil.copyfile(self.inside(source), folder / source.name)
        return folder / path.name

    def fill(self) -> Path:
        """Write a file until the disk is full; return it (remove it to free the space)."""
        filler = self.inside(self.mountpoint / "filler")
        chunk = b"\0" * 65_536
        with filler.open("wb", buffering=0) as handle:
            while True:
                try:
                    handle.write(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    if len(chunk) == 1:
                        return filler
                    chunk = chunk[: len(chunk) // 2]


@contextmanager
def tmpfs(mountpoint: Path, size: str) -> Iterator[Tmpfs]:
    mountpoint.mkdir(parents=True, exist_ok=True)
    script = 'mount -t tmpfs -o size="$1" tmpfs "$0" && echo mounted && exec sleep 3600'
    process = subprocess.Popen(
        ["unshare", "-m", "sh", "-c", script, str(mountpoint), size], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    try:
        assert process.stdout.readline().strip() == "mounted"
        yield Tmpfs(mountpoint, process)
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
