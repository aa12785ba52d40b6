"""Client addresses of their own for tests: the whole of 127.0.0.0/8 reaches the server listening on 127.0.0.1.

The server trusts no ``X-Forwarded-For`` (``AWESOMME_TRUSTED_PROXIES`` is empty): the client address it throttles
and journals is the TCP peer's. A test that fails logins or invite codes on purpose therefore connects from a
loopback address of its own, so the throttle it fills refuses no other test.
"""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import httpx
import requests
from requests_toolbelt.adapters.source import SourceAddressAdapter

__all__ = ["client_from", "loopback_for", "next_loopback", "post_from", "requests_session_from"]

_fresh = itertools.count(1)


def loopback_for(name: str) -> str:
    """A loopback address named after ``name`` (the same for the same name), never 127.0.0.1."""
    digest = hashlib.sha256(name.encode()).digest()
    return f"127.{digest[0] % 254 + 1}.{digest[1]}.{digest[2] % 254 + 1}"


def next_loopback() -> str:
    """A loopback address no earlier call of this process returned (127.0.0.0/8 holds 16 million)."""
    n = next(_fresh)
    return f"127.{(n >> 16) % 254 + 1}.{(n >> 8) & 255}.{n & 255}"


def client_from(address: str, **kwargs: Any) -> httpx.Client:
    """An httpx client whose connections leave from ``address``."""
    kwargs.setdefault("timeout", 60)
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), **kwargs)


def post_from(address: str, url: str, **kwargs: Any) -> httpx.Response:
    with client_from(address) as client:
        return client.post(url, **kwargs)


def requests_session_from(address: str) -> requests.Session:
    """A requests session (schemathesis' client) whose connections leave from ``address``."""
    session = requests.Session()
    adapter = SourceAddressAdapter(address)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
