"""The failure throttle in the database: atomic under parallel attempts, shared by processes, address before account.

Each test has a platform database of its own (SQLite, then PostgreSQL).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from sqlalchemy import func, select

from awesomme.core.db import session_scope
from awesomme.core.errors import TooManyRequests
from awesomme.models import FailedAttempt
from awesomme.services.throttle import FailureThrottle, Limits

LIMITS = Limits(per_address=20, per_subject_at_address=5, per_subject=30)


def _throttle() -> FailureThrottle:
    return FailureThrottle("login", 300, LIMITS, "logins")


def _failures() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(FailedAttempt)) or 0)


def test_fifteen_parallel_attempts_reserve_at_most_the_limit(platform_db: str) -> None:
    throttle, outcomes, start = _throttle(), [], threading.Barrier(15)

    def guess() -> None:
        start.wait()
        try:
            throttle.reserve("admin", "192.0.2.1")
            outcomes.append("evaluated")
        except TooManyRequests:
            outcomes.append("refused")

    threads = [threading.Thread(target=guess) for _ in range(15)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["evaluated"] * 5 + ["refused"] * 10
    assert _failures() == 5


_CHILD = """
from awesomme.core.errors import TooManyRequests
from awesomme.services.throttle import FailureThrottle, Limits
throttle = FailureThrottle("login", 300, Limits(per_address=20, per_subject_at_address=5, per_subject=30), "logins")
evaluated = 0
for _ in range(5):
    try:
        throttle.reserve("admin", "192.0.2.1")
        evaluated += 1
    except TooManyRequests:
        pass
print(evaluated)
"""


def test_the_count_holds_across_processes(platform_db: str) -> None:
    children = [
        subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, text=True, env=dict(os.environ))
        for _ in range(3)
    ]
    evaluated = [int(child.communicate(timeout=120)[0]) for child in children]
    assert sum(evaluated) == 5, evaluated


def test_one_address_guessing_locks_that_address_not_the_account(platform_db: str) -> None:
    throttle = _throttle()
    for _ in range(5):
        throttle.reserve("admin", "192.0.2.66")
    with pytest.raises(TooManyRequests):
        throttle.reserve("admin", "192.0.2.66")
    throttle.forgive(throttle.reserve("admin", "198.51.100.7"))  # the real admin, elsewhere
    throttle.forgive(throttle.reserve("bob", "192.0.2.66"))  # another account, from the guesser's address


def test_guesses_spread_over_addresses_lock_the_account_everywhere(platform_db: str) -> None:
    throttle = _throttle()
    for address in range(6):
        for _ in range(5):
            throttle.reserve("admin", f"192.0.2.{address}")
    with pytest.raises(TooManyRequests) as refused:
        throttle.reserve("admin", "198.51.100.7")
    assert 0 < refused.value.retry_after_s <= 301


def test_a_forgiven_attempt_is_no_failure(platform_db: str) -> None:
    throttle = _throttle()
    for _ in range(10):
        throttle.forgive(throttle.reserve("admin", "192.0.2.1"))
    assert _failures() == 0


def test_failures_older_than_the_window_no_longer_count(platform_db: str) -> None:
    throttle = FailureThrottle("login", 0.5, LIMITS, "logins")
    for _ in range(5):
        throttle.reserve("admin", "192.0.2.1")
    with pytest.raises(TooManyRequests):
        throttle.reserve("admin", "192.0.2.1")
    threading.Event().wait(0.6)
    throttle.reserve("admin", "192.0.2.1")
