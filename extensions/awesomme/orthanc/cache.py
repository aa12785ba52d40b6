"""A bounded on-disk cache of decoded series (NIfTI files), least recently used out.

Entries are keyed by SeriesInstanceUID and the series' version in Orthanc, so a changed series is decoded anew
and its stale entry dropped. Files are written beside their final name and renamed, so a reader never sees half
a file. The total stays under ``max_bytes``; an entry larger than the whole bound is kept alone until the next one.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

__all__ = ["SeriesCache"]

_SAFE = re.compile(r"[^0-9A-Za-z._-]")


class SeriesCache:
    def __init__(self, directory: Path, max_bytes: int, suffix: str = ".nii") -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.suffix = suffix
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._entries: OrderedDict[Path, int] = OrderedDict()
        directory.mkdir(parents=True, exist_ok=True)
        self._load_existing()

    def _load_existing(self) -> None:
        for leftover in self.directory.glob("*/*.partial"):
            leftover.unlink(missing_ok=True)
        files = sorted(self.directory.glob(f"*/*{self.suffix}"), key=lambda p: p.stat().st_mtime)
        for path in files:
            self._entries[path] = path.stat().st_size
        with self._lock:
            self._evict(0)

    @property
    def total_bytes(self) -> int:
        return sum(self._entries.values())

    def path_for(self, key: str, version: str) -> Path:
        return self.directory / _SAFE.sub("_", key) / f"{_SAFE.sub('_', version)}{self.suffix}"

    def get(self, key: str, version: str, produce: Callable[[Path], None]) -> Path:
        """The cached file for (key, version); ``produce(path)`` writes it on a miss."""
        target = self.path_for(key, version)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if target in self._entries and target.exists():
                    self._entries.move_to_end(target)
                    os.utime(target)
                    return target
            self._drop_other_versions(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            try:
                produce(partial)
                partial.replace(target)
            finally:
                partial.unlink(missing_ok=True)
            size = target.stat().st_size
            with self._lock:
                self._evict(size)
                self._entries[target] = size
            return target

    def invalidate(self, key: str) -> None:
        folder = self.directory / _SAFE.sub("_", key)
        with self._lock:
            for path in [p for p in self._entries if p.parent == folder]:
                self._remove(path)

    def _drop_other_versions(self, target: Path) -> None:
        with self._lock:
            for path in [p for p in self._entries if p.parent == target.parent and p != target]:
                self._remove(path)

    def _evict(self, incoming: int) -> None:
        """Drop least recently used entries until ``incoming`` more bytes fit (caller holds the lock)."""
        while self._entries and self.total_bytes + incoming > self.max_bytes:
            self._remove(next(iter(self._entries)))

    def _remove(self, path: Path) -> None:
        self._entries.pop(path, None)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()
