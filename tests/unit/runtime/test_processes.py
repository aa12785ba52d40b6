from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from awesomme.runtime.processes import running_pid, start_background, stop_by_pidfile, wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)  # awesomme-test-sleeper"]


def test_a_started_process_is_tracked_and_stopped_by_its_pid_file(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    pid = start_background(SLEEPER, pid_file, tmp_path / "sleeper.log")
    assert running_pid(pid_file, "awesomme-test-sleeper") == pid
    assert stop_by_pidfile(pid_file, "awesomme-test-sleeper") is True
    assert not pid_file.exists()
    assert running_pid(pid_file, "awesomme-test-sleeper") is None
    assert stop_by_pidfile(pid_file, "awesomme-test-sleeper") is False


def test_a_pid_file_naming_someone_elses_process_is_ignored(tmp_path: Path) -> None:
    other = subprocess.Popen(SLEEPER)
    try:
        pid_file = tmp_path / "server.pid"
        pid_file.write_text(f"{other.pid}\n")
        assert running_pid(pid_file, "awesomme.cli serve") is None
        assert stop_by_pidfile(pid_file, "awesomme.cli serve") is False
        assert other.poll() is None  # still running: we stop only what we started
    finally:
        other.kill()
        other.wait()


def test_garbage_pid_files_count_as_nothing_running(tmp_path: Path) -> None:
    pid_file = tmp_path / "x.pid"
    pid_file.write_text("not a pid")
    assert running_pid(pid_file, "anything") is None
    assert running_pid(tmp_path / "missing.pid", "anything") is None


def test_wait_until_names_what_did_not_come_up() -> None:
    with pytest.raises(TimeoutError, match="the frobnicator"):
        wait_until(lambda: False, 0.3, "the frobnicator", interval_s=0.1)


def test_a_started_process_and_its_log_and_pid_file_are_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the starter's umask (a test, a shell) does not matter
    try:
        writer = [sys.executable, "-c", f"open({str(tmp_path / 'made')!r}, 'w').write('x')  # awesomme-test-writer"]
        pid_file = tmp_path / "run" / "writer.pid"
        start_background(writer, pid_file, tmp_path / "log" / "writer.log")
        wait_until(lambda: (tmp_path / "made").exists(), 10, "the writer")
    finally:
        os.umask(previous)
    for path in (tmp_path / "made", pid_file, tmp_path / "log" / "writer.log"):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert (tmp_path / "log").stat().st_mode & 0o777 == 0o700


REEXEC = """import os, sys, time
left = int(sys.argv[1])
if left:
    os.execv(sys.executable, [sys.executable, __file__, str(left - 1), sys.argv[2]])
time.sleep(60)
"""


def test_a_process_that_starts_itself_again_is_never_taken_for_gone(tmp_path: Path) -> None:
    """The server starts itself again (execve, same pid) to preload its allocator: at that instant its command line
    reads empty, and its start was once taken for an exit."""
    script = tmp_path / "reexec.py"
    script.write_text(REEXEC)
    pid_file = tmp_path / "reexec.pid"
    start_background([sys.executable, str(script), "30", "awesomme-test-reexec"], pid_file, tmp_path / "reexec.log")
    try:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            assert running_pid(pid_file, "awesomme-test-reexec") is not None
    finally:
        stop_by_pidfile(pid_file, "awesomme-test-reexec")
