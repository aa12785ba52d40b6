"""``awesomme serve`` hands uvicorn the trusted proxies: none by default, so X-Forwarded-* count from nobody."""

from __future__ import annotations

import argparse
import os
from types import SimpleNamespace
from typing import Any

import pytest
import uvicorn
from pydantic import ValidationError

from awesomme import cli
from awesomme.core.config import Settings
from awesomme.runtime import allocator, hardening


def _serve(monkeypatch: pytest.MonkeyPatch, trusted: str | None) -> dict[str, Any]:
    for name in [name for name in os.environ if name.startswith("AWESOMME_")]:
        monkeypatch.delenv(name)
    if trusted is not None:
        monkeypatch.setenv("AWESOMME_TRUSTED_PROXIES", trusted)
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")  # uvicorn's own variable: must not matter either
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(allocator, "preload_environment", lambda *_: None)
    monkeypatch.setattr(hardening, "secure_installation", lambda _settings: SimpleNamespace(lines=[]))
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    # the batch runner (a thread on the platform's database) is not what this checks
    monkeypatch.setattr(cli, "_start_batch_runner", lambda _settings: SimpleNamespace(stop=lambda: None))
    assert cli.cmd_serve(argparse.Namespace()) == 0
    return calls[0]


def test_no_proxy_is_trusted_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # uvicorn's default (proxy_headers on, 127.0.0.1 trusted) let any local client choose its address.
    assert _serve(monkeypatch, None)["proxy_headers"] is False


def test_trusted_proxies_are_the_only_ones_whose_headers_count(monkeypatch: pytest.MonkeyPatch) -> None:
    options = _serve(monkeypatch, "10.0.0.5, 192.168.7.0/24")
    assert options["proxy_headers"] is True and options["forwarded_allow_ips"] == ["10.0.0.5", "192.168.7.0/24"]


@pytest.mark.parametrize("value", ["*", "proxy.example", "10.0.0.300"])
def test_a_trusted_proxy_must_be_an_address_or_network(value: str) -> None:
    with pytest.raises(ValidationError, match="AWESOMME_TRUSTED_PROXIES"):
        Settings(trusted_proxies=value)
