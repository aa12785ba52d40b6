from __future__ import annotations

import os
import subprocess
import sys
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
