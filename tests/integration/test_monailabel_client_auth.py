"""MONAI Label's own client (as the 3D Slicer module uses it) logs in with our accounts through ``/auth``."""

from __future__ import annotations

import httpx
import pytest
from monailabel.client import MONAILabelClient
from monailabel.client.client import MONAILabelClientException

from awesomme.core.config import Settings
from tests.integration.conftest import Account, create_account


@pytest.fixture(scope="module")
def slicer_user(platform: Settings) -> Account:
    return create_account("slicer.user")


def test_the_client_logs_in_and_calls_the_server(server_url: str, slicer_user: Account) -> None:
    client = MONAILabelClient(server_url)
    assert client.auth_enabled() is True
    with pytest.raises(MONAILabelClientException):  # nothing works before logging in
        client.info()

    token = client.auth_token(slicer_user.username, slicer_user.password)
    assert token["token_type"] == "bearer" and token["access_token"] and token["expires_in"] > 0
    ours = slicer_user.token(server_url)
    assert set(token) == set(ours)

    client.update_auth(token)
    assert client.auth_valid_token() is True
    assert client.info()["name"] == "AWESOMME"
    valid = httpx.get(f"{server_url}/auth/token/valid", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert valid.status_code == 200 and valid.json()["username"] == slicer_user.username


def test_a_wrong_password_raises(server_url: str, slicer_user: Account) -> None:
    client = MONAILabelClient(server_url)
    with pytest.raises(MONAILabelClientException) as refused:
        client.auth_token(slicer_user.username, "not the password")
    assert refused.value.status_code == 401
    client.update_auth({"token_type": "bearer", "access_token": "forged.token.value"})
    assert client.auth_valid_token() is False
