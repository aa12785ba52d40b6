"""The fuzzing run's platform (the integration suite's fixtures), its seeded data, and the two callers.

``tests/fuzz`` is collected only when ``AWESOMME_FUZZ_EXAMPLES`` is set, as ``make fuzz`` does (CI runs it with a
small count): the run litters its platform with fuzzed users, cohorts and invites, so it never shares one with
``make test``.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from awesomme.orthanc.client import OrthancClient
from tests.integration.conftest import *  # noqa: F403  (the integration suite's fixtures: a platform of this run's own)
from tests.integration.conftest import Account, Cohorts, attach_to_cohort, store_patient

EXAMPLES_ENV = "AWESOMME_FUZZ_EXAMPLES"
if not os.environ.get(EXAMPLES_ENV):
    collect_ignore_glob = ["test_*.py"]
elif not hasattr(pytest.Item, "_nodeid"):
    # schemathesis 4.32's `from_fixture` renames the test's node through `_nodeid`, which pytest 9.2 dropped (the
    # name only labels reports: each operation's subtest is labelled anyway).
    pytest.Item._nodeid = property(lambda item: item.nodeid, lambda item, value: None)  # type: ignore[attr-defined]

# Access tokens live 15 minutes: a caller logs in again when its token is older than this.
TOKEN_REFRESH_S = 600
# Cases sent, per caller, for the summary line.
CASES: Counter[str] = Counter()
_addresses = itertools.count(1)


def fuzz_examples() -> int:
    """Cases per operation and caller in Hypothesis' fuzzing phase (the coverage phase adds its own)."""
    return int(os.environ.get(EXAMPLES_ENV) or 0)


def next_address() -> str:
    """A fresh address for an ``X-Forwarded-For`` header (which the server ignores: it trusts no proxy).

    The throttles count the TCP peer's address: cases connect from loopback addresses of their own
    (``tests.integration.addresses``).
    """
    n = next(_addresses)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


@dataclass
class Caller:
    """An account whose bearer token is renewed before it expires."""

    name: str
    account: Account
    server_url: str
    _token: str = ""
    _issued: float = field(default=0.0)

    def headers(self) -> dict[str, str]:
        if not self._token or time.monotonic() - self._issued > TOKEN_REFRESH_S:
            self._token = self.account.token(self.server_url)["access_token"]
            self._issued = time.monotonic()
        return {"Authorization": f"Bearer {self._token}", "X-Forwarded-For": next_address()}


@dataclass(frozen=True)
class Seeded:
    """What the run's platform holds before fuzzing: a study in alpha, one in beta, a model bound to both."""

    alpha_id: int
    beta_id: int
    alpha_study: str
    alpha_series: str
    beta_study: str
    beta_series: str
    beta_patient_id: str
    model_names: tuple[str, ...]
    usernames: dict[str, str]


@pytest.fixture(scope="session")
def seeded(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory
) -> Seeded:
    out = tmp_path_factory.mktemp("fuzz-data")
    alpha = store_patient(orthanc, "osteosarcoma-mr", 801, out / "alpha").patient
    beta = store_patient(orthanc, "osteosarcoma-mr", 802, out / "beta").patient
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[alpha.study_uid])
    attach_to_cohort(server_url, admin, cohorts.beta, studies=[beta.study_uid])
    headers = admin.headers(server_url)
    # A model shared by both cohorts: alpha's member may list it, and must not learn beta from it.
    reply = httpx.put(
        f"{server_url}/api/models/everything_mr/cohorts", json={"cohorts": ["alpha", "beta"]}, headers=headers
    )
    assert reply.status_code == 200, reply.text
    models = httpx.get(f"{server_url}/api/models", headers=headers)
    assert models.status_code == 200, models.text
    return Seeded(
        alpha_id=cohorts.alpha,
        beta_id=cohorts.beta,
        alpha_study=alpha.study_uid,
        alpha_series=alpha.series_uid,
        beta_study=beta.study_uid,
        beta_series=beta.series_uid,
        beta_patient_id=beta.patient_id,
        model_names=tuple(model["name"] for model in models.json()),
        usernames={
            "admin": admin.username,
            "alpha_member": cohorts.alpha_member.username,
            "alpha_admin": cohorts.alpha_admin.username,
            "beta_member": cohorts.beta_member.username,
            "loner": cohorts.loner.username,
        },
    )


@pytest.fixture(scope="session")
def member(server_url: str, cohorts: Cohorts) -> Caller:
    return Caller("alpha member", cohorts.alpha_member, server_url)


@pytest.fixture(scope="session")
def platform_admin(server_url: str, admin: Account) -> Caller:
    return Caller("platform admin", admin, server_url)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if CASES:
        counts = ", ".join(f"{name}: {count}" for name, count in sorted(CASES.items()))
        terminalreporter.write_line(f"fuzzing /api: {sum(CASES.values())} cases sent ({counts})")
