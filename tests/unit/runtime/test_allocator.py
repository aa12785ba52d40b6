"""The server's allocator: the environment ``awesomme serve`` starts again with, and why (page faults on reuse)."""

from __future__ import annotations

import ctypes.util
import json
import os
import subprocess
import sys

import pytest

from awesomme.runtime.allocator import TCMALLOC, preload_environment

INSTALLED = ctypes.util.find_library(TCMALLOC)
needs_tcmalloc = pytest.mark.skipif(INSTALLED is None, reason="libtcmalloc-minimal4 is not installed")

# In a fresh interpreter: a 64 MB tensor (one activation of a 3D network) written, freed and taken again four times.
FAULTS_OF_REUSE = """
import json, resource
import torch
torch.ones(64 << 20, dtype=torch.uint8)  # the first time faults everywhere
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(4):
    torch.ones(64 << 20, dtype=torch.uint8)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before))
"""


def test_the_system_allocator_changes_nothing() -> None:
    assert preload_environment("system", {"PATH": "/usr/bin"}) is None


@needs_tcmalloc
def test_tcmalloc_is_preloaded_once_before_what_was_preloaded() -> None:
    environment = preload_environment("tcmalloc", {"PATH": "/usr/bin", "LD_PRELOAD": "libother.so"})
    assert environment == {"PATH": "/usr/bin", "LD_PRELOAD": f"{INSTALLED} libother.so"}
    assert preload_environment("tcmalloc", environment) is None  # the re-executed server does not start again


def test_without_tcmalloc_the_system_allocator_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert preload_environment("tcmalloc", {"PATH": "/usr/bin"}) is None


@needs_tcmalloc
def test_with_tcmalloc_a_freed_block_is_reused_without_faulting_fresh_pages() -> None:
    def faults(environment: dict[str, str]) -> int:
        run = subprocess.run(
            [sys.executable, "-c", FAULTS_OF_REUSE], env=environment, capture_output=True, text=True, check=True
        )
        return int(json.loads(run.stdout))

    plain = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    preloaded = preload_environment("tcmalloc", plain)
    assert preloaded is not None
    system, tcmalloc = faults(plain), faults(preloaded)
    assert system >= 0.9 * 4 * (64 << 20) // 4096  # 4 KB pages: glibc faulted the whole block in at each reuse
    assert tcmalloc < system / 20
