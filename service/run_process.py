"""A pipeline run's process as the service knows it, whether it started the process or found it.

Runs are detached: each is its own session, writing to a file rather than to a pipe the service
reads, so it neither dies with the service nor notices it is gone. The run folder holds what a service
needs to find it again: ``run.json`` (the manifest: pid and the process's start time, and for a run
of ``pipetrace run`` its pipeline), ``result.json`` (the outcome the run writes as it ends),
``cancel-requested`` (a cancel asked for, kept across restarts), ``output.log``, and for a run of
``pipetrace run`` that a service has recorded, ``registered``.

A pid alone can be reused by another process once the run has ended; the pid together with the
process's start time cannot.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import threading
from pathlib import Path
from typing import Any

import orjson
import psutil

MANIFEST = "run.json"
RESULT = "result.json"
CANCEL_REQUESTED = "cancel-requested"
OUTPUT = "output.log"
# A run of `pipetrace run` that a service has recorded: the next start need not read it again.
REGISTERED = "registered"
# How often a found run (not a child of this service, so not waitable) is looked at.
POLL_SECONDS = 0.5


class RunProcess:
    """One run's process: a child of this service (``popen``) or one found by its manifest."""

    def __init__(self, pid: int, create_time: float, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.pid = pid
        self.create_time = create_time
        self._popen = popen

    @classmethod
    def spawned(cls, popen: subprocess.Popen[bytes]) -> RunProcess:
        return cls(popen.pid, psutil.Process(popen.pid).create_time(), popen)

    def alive(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        try:
            process = psutil.Process(self.pid)
            # A zombie has ended (its parent, a service that died, never collected it).
            return (
                abs(process.create_time() - self.create_time) < 0.01
                and process.status() != psutil.STATUS_ZOMBIE
            )
        except (psutil.Error, ValueError, OverflowError):  # gone, or a pid no process can have
            return False

    def owner(self) -> int | None:
        """The real user id the process runs as, while it runs; None when it is gone."""
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.create_time) >= 0.01:
                return None
            uid: int = process.uids().real
            return uid
        except (psutil.Error, ValueError, OverflowError):
            return None

    def wait(self, stop: threading.Event) -> int | None:
        """Wait until the process ends (or ``stop`` is set); its exit code when it is our child."""
        if self._popen is not None:
            while not stop.is_set():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    return self._popen.wait(POLL_SECONDS)
            return None
        while self.alive() and not stop.wait(POLL_SECONDS):
            pass
        return None

    def terminate(self) -> None:
        """SIGTERM to the run itself: it ends like Ctrl-C, flushing its telemetry and its outcome."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the run's whole process group (its session: dlt's worker processes too)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    temporary = run_dir / f".{MANIFEST}.tmp"
    temporary.write_bytes(orjson.dumps(manifest))
    os.replace(temporary, run_dir / MANIFEST)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from the run folder, or None when it is absent or not (yet) whole."""
    try:
        found = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return found if isinstance(found, dict) else None


def found_process(manifest: dict[str, Any]) -> RunProcess | None:
    """The process a manifest names, if it is still that process and still running."""
    pid, create_time = manifest.get("pid"), manifest.get("create_time")
    if not isinstance(pid, int) or not isinstance(create_time, int | float):
        return None
    process = RunProcess(pid, float(create_time))
    return process if process.alive() else None


def this_client(run_dir: Path) -> dict[str, Any]:
    """This process as the ``client`` of a run it registers: what a service on the same machine needs
    to see it end (``watched_client``) and to read the run folder it left."""
    me = psutil.Process()
    return {
        "host": socket.gethostname(),
        "boot_time": psutil.boot_time(),
        "pid": me.pid,
        "create_time": me.create_time(),
        "run_dir": str(run_dir),
    }


def watched_client(client: dict[str, Any] | None) -> RunProcess | None:
    """The registering process, when it runs on this machine (same host name and boot: a pid means
    nothing on another machine or after a reboot); None when this service cannot watch it."""
    if client is None or client.get("host") != socket.gethostname():
        return None
    if abs(float(client["boot_time"]) - psutil.boot_time()) > 1.0:
        return None
    return RunProcess(int(client["pid"]), float(client["create_time"]))


def owned_by(owner: int | None, folder: Path, *files: Path) -> bool:
    """``folder`` is a real folder of user ``owner``, and each of ``files`` that exists is a regular
    file of that user (not a link to something else)."""
    if owner is None:
        return False
    try:
        found = folder.lstat()
        if not stat.S_ISDIR(found.st_mode) or found.st_uid != owner:
            return False
        for path in files:
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(info.st_mode) or info.st_uid != owner:
                return False
    except OSError:
        return False
    return True
