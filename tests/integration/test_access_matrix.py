"""Every route of the server, for every kind of caller, against an explicit table of who may pass.

The routes come from the running server's OpenAPI schema, plus the ones it does not list (DICOMweb, the viewer, the
login page, MONAI Label's hidden routes): a route missing from ``EXPECTED`` fails the test. "Allowed" means the
request passed authorization: the payloads are harmless, so an allowed call may well end in a validation error
(which comes after authorization) but never starts training or deletes data. "Denied" is 401 or 403, a redirect
to the login page, or, for calls on another cohort's data, 404 (that data does not exist for the caller).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from awesomme.core.config import get_settings
from awesomme.core.db import session_scope
from awesomme.core.security import KeyPair, issue_access_token, new_key_pair
from awesomme.models import Prediction, User
from awesomme.orthanc.client import OrthancClient
from awesomme.services import identity
from tests.integration.conftest import (
    Account,
    Cohorts,
    StoredPatient,
    attach_to_cohort,
    create_account,
    monailabel_client,
    store_patient,
)

# -- callers ----------------------------------------------------------------------------------------------------
BROKEN = ("anonymous", "expired", "forged_signature", "unknown_kid", "tampered_claims", "disabled_user")
CALLERS = (*BROKEN, "no_cohort", "other_cohort_member", "member", "cohort_admin", "platform_admin")

EVERYONE = frozenset(CALLERS)
LOGGED_IN = frozenset({"no_cohort", "other_cohort_member", "member", "cohort_admin", "platform_admin"})
IN_A_COHORT = frozenset({"other_cohort_member", "member", "cohort_admin", "platform_admin"})
ALPHA = frozenset({"member", "cohort_admin", "platform_admin"})  # alpha's data: its member, its admin, root
ADMINS = frozenset({"cohort_admin", "platform_admin"})
ROOT = frozenset({"platform_admin"})


@dataclass(frozen=True)
class Cell:
    """Who passes, and the harmless request that tries (``{alpha_series}``-style fields are filled in)."""

    allowed: frozenset[str]
    path: str = ""  # concrete path (defaults to the template)
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None
    data: dict[str, str] | None = None
    on_hidden_data: bool = False  # a 404 means "not yours" here, so it counts as denied


NOT_A_JOB = b"[1]"  # jobs take a JSON object: a list passes authorization and stops at validation

EXPECTED: dict[tuple[str, str], Cell] = {
    # public
    ("GET", "/"): Cell(EVERYONE),
    ("GET", "/docs"): Cell(EVERYONE),
    ("GET", "/openapi.json"): Cell(EVERYONE),
    ("GET", "/favicon.ico"): Cell(EVERYONE),
    ("GET", "/login"): Cell(EVERYONE),
    ("GET", "/api/health"): Cell(EVERYONE),
    ("GET", "/api/auth/jwks"): Cell(EVERYONE),
    ("POST", "/api/auth/token"): Cell(EVERYONE, data={"grant_type": "client_credentials"}),
    ("POST", "/auth/token"): Cell(EVERYONE, data={"grant_type": "client_credentials"}),
    ("GET", "/auth/"): Cell(EVERYONE),
    ("POST", "/api/auth/session"): Cell(EVERYONE, data={"username": "{loner}", "password": "{loner_password}"}),
    ("DELETE", "/api/auth/session"): Cell(EVERYONE),
    ("POST", "/api/auth/register"): Cell(EVERYONE, json={}),
    # any logged-in user
    ("POST", "/api/auth/logout"): Cell(LOGGED_IN),
    ("GET", "/auth/token/valid"): Cell(LOGGED_IN),
    ("GET", "/info/"): Cell(LOGGED_IN),
    ("GET", "/ohif/{path}"): Cell(LOGGED_IN, path="/ohif/"),
    ("GET", "/viewer/app-config.js"): Cell(LOGGED_IN),
    ("GET", "/viewer/{path}"): Cell(LOGGED_IN, path="/viewer/"),
    ("GET", "/viewer-plugins/{path}"): Cell(LOGGED_IN, path="/viewer-plugins/awesomme-mode.mjs"),
    ("GET", "/api/users/me"): Cell(LOGGED_IN),
    ("POST", "/api/users/me/password"): Cell(LOGGED_IN, json={}),
    ("POST", "/api/users/me/tokens"): Cell(LOGGED_IN, json={}),
    ("GET", "/api/users/me/tokens"): Cell(LOGGED_IN),
    ("DELETE", "/api/users/me/tokens/{token_id}"): Cell(LOGGED_IN, path="/api/users/me/tokens/999999"),
    ("GET", "/api/cohorts"): Cell(LOGGED_IN),
    ("GET", "/api/cohorts/{cohort_id}"): Cell(ALPHA, path="/api/cohorts/{alpha}", on_hidden_data=True),
    ("GET", "/api/cohorts/{cohort_id}/deidentification"): Cell(
        ALPHA, path="/api/cohorts/{alpha}/deidentification", on_hidden_data=True
    ),
    ("POST", "/api/invites/redeem"): Cell(LOGGED_IN, json={}),
    ("GET", "/api/models"): Cell(LOGGED_IN),
    # cohort data
    ("GET", "/dicom-web/{path}"): Cell(
        ALPHA, path="/dicom-web/studies/{alpha_study}/series/{alpha_series}/metadata", on_hidden_data=True
    ),
    ("POST", "/dicom-web/{path}"): Cell(
        ADMINS, path="/dicom-web/studies", params={"cohort": "{alpha}"}, content=b"", on_hidden_data=True
    ),
    ("GET", "/proxy/dicom/{path}"): Cell(
        ALPHA, path="/proxy/dicom/wado/studies/{alpha_study}/series/{alpha_series}/metadata", on_hidden_data=True
    ),
    ("POST", "/proxy/dicom/{path}"): Cell(
        ADMINS, path="/proxy/dicom/wado/studies", params={"cohort": "{alpha}"}, content=b"", on_hidden_data=True
    ),
    ("GET", "/api/segmentations"): Cell(ALPHA, params={"series_uid": "{alpha_series}"}, on_hidden_data=True),
    ("POST", "/infer/{model}"): Cell(
        ALPHA, path="/infer/everything_mr", params={"image": "{alpha_series}", "output": "json"}, on_hidden_data=True
    ),
    ("POST", "/activelearning/{strategy}"): Cell(IN_A_COHORT, path="/activelearning/random", json={}),
    ("GET", "/datastore/"): Cell(IN_A_COHORT),
    ("HEAD", "/datastore/image"): Cell(ALPHA, params={"image": "{alpha_series}"}, on_hidden_data=True),
    ("GET", "/datastore/image"): Cell(ALPHA, params={"image": "{alpha_series}"}, on_hidden_data=True),
    ("GET", "/datastore/image/info"): Cell(ALPHA, params={"image": "{alpha_series}"}, on_hidden_data=True),
    ("PUT", "/datastore/image/info"): Cell(ALPHA, params={"image": "{alpha_series}"}, on_hidden_data=True),
    ("PUT", "/datastore/label"): Cell(ALPHA, params={"image": "{alpha_series}", "tag": "x"}, on_hidden_data=True),
    # MONAI Label's label check names the label in its ``image`` parameter.
    ("HEAD", "/datastore/label"): Cell(ALPHA, params={"image": "{alpha_label}", "tag": "final"}, on_hidden_data=True),
    ("GET", "/datastore/label"): Cell(ALPHA, params={"label": "{alpha_label}", "tag": "final"}, on_hidden_data=True),
    ("GET", "/datastore/label/info"): Cell(
        ALPHA, params={"label": "{alpha_label}", "tag": "final"}, on_hidden_data=True
    ),
    ("PUT", "/datastore/label/info"): Cell(
        ALPHA, params={"label": "{alpha_label}", "tag": "final"}, on_hidden_data=True
    ),
    ("PUT", "/datastore/updatelabelinfo"): Cell(
        ALPHA, params={"label": "{alpha_label}", "tag": "final"}, on_hidden_data=True
    ),
    # cohort admins
    ("POST", "/api/cohorts/{cohort_id}/studies"): Cell(ADMINS, path="/api/cohorts/{alpha}/studies", json={}),
    ("GET", "/api/cohorts/{cohort_id}/members"): Cell(ADMINS, path="/api/cohorts/{alpha}/members"),
    ("PUT", "/api/cohorts/{cohort_id}/members/{username}"): Cell(
        ADMINS, path="/api/cohorts/{alpha}/members/nobody.here", json={}
    ),
    ("DELETE", "/api/cohorts/{cohort_id}/members/{username}"): Cell(
        ADMINS, path="/api/cohorts/{alpha}/members/nobody.here"
    ),
    ("POST", "/api/cohorts/{cohort_id}/invites"): Cell(ADMINS, path="/api/cohorts/{alpha}/invites", json={}),
    ("GET", "/api/cohorts/{cohort_id}/invites"): Cell(ADMINS, path="/api/cohorts/{alpha}/invites"),
    ("DELETE", "/api/invites/{invite_id}"): Cell(ADMINS, path="/api/invites/999999"),
    ("GET", "/train/"): Cell(ADMINS),
    ("POST", "/train/{model}"): Cell(ADMINS, path="/train/everything_mr", content=NOT_A_JOB),
    ("GET", "/batch/infer"): Cell(ADMINS),
    ("POST", "/batch/infer/{model}"): Cell(ADMINS, path="/batch/infer/everything_mr", content=NOT_A_JOB),
    ("GET", "/scoring/"): Cell(ADMINS),
    ("POST", "/scoring/{method}"): Cell(ADMINS, path="/scoring/dice", content=NOT_A_JOB),
    # platform admins
    ("POST", "/api/cohorts"): Cell(ROOT, json={}),
    ("PUT", "/api/cohorts/{cohort_id}/deidentification"): Cell(
        ROOT, path="/api/cohorts/{alpha}/deidentification", json={}
    ),
    ("PUT", "/api/models/{name}/cohorts"): Cell(ROOT, path="/api/models/everything_mr/cohorts", json={}),
    ("GET", "/api/users"): Cell(ROOT),
    ("POST", "/api/users"): Cell(ROOT, json={}),
    ("GET", "/api/users/{username}/tokens"): Cell(ROOT, path="/api/users/nobody.here/tokens"),
    ("DELETE", "/api/users/{username}/tokens/{token_id}"): Cell(ROOT, path="/api/users/nobody.here/tokens/999999"),
    ("GET", "/api/audit"): Cell(ROOT, params={"limit": "1"}),
    ("GET", "/api/audit.csv"): Cell(ROOT, params={"limit": "1"}),
    ("POST", "/train/"): Cell(ROOT, content=NOT_A_JOB),
    ("DELETE", "/train/"): Cell(ROOT),
    ("DELETE", "/batch/infer"): Cell(ROOT),
    ("POST", "/scoring/"): Cell(ROOT, content=NOT_A_JOB),
    ("DELETE", "/scoring/"): Cell(ROOT),
    ("GET", "/model/{model}"): Cell(ROOT, path="/model/no_such_model"),
    ("GET", "/model/info/{model}"): Cell(ROOT, path="/model/info/no_such_model"),
    ("PUT", "/model/{model}"): Cell(ROOT, path="/model/no_such_model"),
    ("DELETE", "/model/{model}"): Cell(ROOT, path="/model/no_such_model"),
    ("POST", "/infer/wsi/{model}"): Cell(ROOT, path="/infer/wsi/no_such_model", json={}),
    ("POST", "/infer/wsi_v2/{model}"): Cell(ROOT, path="/infer/wsi_v2/no_such_model", json={}),
    ("PUT", "/datastore/"): Cell(ROOT),
    ("PUT", "/datastore/image"): Cell(ROOT),
    ("DELETE", "/datastore/"): Cell(ROOT, params={"id": "1.2.3.999"}),
    ("DELETE", "/datastore/image"): Cell(ROOT, params={"id": "1.2.3.999"}),
    ("DELETE", "/datastore/label"): Cell(ROOT, params={"id": "1.2.3.999", "tag": "final"}),
    ("GET", "/datastore/dataset"): Cell(ROOT),
    ("GET", "/session/{session_id}"): Cell(ROOT, path="/session/no-such-session"),
    ("PUT", "/session/"): Cell(ROOT),
    ("DELETE", "/session/{session_id}"): Cell(ROOT, path="/session/no-such-session"),
    ("GET", "/logs/"): Cell(ROOT, params={"lines": "1"}),
    ("GET", "/logs/gpu"): Cell(ROOT),
    # -- segmentations: import, interpolation, deletion, review ----------------------------------------------------
    # Which series or SEG, and the right to act on it, are checked in the service: nothing named here exists.
    ("POST", "/api/segmentations/import"): Cell(IN_A_COHORT, data={"series_uid": "1.2.3.999"}),
    ("POST", "/api/segmentations"): Cell(IN_A_COHORT, data={"series_uid": "1.2.3.999"}),
    ("POST", "/api/segmentations/interpolate"): Cell(IN_A_COHORT, json={}),
    ("DELETE", "/api/segmentations/{seg_uid}"): Cell(IN_A_COHORT, path="/api/segmentations/1.2.3.999"),
    ("POST", "/api/segmentations/{seg_uid}/review"): Cell(
        IN_A_COHORT, path="/api/segmentations/1.2.3.999/review", json={}
    ),
    # -- imports: cohort admins (the target cohort is checked in the service) ----------------------------------------
    ("POST", "/api/imports"): Cell(ADMINS, data={"cohort": "{alpha}", "kind": "dicom"}),
    ("GET", "/api/imports"): Cell(ADMINS),
    ("GET", "/api/imports/{import_id}"): Cell(ADMINS, path="/api/imports/999999"),
    ("GET", "/api/imports/{import_id}/mapping.csv"): Cell(ADMINS, path="/api/imports/999999/mapping.csv"),
    # -- radiomics ---------------------------------------------------------------------------------------------------
    ("POST", "/api/radiomics"): Cell(IN_A_COHORT, json={}),
    ("GET", "/api/radiomics"): Cell(ALPHA, params={"series_uid": "{alpha_series}"}, on_hidden_data=True),
    ("GET", "/api/radiomics/{feature_set_id}"): Cell(
        ALPHA, path="/api/radiomics/{alpha_feature_set}", on_hidden_data=True
    ),
    ("GET", "/api/radiomics/{feature_set_id}.csv"): Cell(
        ALPHA, path="/api/radiomics/{alpha_feature_set}.csv", on_hidden_data=True
    ),
    ("GET", "/api/radiomics/presets"): Cell(LOGGED_IN),
    ("POST", "/api/radiomics/presets"): Cell(ADMINS, json={}),
    # -- classification and predictions -----------------------------------------------------------------------------
    ("GET", "/api/classification/models"): Cell(LOGGED_IN),
    ("POST", "/api/classification/{model}/predict"): Cell(
        IN_A_COHORT, path="/api/classification/osteosarcoma_response/predict", json={}
    ),
    ("GET", "/api/predictions"): Cell(ALPHA, params={"series_uid": "{alpha_series}"}, on_hidden_data=True),
    ("GET", "/api/predictions/{prediction_id}.csv"): Cell(
        ALPHA, path="/api/predictions/{alpha_prediction}.csv", on_hidden_data=True
    ),
    ("GET", "/api/predictions/{prediction_id}.html"): Cell(
        ALPHA, path="/api/predictions/{alpha_prediction}.html", on_hidden_data=True
    ),
    # -- scores, agreement, research export --------------------------------------------------------------------------
    ("GET", "/api/score-types"): Cell(IN_A_COHORT),
    ("POST", "/api/score-types"): Cell(ADMINS, json={}),
    ("POST", "/api/scores"): Cell(IN_A_COHORT, json={}),
    ("GET", "/api/scores"): Cell(ALPHA, params={"cohort": "{alpha}"}, on_hidden_data=True),
    ("GET", "/api/agreement/segmentations"): Cell(ALPHA, params={"series_uid": "{alpha_series}"}, on_hidden_data=True),
    ("GET", "/api/agreement/segmentations.csv"): Cell(
        ALPHA, params={"series_uid": "{alpha_series}"}, on_hidden_data=True
    ),
    ("GET", "/api/agreement/scores"): Cell(
        ALPHA, params={"cohort": "{alpha}", "score_type": "mrs"}, on_hidden_data=True
    ),
    ("GET", "/api/agreement/scores.csv"): Cell(
        ALPHA, params={"cohort": "{alpha}", "score_type": "mrs"}, on_hidden_data=True
    ),
    ("GET", "/api/cohorts/{cohort_id}/export.csv"): Cell(ADMINS, path="/api/cohorts/{alpha}/export.csv"),
    # hospital PACS peers: platform admins configure, cohort admins use (no peer "nope": 404 past the access check)
    ("GET", "/api/pacs/peers"): Cell(ROOT),
    ("POST", "/api/pacs/peers"): Cell(ROOT, json={}),
    ("DELETE", "/api/pacs/peers/{name}"): Cell(ROOT, path="/api/pacs/peers/nope"),
    ("POST", "/api/pacs/peers/{name}/echo"): Cell(ROOT, path="/api/pacs/peers/nope/echo"),
    ("POST", "/api/pacs/{name}/query"): Cell(ADMINS, path="/api/pacs/nope/query", json={}),
    ("POST", "/api/pacs/{name}/retrieve"): Cell(ADMINS, path="/api/pacs/nope/retrieve", json={}),
    # cohort batches: cohort admins (the body's cohort and the batch's are checked in the service; no batch 999999)
    ("POST", "/api/batches"): Cell(ADMINS, json={}),
    ("GET", "/api/batches"): Cell(ADMINS, params={"cohort": "{alpha}"}, on_hidden_data=True),
    ("GET", "/api/batches/{batch_id}"): Cell(ADMINS, path="/api/batches/999999"),
    ("GET", "/api/batches/{batch_id}/items"): Cell(ADMINS, path="/api/batches/999999/items"),
    ("POST", "/api/batches/{batch_id}/cancel"): Cell(ADMINS, path="/api/batches/999999/cancel"),
    ("POST", "/api/batches/{batch_id}/resume"): Cell(ADMINS, path="/api/batches/999999/resume"),
}
# Not in the OpenAPI schema, walked all the same.
UNLISTED = [
    ("GET", "/dicom-web/{path}"),
    ("POST", "/dicom-web/{path}"),
    ("GET", "/proxy/dicom/{path}"),
    ("POST", "/proxy/dicom/{path}"),
    ("GET", "/ohif/{path}"),
    ("GET", "/viewer/app-config.js"),
    ("GET", "/viewer/{path}"),
    ("GET", "/viewer-plugins/{path}"),
    ("GET", "/login"),
    ("GET", "/"),
    ("GET", "/docs"),
    ("GET", "/openapi.json"),
    ("GET", "/favicon.ico"),
    ("POST", "/infer/wsi/{model}"),
    ("PUT", "/datastore/"),
    ("DELETE", "/datastore/"),
    ("PUT", "/datastore/updatelabelinfo"),
    ("POST", "/train/"),
    ("POST", "/scoring/"),
]


# -- tokens of every kind ---------------------------------------------------------------------------------------
def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _decode(part: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def _signing_key() -> KeyPair:
    with session_scope() as session:
        return identity.signing_key(session, get_settings())  # decrypted with the key-encryption key


def _token_for(username: str, key: KeyPair, ttl: timedelta) -> str:
    with session_scope() as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None
        return issue_access_token(key, "awesomme", user.username, user.id, user.token_version, ttl)[0]


@dataclass
class World:
    server_url: str
    headers: dict[str, dict[str, str]]
    fill: dict[str, str]
    fresh_token: dict[str, Callable[[], dict[str, str]]]


@pytest.fixture(scope="module")
def world(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory
) -> World:
    out = tmp_path_factory.mktemp("matrix")
    alpha: StoredPatient = store_patient(orthanc, "osteosarcoma-mr", 801, out / "alpha")
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[alpha.patient.study_uid])
    bind = httpx.put(
        f"{server_url}/api/models/everything_mr/cohorts", json={"cohorts": ["alpha"]}, headers=admin.headers(server_url)
    )
    assert bind.status_code == 200
    client = monailabel_client(server_url, admin, out)
    label_file, _ = client.infer("everything_mr", alpha.patient.series_uid, {})
    label = client.save_label(alpha.patient.series_uid, label_file, tag="final")["label"]
    feature_set = httpx.post(
        f"{server_url}/api/radiomics",
        json={"series_uid": alpha.patient.series_uid, "seg_uid": label, "preset": "ibsi-original"},
        headers=admin.headers(server_url),
        timeout=120,
    )
    assert feature_set.status_code == 201, feature_set.text

    accounts = {
        "no_cohort": cohorts.loner,
        "other_cohort_member": cohorts.beta_member,
        "member": cohorts.alpha_member,
        "cohort_admin": cohorts.alpha_admin,
        "platform_admin": admin,
    }
    headers = {name: account.headers(server_url) for name, account in accounts.items()}
    member_token = headers["member"]["Authorization"].split()[1]
    head, payload, signature = member_token.split(".")
    stranger = new_key_pair()
    headers["anonymous"] = {}
    headers["expired"] = _bearer(_token_for("alpha.member", _signing_key(), timedelta(seconds=-5)))
    forged = KeyPair(_decode(head)["kid"], stranger.private_pem, stranger.public_jwk)  # our kid, another key
    headers["forged_signature"] = _bearer(_token_for("alpha.member", forged, timedelta(minutes=30)))
    headers["unknown_kid"] = _bearer(_token_for("alpha.member", stranger, timedelta(minutes=30)))
    tampered = {**_decode(payload), "sub": admin.username}
    headers["tampered_claims"] = _bearer(f"{head}.{_b64(tampered)}.{signature}")
    doomed = create_account("matrix.disabled")
    attach_member = httpx.put(
        f"{server_url}/api/cohorts/{cohorts.alpha}/members/{doomed.username}",
        json={"role": "admin"},
        headers=admin.headers(server_url),
    )
    assert attach_member.status_code == 200
    headers["disabled_user"] = doomed.headers(server_url)
    disable = [sys.executable, "-m", "awesomme.cli", "user", "disable", "--username", doomed.username]
    assert subprocess.run(disable, capture_output=True, check=False).returncode == 0

    with session_scope() as session:  # a stored prediction on alpha's series (its model need not be loaded)
        prediction = Prediction(
            study_uid=alpha.patient.study_uid,
            series_uid=alpha.patient.series_uid,
            model_name="osteosarcoma_response",
            model_version="0.0.0",
            label="good",
            probabilities={"good": 0.75, "poor": 0.25},
            provenance={"notice": "DEMO model - not for clinical use"},
            created_by=admin.username,
        )
        session.add(prediction)
        session.flush()
        prediction_id = prediction.id

    fill = {
        "alpha": str(cohorts.alpha),
        "alpha_study": alpha.patient.study_uid,
        "alpha_series": alpha.patient.series_uid,
        "alpha_label": label,
        "alpha_feature_set": str(feature_set.json()["id"]),
        "alpha_prediction": str(prediction_id),
        "loner": cohorts.loner.username,
        "loner_password": cohorts.loner.password,
    }
    fresh = {name: (lambda account=account: account.headers(server_url)) for name, account in accounts.items()}
    return World(server_url, headers, fill, fresh)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the walk ---------------------------------------------------------------------------------------------------
def _schema_routes(server_url: str) -> set[tuple[str, str]]:
    schema = httpx.get(f"{server_url}/openapi.json").json()
    return {
        (method.upper(), path.replace("{path:path}", "{path}"))
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("get", "put", "post", "delete", "head", "patch")
    }


def _fill(text: str, world: World) -> str:
    for key, value in world.fill.items():
        text = text.replace("{" + key + "}", value)
    return text


def _denied(cell: Cell, reply: httpx.Response) -> bool:
    if reply.status_code in (401, 403):
        return True
    if reply.status_code in (302, 303, 307) and reply.headers.get("location", "").startswith("/login"):
        return True
    return cell.on_hidden_data and reply.status_code == 404


def _call(world: World, method: str, template: str, cell: Cell, caller: str) -> httpx.Response:
    headers = dict(world.headers[caller])
    if template == "/api/auth/logout" and caller in world.fresh_token:
        headers = world.fresh_token[caller]()  # logging out spends the token: use one of its own
    params = {key: _fill(value, world) for key, value in cell.params.items()}
    data = {key: _fill(value, world) for key, value in cell.data.items()} if cell.data else None
    return httpx.request(
        method,
        world.server_url + _fill(cell.path or template, world),
        params=params,
        json=cell.json,
        content=cell.content,
        data=data,
        headers=headers,
        timeout=120,
        follow_redirects=False,
    )


def test_every_route_for_every_caller(world: World) -> None:
    routes = _schema_routes(world.server_url) | set(UNLISTED)
    missing = routes - set(EXPECTED)
    assert not missing, f"routes without an expected row: {sorted(missing)}"
    stale = set(EXPECTED) - routes
    assert not stale, f"rows for routes the server does not have: {sorted(stale)}"
    wrong = []
    for (method, template), cell in sorted(EXPECTED.items()):
        for caller in CALLERS:
            reply = _call(world, method, template, cell, caller)
            expected_allowed = caller in cell.allowed
            if reply.status_code >= 500 or expected_allowed == _denied(cell, reply):  # a 5xx is never right
                wrong.append(f"{method} {template} as {caller}: {reply.status_code} {reply.text[:120]}")
    print(f"access matrix: {len(EXPECTED)} routes x {len(CALLERS)} callers = {len(EXPECTED) * len(CALLERS)} cells")
    assert not wrong, "\n".join(wrong)
