from __future__ import annotations

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
