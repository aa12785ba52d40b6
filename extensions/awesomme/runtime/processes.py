"""Start and stop background processes tracked by pid files, stopping only what we started.

Every child runs with umask 077, and its log and pid file are owner-only, whoever started it (`make run`, a test):
what the platform writes under ``var/`` is never readable by another local account.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["CHILD_UMASK", "owner_only_file", "running_pid", "start_background", "stop_by_pidfile", "wait_until"]

CHILD_UMASK = 0o077


def owner_only_file(path: Path, flags: int) -> int:
    """Open ``path`` (created 0600, parent directories 0700); an existing file loses any group/other bits."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, flags | os.O_CREAT, 0o600)
    if os.fstat(descriptor).st_mode & 0o077:
        os.fchmod(descriptor, 0o600)
    return descriptor


def running_pid(pid_file: Path, expected_cmd: str) -> int | None:
    """The pid in ``pid_file`` when that process is alive and still runs ``expected_cmd`` (pids get reused)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if expected_cmd in _settled_cmdline(pid) else None


def _settled_cmdline(pid: int, timeout_s: float = 2.0) -> str:
    """The process's command line; while it reads empty in a live process (the instant of an ``execve``: the server
    starts itself again with its allocator preloaded), read again rather than take the process for gone."""
    deadline = time.monotonic() + timeout_s
    cmdline = _cmdline(pid)
    while not cmdline and Path(f"/proc/{pid}").exists() and not _is_zombie(pid) and time.monotonic() < deadline:
        time.sleep(0.005)
        cmdline = _cmdline(pid)
    return cmdline


def start_background(
    argv: Sequence[str], pid_file: Path, log_file: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> int:
    with os.fdopen(owner_only_file(log_file, os.O_WRONLY | os.O_APPEND), "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,  # survives the `make run` that started it
            umask=CHILD_UMASK,  # everything the child (and its children) creates is owner-only
        )
    # Popen returns while the child is still inside execve: until the new image's arguments are in place its
    # /proc cmdline reads empty, and running_pid would take it for gone.
    deadline = time.monotonic() + 5.0
    while proc.poll() is None and not _cmdline(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.005)
    with os.fdopen(owner_only_file(pid_file, os.O_WRONLY | os.O_TRUNC), "w") as pid_out:
        pid_out.write(f"{proc.pid}\n")
    return proc.pid


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stop_by_pidfile(pid_file: Path, expected_cmd: str, timeout_s: float = 20.0) -> bool:
    """SIGTERM the recorded process, SIGKILL after ``timeout_s``; True when something was stopped."""
    pid = running_pid(pid_file, expected_cmd)
    pid_file.unlink(missing_ok=True)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return True


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval_s)
    raise TimeoutError(f"{what} did not come up within {timeout_s:.0f} s")


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True
