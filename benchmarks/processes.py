"""Processes the benchmarks start: free ports, peak memory, and stopping exactly what was started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

__all__ = ["free_port", "peak_rss_mb", "reset_peak_rss", "rss_mb", "stop_group"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss(pid: int) -> None:
    """Start a new peak for ``pid`` (Linux: writing 5 to clear_refs resets VmHWM to the current RSS)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_mb(pid: int) -> float:
    """The peak resident memory of ``pid`` since its start or the last reset, in MiB."""
    return _status_kib(pid, "VmHWM") / 1024


def rss_mb(pid: int) -> float:
    """The resident memory of ``pid`` now, in MiB."""
    return _status_kib(pid, "VmRSS") / 1024


def stop_group(process: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """SIGTERM the session ``process`` leads (it was started with ``start_new_session``), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
