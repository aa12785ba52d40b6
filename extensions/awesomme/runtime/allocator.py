"""The server's memory allocator: gperftools' tcmalloc (Debian's libtcmalloc-minimal4) where installed.

glibc's malloc serves large blocks with a fresh ``mmap`` and unmaps them on free. A 3D network's activations are
such blocks (16 channels of a 256x256x16 window: 64 MB), so every layer of every window faults fresh pages in:
about 200 000 page faults per 16x512x512 forward pass, a sixth of its time on a 2-core machine. tcmalloc keeps
freed pages for reuse and hands them back gradually. Raising glibc's own thresholds (``mallopt``) is no substitute:
torch's 64-byte-aligned blocks then never fit the holes they leave, and the heap grows by a block per request.

The allocator must be in place before the interpreter starts: ``awesomme serve`` re-executes itself once with the
library preloaded (``AWESOMME_ALLOCATOR=system`` keeps the C library's).
"""

from __future__ import annotations

import ctypes.util
import logging
from collections.abc import Mapping

__all__ = ["TCMALLOC", "preload_environment"]

logger = logging.getLogger(__name__)

TCMALLOC = "tcmalloc_minimal"


def preload_environment(allocator: str, environment: Mapping[str, str]) -> dict[str, str] | None:
    """The environment to re-execute with so that ``allocator`` serves; None when there is nothing to change."""
    if allocator != "tcmalloc":
        return None
    library = ctypes.util.find_library(TCMALLOC)  # a soname the dynamic loader finds, e.g. libtcmalloc_minimal.so.4
    if library is None:
        logger.warning("tcmalloc is not installed (Debian: libtcmalloc-minimal4): the C library's allocator serves")
        return None
    preloaded = environment.get("LD_PRELOAD", "").replace(":", " ").split()
    if library in preloaded:
        return None
    return {**environment, "LD_PRELOAD": " ".join([library, *preloaded])}
