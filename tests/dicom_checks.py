"""Checks shared by unit and integration tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def has_dciodvfy() -> bool:
    """Whether ``dciodvfy`` (dicom3tools) is installed; checks that need it are skipped where it is not."""
    return shutil.which("dciodvfy") is not None


def dciodvfy_errors(path: Path) -> list[str]:
    """The error lines ``dciodvfy`` (dicom3tools) reports for a DICOM file; warnings are not errors."""
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]
