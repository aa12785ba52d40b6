"""Who may call what: the one route table of the platform, and the middleware that enforces it.

Every route of the server (MONAI Label's, ours, ``/dicom-web``) must have a row here; a route without one is
refused (default deny), and a test fails when the table and the app's routes disagree. The ``Access`` level is
the coarse rule; a row's ``check`` adds the per-object rule (the series must be in one of the caller's cohorts,
the model bound to one of them). Listings are filtered further down: the middleware publishes what the caller
may see (``current_visibility``) and the datastore and ``/dicom-web`` honour it.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl

import anyio.from_thread
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import iter_route_contexts
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from awesomme.core import audit
from awesomme.core.audit import AuditContext, Outcome, audit_context
from awesomme.core.config import get_settings
from awesomme.core.db import session_scope
from awesomme.core.errors import AwesommeError, Forbidden, InvalidInput, NotFound, Unauthorized
from awesomme.core.visibility import (
    JOB_COHORTS_FIELD,
    Principal,
    Visibility,
    cohorts_of_series,
    current_visibility,
    load_principal,
    visibility_of,
    visibility_of_cohorts,
)
from awesomme.inference.registry import get_registry
from awesomme.models import User
from awesomme.orthanc.client import IMAGE_MODALITIES, counting_calls, get_client, path_shape
from awesomme.orthanc.datastore import find_label
from awesomme.orthanc.visible import one_lookup_per_request, visible_series_state
from awesomme.services import app_info, identity, personal_tokens, sample_grants
from awesomme.services.cohorts import bound_cohorts

__all__ = ["ROUTES", "SESSION_COOKIE", "Access", "AccessMiddleware", "Rule", "access_table_markdown", "route_key"]

logger = logging.getLogger(__name__)
SESSION_COOKIE = "awesomme_session"
# Pages a browser opens: without a session they send it to /login (other routes answer 401).
_LOGIN_FIRST = ("/ohif", "/viewer/")


class Access(StrEnum):
    ANYONE = "anyone"
    USER = "any logged-in user"
    MEMBER = "member or admin of a cohort"
    COHORT_ADMIN = "admin of a cohort"
    PLATFORM_ADMIN = "platform admin"


@dataclass
class Call:
    """What a per-object check sees of a request."""

    principal: Principal
    visibility: Visibility
    query: dict[str, str]
    path: dict[str, Any]
    session: Session
    # Reads the body when a check asks for it (``Rule.reads_body``), after the caller was authenticated.
    reader: BodyReader | None = None

    @property
    def body(self) -> dict[str, Any]:
        """The body's fields: a form's text fields (a file's value is None), or a JSON object's."""
        return self.reader.fields() if self.reader is not None else {}


@dataclass(frozen=True)
class Rule:
    access: Access
    # Per-object rule; may return fields to set in the JSON body (the cohorts a job acts for).
    check: Callable[[Call], dict[str, Any] | None] | None = None
    note: str = field(default="", compare=False)
    # The audit journal's action name: every call of the route is journaled, refused ones too.
    audit: str = ""
    # The check reads the body (``Call.body``): the middleware reads it first and replays it to the handler.
    reads_body: bool = field(default=False, compare=False)
    # False: a personal access token is refused here (managing tokens, changing the password).
    personal_tokens: bool = field(default=True, compare=False)


class PayloadTooLarge(AwesommeError):
    status_code = 413


# -- reading a body the check needs -----------------------------------------------------------------------------
_IN_MEMORY_BYTES = 1024**2  # larger bodies (label files, uploads) are spooled to a temporary file


class BodyReader:
    """The request body for a check running on a worker thread: read on the event loop at the first ask, once;
    ``receive`` then replays the very bytes read to the handler (the original ``receive`` if nothing was read)."""

    def __init__(self, scope: Scope, receive: Receive, max_bytes: int) -> None:
        self._scope, self.receive, self._max_bytes = scope, receive, max_bytes
        self._fields: dict[str, Any] | None = None

    def fields(self) -> dict[str, Any]:
        if self._fields is None:
            self._fields, self.receive = anyio.from_thread.run(
                read_body_fields, self._scope, self.receive, self._max_bytes
            )
        return self._fields


async def read_body_fields(scope: Scope, receive: Receive, max_bytes: int) -> tuple[dict[str, Any], Receive]:
    """The body's fields as the handler will read them, and a ``receive`` that replays the very same bytes.

    A form is parsed by the parser FastAPI uses (its text fields; a field given twice is refused: two readers
    could take different ones); a JSON body must be an object. Other bodies have no fields.
    """
    spool = tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY_BYTES)  # noqa: SIM115 - closed when the call ends
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise InvalidInput("the client went away before sending its body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            spool.close()
            raise PayloadTooLarge(f"the body is larger than {max_bytes} bytes")
        spool.write(chunk)
        if not message.get("more_body"):
            break

    def replayer(last: bool) -> Receive:
        """The spooled bytes from the start; the last replay closes the spool (garbage collection does otherwise)."""
        spool.seek(0)

        async def replay() -> Message:
            if spool.closed or (spool.tell() >= size and size):
                return await receive()  # the body was replayed whole: what follows is the client's disconnect
            chunk = spool.read(64 * 1024)
            more = spool.tell() < size
            if last and not more:
                spool.close()
            return {"type": "http.request", "body": chunk, "more_body": more}

        return replay

    try:
        fields = await _fields_of(scope, replayer(last=False))
    except BaseException:
        spool.close()
        raise
    return fields, replayer(last=True)


async def _fields_of(scope: Scope, receive: Receive) -> dict[str, Any]:
    request = Request(scope, receive)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.form()
        except (HTTPException, MultiPartException) as error:
            detail = getattr(error, "detail", None) or getattr(error, "message", "")
            raise InvalidInput(f"the form cannot be read: {str(detail)[:120]}") from None
        try:
            fields: dict[str, Any] = {}
            for key, value in form.multi_items():
                if key in fields:
                    raise InvalidInput(f"the form field {key[:40]!r} is given more than once")
                fields[key] = value if isinstance(value, str) else None  # a file: present, not read here
            return fields
        finally:
            await form.close()
    if kind == "application/json" or kind.endswith("+json"):
        raw = await request.body()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw, parse_constant=_no_constant)
        except ValueError as error:
            raise InvalidInput(f"the body is not valid JSON: {str(error)[:120]}") from None
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object")
        return body
    return {}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_params(call: Call, name: str = "params") -> dict[str, Any]:
    """MONAI Label's ``params`` form field, a JSON object in text: 422 when it is anything else."""
    text = call.body.get(name)
    if text is None or text == "":
        return {}
    if not isinstance(text, str):
        raise InvalidInput(f"{name} must be a JSON object in a text field")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except ValueError as error:
        raise InvalidInput(f"{name} is not valid JSON: {str(error)[:120]}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{name} must be a JSON object")
    return value


def refuse_keys(values: dict[str, Any], keys: frozenset[str], where: str) -> None:
    """Keys that would say what runs on what: the path and the query decide those, after the check."""
    for key in sorted(keys & set(values)):
        raise InvalidInput(f"{where} may not set {key!r}: it is decided by the request's path and query")


# MONAI Label merges ``params`` into the request after the path's model and the query's image: these keys would
# choose another model, series, session or input file than the ones checked (and journaled).
INFER_REQUEST_KEYS = frozenset({"model", "image", "session_id", "session", "label"})
# A saved label's image and tag come from the query; ``params`` only describe it.
LABEL_REQUEST_KEYS = frozenset({"image", "label", "tag", "label_id", "image_id"})
# An active learning request's strategy is the path's.
SAMPLE_REQUEST_KEYS = frozenset({"strategy"})


# -- per-object checks ------------------------------------------------------------------------------------------
def _visible_series(call: Call, uid: str) -> tuple[str, str]:
    """(study, series) of a series the caller may see; 404 otherwise (another cohort's data does not exist)."""
    if not uid:
        raise NotFound("name a series with ?image=<SeriesInstanceUID>")
    state = visible_series_state(get_client(), call.visibility, uid)  # absent and not yours read the same
    return state.study_uid, uid


def image_param(call: Call) -> None:
    _visible_series(call, call.query.get("image", ""))


def series_uid_param(call: Call) -> None:
    _visible_series(call, call.query.get("series_uid", ""))


def label_param(call: Call) -> None:
    """``label`` names a SEG, or (with ``tag``) an image whose newest SEG of that tag is served (as the datastore
    finds it)."""
    record = find_label(call.session, call.query.get("label", ""), call.query.get("tag", ""))
    if record is None or not call.visibility.sees_series(record.study_uid, record.source_series_uid):
        raise NotFound(f"no label {call.query.get('label', '')} in your cohorts")


def _model_config(name: str) -> Any:
    model = get_registry().models.get(name)
    if model is None:
        raise NotFound(f"no model {name}")
    return model.config


def may_infer(call: Call) -> None:
    """A model runs on a series when one of the series' cohorts is the caller's and is bound to the model.

    ``params`` may not name another model, series or session: what was checked is what runs (and is journaled).
    """
    refuse_keys(json_params(call), INFER_REQUEST_KEYS, "params")
    if call.query.get("output") == "dicom_seg":  # MONAI Label's conversion needs its own DICOMweb datastore
        raise InvalidInput("output=dicom_seg is not offered: the SEG is stored, or ask params result_extension '.dcm'")
    if call.principal.platform_admin:
        if not (call.query.get("image") or call.query.get("session_id") or "file" in call.body):
            raise InvalidInput("name a series with ?image=<SeriesInstanceUID>, a session, or send a file")
        return
    if call.query.get("session_id"):
        raise Forbidden("inference on uploaded images (sessions) is for platform admins: name a series with ?image=")
    study_uid, series_uid = _visible_series(call, call.query.get("image", ""))
    config = _model_config(call.path["model"])
    usable = bound_cohorts(call.session, config) & cohorts_of_series(call.session, study_uid, series_uid)
    if not usable & set(call.principal.roles):
        raise Forbidden(f"model {config.name} is not bound to any of your cohorts holding series {series_uid}")


def image_info_update(call: Call) -> None:
    json_params(call, "info")
    image_param(call)


def label_info_update(call: Call) -> None:
    json_params(call, "info")  # /datastore/label/info
    json_params(call, "params")  # /datastore/updatelabelinfo
    label_param(call)


def image_upload(call: Call) -> None:
    json_params(call)


def may_save_label(call: Call) -> None:
    """A label of a series of the caller's cohorts; ``params`` describe it and may not name another series."""
    refuse_keys(json_params(call), LABEL_REQUEST_KEYS, "params")
    _visible_series(call, call.query.get("image", ""))


def may_sample(call: Call) -> dict[str, Any]:
    """Active learning picks among the caller's series; a model it runs (``model``) must be bound to the cohorts
    it picks from, which narrow to those the model is bound to."""
    refuse_keys(call.body, SAMPLE_REQUEST_KEYS, "the request")
    name = call.body.get("model")
    if name is None and call.path.get("strategy") == "uncertainty":  # 3D Slicer's module names no model
        name = _uncertainty_model(call)
    elif name is None:
        return {JOB_COHORTS_FIELD: None if call.principal.platform_admin else sorted(call.principal.roles)}
    if not isinstance(name, str):
        raise InvalidInput("model must be a model's name")
    config = _model_config(name)
    if call.principal.platform_admin:
        return {JOB_COHORTS_FIELD: None, "model": config.name}
    cohorts = bound_cohorts(call.session, config) & set(call.principal.roles)
    if not cohorts:
        raise Forbidden(f"model {config.name} is not bound to any of your cohorts")
    return {JOB_COHORTS_FIELD: sorted(cohorts), "model": config.name}


def _uncertainty_model(call: Call) -> str:
    """The model the uncertainty strategy runs when the caller names none: of the models bound to one of the
    caller's cohorts (any, for a platform admin), the one with the most series of its modality in those cohorts
    (then by name); 422 naming the parameter when no model applies to any of them."""
    series = [
        (str(hit.StudyInstanceUID), str(hit.SeriesInstanceUID), str(getattr(hit, "Modality", "")))
        for hit in get_client().find_series(IMAGE_MODALITIES)
    ]
    ranked: list[tuple[int, str]] = []
    for name, model in sorted(get_registry().models.items()):
        config = model.config
        if call.principal.platform_admin:
            scope = call.visibility
        else:
            cohorts = bound_cohorts(call.session, config) & set(call.principal.roles)
            if not cohorts:
                continue
            scope = visibility_of_cohorts(call.session, cohorts)
        count = sum(
            1 for study, uid, modality in series if modality == config.modality and scope.sees_series(study, uid)
        )
        if count:
            ranked.append((-count, name))
    if not ranked:
        raise InvalidInput(
            "the uncertainty strategy runs a model: name it with the parameter 'model' (no model bound to your "
            "cohorts applies to their series' modalities)"
        )
    return min(ranked)[1]


def job_for_bound_model(call: Call) -> dict[str, Any]:
    """Training and batch inference of a model: platform admins on all data, cohort admins on their bound cohorts.

    The job runs the path's model: a ``model`` in the body (MONAI Label merges it after the path's) is overwritten.
    """
    config = _model_config(call.path["model"])
    if call.principal.platform_admin:
        return {JOB_COHORTS_FIELD: None, "model": config.name}
    cohorts = bound_cohorts(call.session, config) & call.principal.administered
    if not cohorts:
        raise Forbidden(f"model {config.name} is not bound to a cohort you administer")
    return {JOB_COHORTS_FIELD: sorted(cohorts), "model": config.name}


def no_pathology_models(call: Call) -> None:
    """MONAI Label's whole-slide routes: this platform has no pathology models (its handler would answer 500)."""
    raise NotFound("no whole-slide (pathology) models on this platform")


def gpu_listed(call: Call) -> None:
    """MONAI Label answers 500 where ``nvidia-smi`` is missing: say so instead."""
    if shutil.which("nvidia-smi") is None:
        raise NotFound("no GPU information on this server: nvidia-smi is not installed")


def trains_every_model(call: Call) -> dict[str, Any]:
    """``POST /train/`` (the bundled viewer's "Update Model") trains every model of the platform on all its data:
    a platform admin's job. A cohort admin is told which models to train one by one instead."""
    if call.principal.platform_admin:
        return {JOB_COHORTS_FIELD: None}
    mine = app_info.trainable_models(call.session, call.principal)
    routes = ", ".join(f"POST /train/{name}" for name in mine) or "none: no model is bound to a cohort you administer"
    raise Forbidden(f"POST /train/ trains every model on all data, for platform admins only; train yours: {routes}")


def job_for_administered(call: Call) -> dict[str, Any]:
    if call.principal.platform_admin:
        return {JOB_COHORTS_FIELD: None}
    return {JOB_COHORTS_FIELD: sorted(call.principal.administered)}


# -- the table --------------------------------------------------------------------------------------------------
A = Access
ROUTES: dict[tuple[str, str], Rule] = {
    # Public: documentation, health, logging in, static files of the viewer.
    ("GET", "/"): Rule(A.ANYONE, note="API documentation page"),
    ("GET", "/docs"): Rule(A.ANYONE),
    ("GET", "/docs/{name}"): Rule(A.ANYONE, note="the documentation page's own files"),
    ("GET", "/openapi.json"): Rule(A.ANYONE, note="the API's shape, no data"),
    ("HEAD", "/openapi.json"): Rule(A.ANYONE),
    ("GET", "/favicon.ico"): Rule(A.ANYONE),
    ("*", "/static"): Rule(A.ANYONE, note="MONAI Label's static files (no data)"),
    ("GET", "/login"): Rule(A.ANYONE),
    ("GET", "/api/health"): Rule(A.ANYONE, note="monitors need no account"),
    ("POST", "/api/auth/token"): Rule(A.ANYONE, audit="auth.token"),
    ("GET", "/api/auth/jwks"): Rule(A.ANYONE),
    ("POST", "/api/auth/session"): Rule(A.ANYONE, audit="auth.session"),
    ("DELETE", "/api/auth/session"): Rule(A.ANYONE, note="ends the cookie's session, if any", audit="auth.session.end"),
    ("POST", "/api/auth/register"): Rule(A.ANYONE, note="needs a valid invite code", audit="user.register"),
    ("GET", "/auth/"): Rule(A.ANYONE, note="MONAI Label clients ask whether login is needed"),
    ("POST", "/auth/token"): Rule(A.ANYONE, audit="auth.token"),
    # Any logged-in user.
    ("POST", "/api/auth/logout"): Rule(
        A.USER, note="not with a personal access token (it has no session)", audit="auth.logout", personal_tokens=False
    ),
    ("GET", "/auth/token/valid"): Rule(A.USER),
    ("GET", "/info/"): Rule(A.USER, note="models and strategies, no patient data"),
    ("GET", "/ohif/{path:path}"): Rule(A.USER, note="the viewer's files; data comes through the filtered proxy"),
    ("GET", "/viewer/app-config.js"): Rule(A.USER, note="the AWESOMME viewer's settings: our /dicom-web only"),
    ("GET", "/viewer/{path:path}"): Rule(A.USER, note="the AWESOMME viewer's files; data comes through /dicom-web"),
    ("GET", "/viewer-plugins/{path:path}"): Rule(A.USER, note="our extension and mode for the AWESOMME viewer"),
    ("GET", "/api/users/me"): Rule(A.USER),
    ("POST", "/api/users/me/password"): Rule(
        A.USER, note="not with a personal access token", audit="user.password.change", personal_tokens=False
    ),
    ("POST", "/api/users/me/tokens"): Rule(
        A.USER, note="not with a personal access token", audit="pat.create", personal_tokens=False
    ),
    ("GET", "/api/users/me/tokens"): Rule(A.USER, note="not with a personal access token", personal_tokens=False),
    ("DELETE", "/api/users/me/tokens/{token_id}"): Rule(
        A.USER, note="mine; not with a personal access token", audit="pat.revoke", personal_tokens=False
    ),
    ("GET", "/api/cohorts"): Rule(A.USER, note="mine (all, for platform admins)"),
    ("GET", "/api/cohorts/{cohort_id}"): Rule(A.USER, note="404 unless mine"),
    ("GET", "/api/cohorts/{cohort_id}/deidentification"): Rule(A.USER, note="404 unless mine (any: platform admins)"),
    ("POST", "/api/invites/redeem"): Rule(A.USER, audit="invite.redeem"),
    ("GET", "/api/models"): Rule(A.USER, note="models usable on my cohorts' data"),
    # Members: their cohorts' data, filtered or checked object by object.
    ("GET", "/dicom-web/{path:path}"): Rule(A.MEMBER, note="QIDO filtered, WADO refused outside"),
    ("POST", "/dicom-web/{path:path}"): Rule(
        A.MEMBER, note="STOW: cohort admins into their cohort", audit="data.stored"
    ),
    ("GET", "/proxy/dicom/{path:path}"): Rule(A.MEMBER, note="the bundled viewer's DICOMweb, as /dicom-web"),
    ("POST", "/proxy/dicom/{path:path}"): Rule(
        A.MEMBER,
        note="the bundled viewer's Upload: the STOW of /dicom-web, into the one cohort I administer",
        audit="data.stored",
    ),
    ("GET", "/api/segmentations"): Rule(A.MEMBER, series_uid_param),
    ("POST", "/infer/{model}"): Rule(A.MEMBER, may_infer, audit="inference", reads_body=True),
    ("POST", "/activelearning/{strategy}"): Rule(
        A.MEMBER, may_sample, note="picks among my cohorts' series", audit="sample.next", reads_body=True
    ),
    ("GET", "/datastore/"): Rule(A.MEMBER, note="my cohorts' series"),
    ("HEAD", "/datastore/image"): Rule(A.MEMBER, image_param),
    ("GET", "/datastore/image"): Rule(
        A.MEMBER, image_param, note="or once, tokenless: an active learning sample's grant", audit="data.exported"
    ),
    ("GET", "/datastore/image/info"): Rule(A.MEMBER, image_param),
    ("PUT", "/datastore/image/info"): Rule(A.MEMBER, image_info_update, audit="image.info.update", reads_body=True),
    ("PUT", "/datastore/label"): Rule(A.MEMBER, may_save_label, audit="label.save", reads_body=True),
    ("HEAD", "/datastore/label"): Rule(A.MEMBER, image_param),
    ("GET", "/datastore/label"): Rule(A.MEMBER, label_param, audit="data.exported"),
    ("GET", "/datastore/label/info"): Rule(A.MEMBER, label_param),
    ("PUT", "/datastore/label/info"): Rule(A.MEMBER, label_info_update, audit="label.info.update", reads_body=True),
    ("PUT", "/datastore/updatelabelinfo"): Rule(
        A.MEMBER, label_info_update, audit="label.info.update", reads_body=True
    ),
    # Cohort admins: their cohorts' members, codes and jobs (the cohort itself is checked in the service).
    ("POST", "/api/cohorts/{cohort_id}/studies"): Rule(A.COHORT_ADMIN, audit="cohort.attach"),
    ("GET", "/api/cohorts/{cohort_id}/members"): Rule(A.COHORT_ADMIN),
    ("PUT", "/api/cohorts/{cohort_id}/members/{username}"): Rule(
        A.COHORT_ADMIN,
        note="cohort admins change the role of a member; platform admins also add anyone (others join by invite)",
        audit="membership.set",
    ),
    ("DELETE", "/api/cohorts/{cohort_id}/members/{username}"): Rule(A.COHORT_ADMIN, audit="membership.remove"),
    ("POST", "/api/cohorts/{cohort_id}/invites"): Rule(A.COHORT_ADMIN, audit="invite.create"),
    ("GET", "/api/cohorts/{cohort_id}/invites"): Rule(A.COHORT_ADMIN),
    ("DELETE", "/api/invites/{invite_id}"): Rule(A.COHORT_ADMIN, audit="invite.revoke"),
    ("GET", "/train/"): Rule(A.COHORT_ADMIN, note="jobs of cohorts I administer (all: platform admins)"),
    ("POST", "/train/{model}"): Rule(A.COHORT_ADMIN, job_for_bound_model, audit="training.start"),
    ("POST", "/train/"): Rule(
        A.COHORT_ADMIN, trains_every_model, note="every model: platform admins (403 names mine)", audit="training.start"
    ),
    ("GET", "/batch/infer"): Rule(A.COHORT_ADMIN, note="jobs of cohorts I administer (all: platform admins)"),
    ("POST", "/batch/infer/{model}"): Rule(A.COHORT_ADMIN, job_for_bound_model, audit="batch.start"),
    ("GET", "/scoring/"): Rule(A.COHORT_ADMIN, note="jobs of cohorts I administer (all: platform admins)"),
    ("POST", "/scoring/{method}"): Rule(A.COHORT_ADMIN, job_for_administered, audit="scoring.start"),
    # Platform admins: the whole store, models, users, sessions on uploaded images, logs.
    ("GET", "/api/audit"): Rule(A.PLATFORM_ADMIN),
    ("GET", "/api/audit.csv"): Rule(A.PLATFORM_ADMIN),
    ("POST", "/api/cohorts"): Rule(A.PLATFORM_ADMIN, audit="cohort.create"),
    ("PUT", "/api/cohorts/{cohort_id}/deidentification"): Rule(
        A.PLATFORM_ADMIN, note="identified or not, Basic Profile options", audit="cohort.deidentification.set"
    ),
    ("PUT", "/api/models/{name}/cohorts"): Rule(A.PLATFORM_ADMIN, audit="model.bind"),
    ("GET", "/api/users"): Rule(A.PLATFORM_ADMIN),
    ("POST", "/api/users"): Rule(A.PLATFORM_ADMIN, audit="user.create"),
    ("GET", "/api/users/{username}/tokens"): Rule(
        A.PLATFORM_ADMIN, note="not with a personal access token", personal_tokens=False
    ),
    ("DELETE", "/api/users/{username}/tokens/{token_id}"): Rule(
        A.PLATFORM_ADMIN, note="not with a personal access token", audit="pat.revoke", personal_tokens=False
    ),
    ("DELETE", "/train/"): Rule(A.PLATFORM_ADMIN, audit="training.stop"),
    ("DELETE", "/batch/infer"): Rule(A.PLATFORM_ADMIN, audit="batch.stop"),
    ("POST", "/scoring/"): Rule(A.PLATFORM_ADMIN, job_for_administered, audit="scoring.start"),
    ("DELETE", "/scoring/"): Rule(A.PLATFORM_ADMIN, audit="scoring.stop"),
    ("GET", "/model/{model}"): Rule(A.PLATFORM_ADMIN, audit="model.download"),
    ("GET", "/model/info/{model}"): Rule(A.PLATFORM_ADMIN),
    ("PUT", "/model/{model}"): Rule(A.PLATFORM_ADMIN, audit="model.upload"),
    ("DELETE", "/model/{model}"): Rule(A.PLATFORM_ADMIN, audit="model.delete"),
    ("POST", "/infer/wsi/{model}"): Rule(
        A.PLATFORM_ADMIN, no_pathology_models, note="no pathology models here", audit="inference"
    ),
    ("POST", "/infer/wsi_v2/{model}"): Rule(A.PLATFORM_ADMIN, no_pathology_models, audit="inference"),
    ("PUT", "/datastore/"): Rule(
        A.PLATFORM_ADMIN, image_upload, note="an upload joins no cohort", audit="image.upload", reads_body=True
    ),
    ("PUT", "/datastore/image"): Rule(A.PLATFORM_ADMIN, image_upload, audit="image.upload", reads_body=True),
    ("DELETE", "/datastore/"): Rule(A.PLATFORM_ADMIN, audit="image.delete"),
    ("DELETE", "/datastore/image"): Rule(A.PLATFORM_ADMIN, audit="image.delete"),
    ("DELETE", "/datastore/label"): Rule(A.PLATFORM_ADMIN, audit="label.delete"),
    ("GET", "/datastore/dataset"): Rule(A.PLATFORM_ADMIN, audit="data.exported"),
    ("GET", "/session/{session_id}"): Rule(A.PLATFORM_ADMIN, note="sessions hold uploaded images of no cohort"),
    ("PUT", "/session/"): Rule(A.PLATFORM_ADMIN, audit="session.create"),
    ("DELETE", "/session/{session_id}"): Rule(A.PLATFORM_ADMIN, audit="session.delete"),
    ("GET", "/logs/"): Rule(A.PLATFORM_ADMIN, audit="logs.read"),
    ("GET", "/logs/gpu"): Rule(A.PLATFORM_ADMIN, gpu_listed),
    # -- segmentations: import, interpolation, deletion, review ----------------------------------------------------
    ("POST", "/api/segmentations/import"): Rule(
        A.MEMBER, note="into a series of my cohorts (checked in the service)", audit="segmentation.import"
    ),
    ("POST", "/api/segmentations"): Rule(
        A.MEMBER,
        note="a viewer's SEG, as my label of a series of my cohorts (checked in the service)",
        audit="label.save",
    ),
    ("POST", "/api/segmentations/interpolate"): Rule(
        A.MEMBER, note="a SEG of a series of my cohorts (checked in the service)", audit="segmentation.interpolate"
    ),
    ("DELETE", "/api/segmentations/{seg_uid}"): Rule(
        A.MEMBER,
        note="the account that stored it (`created_by`), or an admin of its cohorts (checked in the service)",
        audit="segmentation.delete",
    ),
    ("POST", "/api/segmentations/{seg_uid}/review"): Rule(
        A.MEMBER, note="members of its cohorts (checked in the service)", audit="segmentation.review"
    ),
    # -- imports: DICOM and legacy NIfTI into a cohort ----------------------------------------------------------------
    ("POST", "/api/imports"): Rule(
        A.COHORT_ADMIN,
        note="into a cohort I administer (another's: 404, a member's: 403; checked in the service)",
        audit="import.request",
    ),
    ("GET", "/api/imports"): Rule(A.COHORT_ADMIN, note="mine"),
    ("GET", "/api/imports/{import_id}"): Rule(A.COHORT_ADMIN, note="mine (all: platform admins); others 404"),
    ("GET", "/api/imports/{import_id}/mapping.csv"): Rule(
        A.COHORT_ADMIN, note="the importer only, once, within 24 h", audit="import.mapping.request"
    ),
    # -- hospital PACS peers: configured by platform admins, used by admins of a cohort the peer is allowed for ------
    ("GET", "/api/pacs/peers"): Rule(A.PLATFORM_ADMIN),
    ("POST", "/api/pacs/peers"): Rule(A.PLATFORM_ADMIN, audit="pacs.peer.create"),
    ("DELETE", "/api/pacs/peers/{name}"): Rule(A.PLATFORM_ADMIN, audit="pacs.peer.delete"),
    ("POST", "/api/pacs/peers/{name}/echo"): Rule(A.PLATFORM_ADMIN, audit="pacs.echo"),
    ("POST", "/api/pacs/{name}/query"): Rule(
        A.COHORT_ADMIN,
        note="a peer allowed for a cohort I administer (others: 404); values never journaled",
        audit="pacs.query",
    ),
    ("POST", "/api/pacs/{name}/retrieve"): Rule(
        A.COHORT_ADMIN,
        note="into a cohort I administer that the peer is allowed for (others: 404, a member's: 403); capped (422)",
        audit="pacs.retrieve",
    ),
    # -- cohort batches (the cohort and the model's binding are checked in the service) ---------------------------
    ("POST", "/api/batches"): Rule(
        A.COHORT_ADMIN,
        note="admins of the body's cohort, for models bound to it (another cohort 404, its member 403); dry_run too",
        audit="batch.create",
    ),
    ("GET", "/api/batches"): Rule(A.COHORT_ADMIN, note="?cohort=: a cohort I administer (another cohort 404)"),
    ("GET", "/api/batches/{batch_id}"): Rule(A.COHORT_ADMIN, note="a batch of a cohort I administer"),
    ("GET", "/api/batches/{batch_id}/items"): Rule(A.COHORT_ADMIN, note="a batch of a cohort I administer"),
    ("POST", "/api/batches/{batch_id}/cancel"): Rule(A.COHORT_ADMIN, audit="batch.cancel"),
    ("POST", "/api/batches/{batch_id}/resume"): Rule(A.COHORT_ADMIN, audit="batch.resume"),
    # -- radiomics ---------------------------------------------------------------------------------------------------
    ("POST", "/api/radiomics"): Rule(
        A.MEMBER, note="404 unless the series is in my cohorts; 201 once stored", audit="radiomics.extract"
    ),
    ("GET", "/api/radiomics"): Rule(A.MEMBER, series_uid_param),
    ("GET", "/api/radiomics/{feature_set_id}"): Rule(A.MEMBER, note="404 unless its series is in my cohorts"),
    ("GET", "/api/radiomics/{feature_set_id}.csv"): Rule(
        A.MEMBER, note="404 unless its series is in my cohorts", audit="data.exported"
    ),
    ("GET", "/api/radiomics/presets"): Rule(A.USER, note="built-in, platform-wide and my cohorts' presets"),
    ("POST", "/api/radiomics/presets"): Rule(
        A.COHORT_ADMIN,
        note="for a cohort I administer; platform-wide: platform admins",
        audit="radiomics.preset.create",
    ),
    # -- classification and predictions -----------------------------------------------------------------------------
    ("GET", "/api/classification/models"): Rule(A.USER, note="classification models bound to my cohorts"),
    ("POST", "/api/classification/{model}/predict"): Rule(
        A.MEMBER,
        note="feature set in my cohorts, or a CSV for a cohort of mine; the model bound to that cohort",
        audit="prediction",
    ),
    ("GET", "/api/predictions"): Rule(A.MEMBER, series_uid_param),
    ("GET", "/api/predictions/{prediction_id}.csv"): Rule(
        A.MEMBER, note="404 outside my cohorts", audit="data.exported"
    ),
    ("GET", "/api/predictions/{prediction_id}.html"): Rule(
        A.MEMBER, note="404 outside my cohorts", audit="data.exported"
    ),
    # -- scores, agreement, research export --------------------------------------------------------------------------
    ("GET", "/api/score-types"): Rule(A.MEMBER, note="built in, platform-wide and my cohorts' own"),
    ("POST", "/api/score-types"): Rule(
        A.COHORT_ADMIN, note="platform-wide: platform admins; a cohort's: its admins", audit="score_type.create"
    ),
    ("POST", "/api/scores"): Rule(A.MEMBER, note="the target must be in my cohorts (checked)", audit="score.create"),
    ("GET", "/api/scores"): Rule(A.MEMBER, note="only scores of my cohorts' data"),
    ("GET", "/api/agreement/segmentations"): Rule(A.MEMBER, series_uid_param, audit="agreement.read"),
    ("GET", "/api/agreement/segmentations.csv"): Rule(A.MEMBER, series_uid_param, audit="data.exported"),
    ("GET", "/api/agreement/scores"): Rule(A.MEMBER, note="404 unless the cohort is mine", audit="agreement.read"),
    ("GET", "/api/agreement/scores.csv"): Rule(A.MEMBER, note="404 unless the cohort is mine", audit="data.exported"),
    ("GET", "/api/cohorts/{cohort_id}/export.csv"): Rule(
        A.COHORT_ADMIN, note="research export: admins of that cohort", audit="data.exported"
    ),
}
del A


def access_table_markdown() -> str:
    """The table above as the docs show it (``docs/access.md`` is generated from it, and a test compares)."""
    lines = [
        "# Who may call what",
        "",
        "Generated from `extensions/awesomme/api/access.py` by `awesomme access-table`: do not edit by hand.",
        "Levels are cumulative upwards (a platform admin may do what a cohort admin may; a cohort admin what a",
        "member may). *Checked* rows add a per-object rule: the series must be in one of the caller's cohorts,",
        "and the model bound to one of them. Any route missing here is refused.",
        "",
        "- Checks of MONAI Label routes read what MONAI Label will run: its `params` (a JSON object; anything else",
        "  is a 422) may not name the model, series, session or label the path and query name (`/infer`,",
        "  `/datastore/label`: 422 naming the key), an active learning `model` must be bound to the caller's",
        "  cohorts, and jobs run the model of their path.",
        "- A series that does not exist and a series in no cohort of the caller's get the same 404.",
        "- Cohort admins add people only with invite codes: `PUT /api/cohorts/{id}/members/{username}` changes the",
        "  role of an existing member; for anyone else it answers 404 `no member <username>`, whether the account",
        "  exists or not. Platform admins may add any user directly.",
        "- Job listings (`GET /train/`, `/scoring/`, `/batch/infer`) show a cohort admin only the jobs of cohorts",
        "  they administer, without server paths; platform admins see every job.",
        "- Personal access tokens (`Authorization: Bearer awpat_...`) pass wherever a login's token does, within",
        "  their limits: a read-only token may only GET, HEAD and POST `/activelearning/` (403 otherwise); a cohort",
        "  token acts only in its cohort (as that cohort's member or admin, never as a platform admin); no personal",
        "  access token may manage tokens or change the password (rows noted so).",
        "- `GET /datastore/image` passes once without a token for 3D Slicer's Next Sample: an active learning answer",
        "  grants its user one download of that series, from the address that asked, within 5 minutes; it acts as",
        "  that user (their cohorts, journaled as theirs). Every other call without a token is 401.",
        "- `GET /datastore/label?label=<image>&tag=<tag>` names a label as stock MONAI Label does (the image's newest",
        "  SEG of that tag; a model's output has the tag `original`): the same lookup is checked and served.",
        "- Sessions (`/session/`, `PUT /datastore/`: a local volume brought into MONAI Label) stay with platform",
        "  admins: such a volume belongs to no study and no cohort, so no member's cohort could hold it, and a",
        "  model run on it would read data that nothing de-identified. Members bring data in through their cohort",
        "  admin (STOW into the cohort, or the import of the intake), where it is checked and journaled.",
        "",
        "| method | path | who | checked | note |",
        "|---|---|---|---|---|",
    ]
    for (method, path), rule in sorted(ROUTES.items(), key=lambda item: (list(Access).index(item[1].access), item[0])):
        check = rule.check.__name__ if rule.check else ""
        lines.append(f"| {method} | `{path}` | {rule.access.value} | {check} | {rule.note} |")
    return "\n".join(lines) + "\n"


def route_key(methods: set[str] | None, path: str) -> list[tuple[str, str]]:
    return [(method, path) for method in sorted(methods)] if methods else [("*", path)]


# -- the middleware ---------------------------------------------------------------------------------------------
def _deny(status: int, detail: str) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _meets(principal: Principal, access: Access) -> bool:
    return {
        Access.USER: True,
        Access.MEMBER: principal.in_any_cohort,
        Access.COHORT_ADMIN: principal.administers_any,
        Access.PLATFORM_ADMIN: principal.platform_admin,
    }[access]


@dataclass
class Decision:
    principal: Principal
    visibility: Visibility
    body_fields: dict[str, Any] | None


def _authorize(
    request: Request,
    rule: Rule,
    path_params: dict[str, Any],
    via_cookie: bool,
    credential: str,
    context: AuditContext,
    reader: BodyReader | None = None,
) -> Decision:
    settings = get_settings()
    with session_scope() as session:
        token_use = None
        if via_cookie:
            user = identity.user_for_session(session, credential)
        elif personal_tokens.is_personal_token(credential):
            token_use = personal_tokens.user_for_personal_token(session, credential)
            user = token_use.user
        else:
            user = identity.user_for_token(session, settings, credential)
        principal = load_principal(session, user)
        context.actor = principal.username
        if token_use is not None:
            principal = _within_token(request, rule, principal, token_use, context)
        if not _meets(principal, rule.access):
            raise Forbidden(f"this needs: {rule.access.value}")
        visibility = visibility_of(session, principal)
        fields = None
        if rule.check is not None:
            query = dict(request.query_params)
            fields = rule.check(Call(principal, visibility, query, path_params, session, reader))
    return Decision(principal, visibility, fields)


def _within_token(
    request: Request, rule: Rule, principal: Principal, use: personal_tokens.TokenUse, context: AuditContext
) -> Principal:
    """A personal access token's limits: each use journaled (rate-limited), no token management or password
    change, read-only tokens only read, a cohort token only acts in its cohort."""
    context.extra["pat_id"] = use.id  # every event of this request names the token
    with session_scope() as session:  # its own transaction: a refusal below must not undo the use's record
        personal_tokens.note_use(session, use.id, request.method, request.url.path, context.source, context.actor)
    if not rule.personal_tokens:
        raise Forbidden(
            "a personal access token cannot manage tokens, change the password or log out (it has no session): log in"
            " with your password; revoke a token with DELETE /api/users/me/tokens/{id}"
        )
    if use.read_only and not personal_tokens.read_only_allows(request.method, request.url.path):
        raise Forbidden("this personal access token is read-only: it may GET, HEAD and POST /activelearning/ only")
    return personal_tokens.narrow(principal, use)


# The one request that may come without credentials, once, after an active learning answer granted it.
SAMPLE_DOWNLOAD = ("GET", "/datastore/image")


def _authorize_by_grant(
    request: Request, rule: Rule, path_params: dict[str, Any], context: AuditContext
) -> Decision | None:
    """3D Slicer's sample download: the series' live grant for this address, consumed, acting as its user with
    the route's usual checks; None (401) when there is none."""
    image = request.query_params.get("image", "")
    with session_scope() as session:
        granted = sample_grants.consume(session, image, context.source)
    if granted is None:
        return None
    with session_scope() as session:
        user = session.get(User, granted.user_id)
        if user is None:
            return None
        principal = load_principal(session, user)
        context.actor = principal.username
        context.extra["sample_grant"] = granted.id
        if not _meets(principal, rule.access):
            raise Forbidden(f"this needs: {rule.access.value}")
        visibility = visibility_of(session, principal)
        if rule.check is not None:
            rule.check(Call(principal, visibility, dict(request.query_params), path_params, session))
    return Decision(principal, visibility, None)


class AccessMiddleware:
    """Authenticates (bearer token, or the browser's session cookie) and applies ``ROUTES`` before any handler."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def _match(self, scope: Scope) -> tuple[Rule | None, dict[str, Any], bool]:
        """The rule of the route that will answer, its path parameters, and whether any route matched at all."""
        fastapi_app = scope["app"]
        assert isinstance(fastapi_app, FastAPI)
        partial = False
        for context in iter_route_contexts(fastapi_app.router.routes):
            match, child = context.matches(scope)
            if match == Match.FULL:
                for key in route_key(getattr(context, "methods", None), str(context.path)):
                    if key[0] in ("*", scope["method"]):
                        return ROUTES.get(key), child.get("path_params", {}), True
                return None, {}, True
            partial = partial or match == Match.PARTIAL
        return None, {}, partial

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":  # CORS preflights carry no credentials
            await self.app(scope, receive, send)
            return
        rule, path_params, matched = self._match(scope)
        if rule is None:
            if matched:
                logger.error("refused %s %s: the route has no access rule", scope["method"], scope["path"])
                await _deny(403, "this route has no access rule: refused")(scope, receive, send)
            else:  # no route: the app answers 404 / 405 / a trailing-slash redirect
                await self.app(scope, receive, send)
            return
        context = AuditContext(source=scope["client"][0] if scope.get("client") else "unknown")
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        marker = audit_context.set(context)
        with counting_calls() as calls, one_lookup_per_request():
            try:
                await self._serve(scope, receive, send_and_note, rule, path_params, context)
            finally:
                audit_context.reset(marker)
                _log_orthanc_calls(scope, status, calls)
                # Failures are journaled here: the handler's own event rolled back with its transaction.
                if rule.audit and (status >= 400 or not context.recorded):
                    await run_in_threadpool(_journal, rule, scope, path_params, context, status)
                elif status in _REFUSED and rule.access != Access.ANYONE and not context.recorded:
                    # A refused read (or any refused call of a route without an event of its own): rate-limited.
                    await run_in_threadpool(_journal_refusal, scope, context, status)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, rule: Rule, path_params: dict[str, Any], context: AuditContext
    ) -> None:
        if rule.access == Access.ANYONE:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = _bearer(request)
        cookie = request.cookies.get(SESSION_COOKIE)
        reader: BodyReader | None = None
        try:
            if token is None and cookie is None:
                granted = None
                if (scope["method"], scope["path"]) == SAMPLE_DOWNLOAD:  # 3D Slicer's sample, fetched with no token
                    granted = await run_in_threadpool(_authorize_by_grant, request, rule, path_params, context)
                if granted is None:
                    if scope["path"].startswith(_LOGIN_FIRST):
                        await RedirectResponse(f"/login?next={scope['path']}", status_code=303)(scope, receive, send)
                    else:
                        await _deny(401, "log in first: send Authorization: Bearer <token>")(scope, receive, send)
                    return
                decision = granted
            else:
                if token is None and not _same_origin(request):
                    await _deny(403, "cross-site request refused")(scope, receive, send)
                    return
                # A check that reads the body reads it once, after authentication; the handler gets the same bytes.
                reader = BodyReader(scope, receive, get_settings().upload_max_bytes) if rule.reads_body else None
                decision = await run_in_threadpool(
                    _authorize, request, rule, path_params, token is None, token or cookie or "", context, reader
                )
        except AwesommeError as error:
            if isinstance(error, Unauthorized) and token is None and scope["path"].startswith(_LOGIN_FIRST):
                await RedirectResponse(f"/login?next={scope['path']}", status_code=303)(scope, receive, send)
                return
            await _deny(error.status_code, str(error))(scope, receive, send)
            return
        if reader is not None:
            receive = reader.receive
        scope.setdefault("state", {})["principal"] = decision.principal
        scope["state"]["visibility"] = decision.visibility
        if decision.body_fields is not None:
            try:
                receive = await _with_body_fields(scope, receive, decision.body_fields)
            except InvalidInput as error:
                await _deny(error.status_code, str(error))(scope, receive, send)
                return
        marker = current_visibility.set(decision.visibility)
        try:
            await self.app(scope, receive, send)
        finally:
            current_visibility.reset(marker)


def _log_orthanc_calls(scope: Scope, status: int, calls: list[str]) -> None:
    """One line per request that called Orthanc: how many calls, and of which kinds (no identifiers)."""
    if calls:
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(Counter(calls).items()))
        path = path_shape(scope["path"])
        logger.info("%s %s answered %s after %d Orthanc calls: %s", scope["method"], path, status, len(calls), kinds)


# Query parameters naming what a call acts on, in order of preference.
_TARGET_PARAMS = ("image", "label", "series_uid", "id", "session_id")


def _journal(rule: Rule, scope: Scope, path_params: dict[str, Any], context: AuditContext, status: int) -> None:
    """The route's event when its handler did not journal it itself (MONAI Label's routes, and every failure)."""
    query = dict(parse_qsl(scope.get("query_string", b"").decode(errors="replace")))
    target = next((query[name] for name in _TARGET_PARAMS if query.get(name)), "")
    target = target or str(path_params.get("path", ""))
    params: dict[str, Any] = {key: str(value)[:200] for key, value in {**path_params, **query}.items()}
    params.update(method=scope["method"], status=status, **context.extra)
    denied = status in (401, 403, 429)
    outcome = Outcome.SUCCESS if status < 400 else (Outcome.DENIED if denied else Outcome.FAILURE)
    try:
        with session_scope() as session:
            audit.record(
                session,
                rule.audit,
                outcome,
                target=target,
                cohort=str(path_params.get("cohort_id", query.get("cohort", ""))),
                params=params,
                actor=context.actor,
                source=context.source,
            )
    except Exception:  # the answer is already sent: a journal that cannot be written must be seen in the logs
        logger.exception("could not journal %s (%s) by %s", rule.audit, outcome, context.actor)


# Answers that refuse the caller: no token, not allowed, or "not found" (the same answer as "not yours").
_REFUSED = frozenset({401, 403, 404})


def _journal_refusal(scope: Scope, context: AuditContext, status: int) -> None:
    """'access.denied', once per caller, target (the path asked for) and minute (``audit.record_denied``)."""
    target = scope.get("path", "")[:1024]
    query = parse_qsl(scope.get("query_string", b"").decode(errors="replace"))[:20]
    params: dict[str, Any] = {key[:64]: value[:200] for key, value in query}  # the journal drops secret keys
    params.update(method=scope["method"], status=status, **context.extra)
    try:
        audit.record_denied(context.actor, context.source, target, params)
    except Exception:  # the answer is already sent: a journal that cannot be written must be seen in the logs
        logger.exception("could not journal a refusal (%s) of %s", status, context.actor)


def _same_origin(request: Request) -> bool:
    """Cookie-authenticated writes must come from our own pages (SameSite=Strict already stops most)."""
    if request.method in ("GET", "HEAD"):
        return True
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


async def _with_body_fields(scope: Scope, receive: Receive, fields: dict[str, Any]) -> Receive:
    """Set fields in a JSON body (the job's cohorts): a caller's own value for them is overwritten, never trusted."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    raw = b"".join(chunks)
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    body.update(fields)
    raw = json.dumps(body).encode()
    headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-length", b"content-type")]
    scope["headers"] = [*headers, (b"content-length", str(len(raw)).encode()), (b"content-type", b"application/json")]
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return replay
