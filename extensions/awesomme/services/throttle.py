"""Failure throttling for logins and invite codes: only failures count, per key (a username or an address).

Kept in the server's memory: the platform serves from one process, and a restart forgetting recent failures is
acceptable for a limit meant to slow guessing, not to lock accounts.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from awesomme.core.errors import TooManyRequests

__all__ = ["FailureThrottle"]


class FailureThrottle:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

    def check(self, limits: dict[str, int], what: str) -> None:
        """Refuse when any key reached its limit (``limits``: key -> allowed failures per window)."""
        now = time.monotonic()
        with self._lock:
            for key, limit in limits.items():
                failures = self._recent(key, now)
                if len(failures) >= limit:
                    retry_after = int(failures[0] + self.window_s - now) + 1
                    raise TooManyRequests(f"too many failed {what}: try again in {retry_after} s", retry_after)

    def failed(self, keys: list[str]) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()
