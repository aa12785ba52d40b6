"""Hypothesis over the surface outside ``/api``: ``/dicom-web``, ``/proxy/dicom``, MONAI Label's routes, the pages, and
the headers and tokens every route reads. No answer may be a 5xx (nor a dropped connection).

Requests draw a route template (seeded study, series and model names mixed with odd path segments), a method, a query
string, headers (``Authorization`` with garbage, unsigned tokens whose header is JSON ``null`` or a list, ids past 64
bits; ``Content-Type`` and ``Accept`` variants; ``X-Forwarded-For``) and a body (bytes, JSON with NaN, multipart
junk). Four callers: anonymous, forged tokens, alpha's member, a platform admin. Routes that start jobs or destroy
data (``/train``, ``/scoring``, ``/batch``, ``PUT``/``DELETE /model``, ``DELETE /datastore``, uploads) are sent only by
callers who are refused there (anonymous, forged, the member); the admin gets only reads and model names that do not
exist, so no inference runs either. ``AWESOMME_FUZZ_EXAMPLES`` sets the size: ``EXAMPLES_PER_UNIT`` cases per unit and
caller (CI's 20 make about 1,300 requests: about 25 s here, after the platform's start).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import Caller, Seeded, fuzz_examples, next_address
from tests.integration.addresses import client_from, loopback_for

EXAMPLES_PER_UNIT = 16
FUZZ_SETTINGS = settings(
    max_examples=max(fuzz_examples(), 1) * EXAMPLES_PER_UNIT,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # a 5xx is reported with its request; no shrinking against the server
    suppress_health_check=list(HealthCheck),
)

PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
ODD_TEXT = st.one_of(
    st.text(PRINTABLE, max_size=40),
    st.sampled_from(["", "..", "../..", "%00", "%2e%2e", "-1", "0", str(2**64), "1e999", "NaN", "null", "[]", "{}"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(st.characters(codec="utf-8"), max_size=12),
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: Any, payload: Any) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}.{_b64(b'not-a-signature')}"


FORGED_TOKENS = st.one_of(
    st.sampled_from(
        [
            "",
            "Bearer",
            "Bearer ",
            "Bearer a.b.c",
            "Basic YWRtaW46YWRtaW4=",
            "Bearer " + _unsigned(None, {"sub": "platform.admin"}),
            "Bearer " + _unsigned([], {"sub": "platform.admin"}),
            "Bearer " + _unsigned("RS256", {}),
            "Bearer " + _unsigned({"alg": "none"}, {"sub": "platform.admin"}),
            "Bearer " + _unsigned({"alg": "RS256", "kid": 2**70}, {"sub": 2**70, "uid": 2**70, "exp": 2**70}),
            "Bearer " + _unsigned({"alg": "HS256", "kid": None}, {"sub": None, "exp": "never"}),
            "Bearer " + _b64(b"null") + "." + _b64(b"null") + ".",
        ]
    ),
    st.text(PRINTABLE, max_size=200).map(lambda text: "Bearer " + text),
    st.tuples(st.sampled_from([None, [], {}, 1, "x", {"alg": None}]), st.sampled_from([None, [], {"sub": 2**80}])).map(
        lambda parts: "Bearer " + _unsigned(*parts)
    ),
)

CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "application/dicom",
        "application/dicom+json",
        "multipart/related",
        "multipart/related; boundary=",
        "multipart/related; boundary= x",
        'multipart/related; type="application/dicom"; boundary=x; boundary=y',
        "multipart/related; type=application/dicom; boundary=a=b",
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "text/plain; charset=utf-9",
        "*/*",
        ";;;",
    ]
)
ACCEPTS = st.sampled_from(
    [
        None,
        "*/*",
        "application/dicom+json",
        'multipart/related; type="application/dicom"',
        'multipart/related; type="application/dicom"; transfer-syntax=*',
        'multipart/related; type="application/octet-stream"',
        "image/jpeg",
        "application/json; q=0",
        "garbage",
    ]
)
QUERY_KEYS = st.sampled_from(
    [
        "offset",
        "limit",
        "includefield",
        "fuzzymatching",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "PatientID",
        "00100020",
        "Modality",
        "image",
        "label",
        "tag",
        "output",
        "params",
        "all",
        "check_if_exists",
        "cohort",
        "session_id",
        "transfer-syntax",
        "next",
        "x",
    ]
)


@dataclass(frozen=True)
class Target:
    method: str
    template: str
    risky: bool = False  # starts a job, stores or destroys: only refused callers send it


TARGETS = [
    Target("GET", "/dicom-web/studies"),
    Target("GET", "/dicom-web/series"),
    Target("GET", "/dicom-web/instances"),
    Target("GET", "/dicom-web/studies/{study}"),
    Target("GET", "/dicom-web/studies/{study}/metadata"),
    Target("GET", "/dicom-web/studies/{study}/series"),
    Target("GET", "/dicom-web/studies/{study}/series/{series}"),
    Target("GET", "/dicom-web/studies/{study}/series/{series}/metadata"),
    Target("GET", "/dicom-web/studies/{study}/series/{series}/instances"),
    Target("GET", "/dicom-web/studies/{study}/series/{series}/instances/{odd}/frames/{odd}"),
    Target("GET", "/dicom-web/{odd}"),
    Target("GET", "/proxy/dicom/qido/studies"),
    Target("GET", "/proxy/dicom/qido/studies/{study}/series"),
    Target("GET", "/proxy/dicom/wado/studies/{study}/series/{series}/metadata"),
    Target("GET", "/proxy/dicom/{odd}"),
    Target("POST", "/dicom-web/studies", risky=True),
    Target("POST", "/dicom-web/studies/{study}", risky=True),
    Target("POST", "/proxy/dicom/wado/studies", risky=True),
    Target("GET", "/info/"),
    Target("GET", "/datastore/"),
    Target("GET", "/datastore/image"),
    Target("HEAD", "/datastore/image"),
    Target("GET", "/datastore/image/info"),
    Target("GET", "/datastore/label"),
    Target("GET", "/datastore/label/info"),
    Target("PUT", "/datastore/label", risky=True),
    Target("PUT", "/datastore/image/info", risky=True),
    Target("PUT", "/datastore/label/info", risky=True),
    Target("PUT", "/datastore/updatelabelinfo", risky=True),
    Target("POST", "/activelearning/{odd}", risky=True),
    Target("POST", "/infer/{model}", risky=True),
    Target("POST", "/infer/{odd}"),
    Target("POST", "/infer/wsi/{odd}", risky=True),
    Target("GET", "/auth/"),
    Target("POST", "/auth/token"),
    Target("GET", "/auth/token/valid"),
    Target("GET", "/ohif/"),
    Target("GET", "/ohif/{odd}"),
    Target("GET", "/login"),
    Target("GET", "/docs/{odd}"),
    Target("GET", "/{odd}"),
    Target("GET", "/train/"),
    Target("GET", "/scoring/"),
    Target("GET", "/batch/infer"),
    Target("GET", "/logs/"),
    Target("GET", "/model/info/{odd}"),
    Target("GET", "/session/{odd}"),
    Target("POST", "/train/", risky=True),
    Target("POST", "/train/{model}", risky=True),
    Target("DELETE", "/train/", risky=True),
    Target("POST", "/scoring/{odd}", risky=True),
    Target("DELETE", "/scoring/", risky=True),
    Target("POST", "/batch/infer/{model}", risky=True),
    Target("DELETE", "/batch/infer", risky=True),
    Target("PUT", "/model/{model}", risky=True),
    Target("DELETE", "/model/{model}", risky=True),
    Target("PUT", "/datastore/", risky=True),
    Target("PUT", "/datastore/image", risky=True),
    Target("DELETE", "/datastore/", risky=True),
    Target("DELETE", "/datastore/image", risky=True),
    Target("DELETE", "/datastore/label", risky=True),
    Target("PUT", "/session/", risky=True),
    Target("DELETE", "/session/{odd}", risky=True),
]
SAFE_TARGETS = [target for target in TARGETS if not target.risky]


def _segment(seeded: Seeded, name: str) -> st.SearchStrategy[str]:
    known = {
        "study": [seeded.alpha_study, seeded.beta_study],
        "series": [seeded.alpha_series, seeded.beta_series],
        "model": list(seeded.model_names),
    }.get(name, [])
    if name == "model":  # a known model name runs an inference: only refused callers get one (risky targets)
        return st.sampled_from(known) if known else ODD_TEXT
    return st.one_of(st.sampled_from(known), ODD_TEXT) if known else ODD_TEXT


def _path(seeded: Seeded, template: str) -> st.SearchStrategy[str]:
    names = [part[1:-1] for part in template.split("/") if part.startswith("{")]
    if not names:
        return st.just(template)

    def fill(values: tuple[str, ...]) -> str:
        path = template
        for name, value in zip(names, values, strict=True):
            path = path.replace("{" + name + "}", quote(value, safe="%.-_~"), 1)
        return path

    return st.tuples(*(_segment(seeded, name) for name in names)).map(fill)


def _query(seeded: Seeded) -> st.SearchStrategy[str]:
    values = st.one_of(ODD_TEXT, st.sampled_from([seeded.alpha_series, seeded.beta_series, seeded.alpha_study]))
    params = st.lists(st.tuples(QUERY_KEYS, values), max_size=4)
    raw = st.sampled_from(["", "&&", "=", "a=%zz", "offset=abc", "limit=-1", f"limit={2**70}", "params={bad"])
    return st.one_of(params.map(lambda pairs: urlencode(pairs)), raw)


MULTIPART_JUNK = (
    b"--x\r\nContent-Type: application/dicom\r\n\r\nDICM\x00\x01\r\n--x--\r\n",
    b"--y\r\nContent-Type: application/dicom\r\n\r\n" + b"\x00" * 132 + b"DICM" + b"\r\n--y--",
    b'--x\r\nContent-Disposition: form-data; name="params"\r\n\r\n{"model": NaN}\r\n--x--\r\n',
)
BODIES = st.one_of(
    st.just(b""),
    st.binary(max_size=300),
    st.sampled_from(
        [
            b"{}",
            b"[]",
            b"null",
            b'{"x": NaN}',
            b'{"max_epochs": Infinity}',
            b"[1e999]",
            b'{"image": "../../etc/passwd", "model": null}',
            b'{"label_info": [{"name": "=1+2", "idx": 2e300}]}',
            b"{" * 1000,
            *MULTIPART_JUNK,
        ]
    ),
    st.dictionaries(st.text(PRINTABLE, max_size=10), ODD_TEXT, max_size=4).map(lambda d: json.dumps(d).encode()),
)


@st.composite
def requests(draw: st.DrawFn, seeded: Seeded, targets: list[Target], auth: st.SearchStrategy[dict[str, str]]) -> Any:
    target = draw(st.sampled_from(targets))
    path = draw(_path(seeded, target.template))
    query = draw(_query(seeded))
    headers = dict(draw(auth))
    for name, options in (("Content-Type", CONTENT_TYPES), ("Accept", ACCEPTS)):
        value = draw(options)
        if value is not None:
            headers[name] = value
    headers["X-Forwarded-For"] = draw(st.one_of(st.just(next_address()), st.text(PRINTABLE, max_size=60)))
    body = draw(BODIES) if target.method in ("POST", "PUT", "DELETE") else b""
    return target.method, path + ("?" + query if query else ""), headers, body


def _send(client: httpx.Client, caller: str, request: tuple[str, str, dict[str, str], bytes]) -> None:
    method, url, headers, body = request
    try:
        reply = client.request(method, url, headers=headers, content=body or None)
    except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeError):
        return  # the client itself could not send it: nothing reached the server
    except httpx.TransportError as error:
        pytest.fail(f"{method} {url} as {caller} ({headers}, {len(body)} bytes): the server dropped it: {error!r}")
    assert reply.status_code < 500, f"{method} {url} as {caller}: {reply.status_code} {reply.text[:300]}"


@pytest.fixture(scope="module")
def http(server_url: str) -> Any:
    """Requests leave from a loopback address of their own: the logins they fail lock out no other caller."""
    with client_from(loopback_for("surface fuzz"), base_url=server_url, timeout=120) as client:
        yield client


def _auth_of(caller: Caller) -> Callable[[], dict[str, str]]:
    def headers() -> dict[str, str]:
        return {"Authorization": caller.headers()["Authorization"]}

    return headers


def test_surface_as_anonymous(http: httpx.Client, seeded: Seeded) -> None:
    @FUZZ_SETTINGS
    @given(requests(seeded, TARGETS, st.just({})))
    def run(request: Any) -> None:
        _send(http, "anonymous", request)

    run()


def test_surface_with_forged_tokens_and_cookies(http: httpx.Client, seeded: Seeded) -> None:
    cookie = st.text(PRINTABLE.filter(lambda c: c not in ';,"\\ '), max_size=80).map(
        lambda value: {"Cookie": f"awesomme_session={value}"}
    )
    auth = st.one_of(FORGED_TOKENS.map(lambda value: {"Authorization": value}), cookie)

    @FUZZ_SETTINGS
    @given(requests(seeded, TARGETS, auth))
    def run(request: Any) -> None:
        _send(http, "forged", request)

    run()


def test_surface_as_alpha_member(http: httpx.Client, seeded: Seeded, member: Caller) -> None:
    """The member is refused on every risky route but its own (labels, inference): those get no real model."""
    own = {"/datastore/label", "/datastore/image/info", "/datastore/label/info", "/datastore/updatelabelinfo"}
    targets = [t for t in TARGETS if not t.risky or t.template.startswith(("/train", "/scoring", "/batch", "/model"))]
    targets += [t for t in TARGETS if t.template in own or t.template.startswith("/dicom-web")]
    auth = st.builds(_auth_of(member))

    @FUZZ_SETTINGS
    @given(requests(seeded, targets, auth))
    def run(request: Any) -> None:
        _send(http, "alpha member", request)

    run()


def test_surface_as_platform_admin(http: httpx.Client, seeded: Seeded, platform_admin: Caller) -> None:
    auth = st.builds(_auth_of(platform_admin))

    @FUZZ_SETTINGS
    @given(requests(seeded, SAFE_TARGETS, auth))
    def run(request: Any) -> None:
        _send(http, "platform admin", request)

    run()


# -- the inputs a probe of the running platform answered with a 500 (issue 18's list), replayed every run ----------
FORGED = {
    "null header": "Bearer " + _unsigned(None, {"sub": "platform.admin"}),
    "list header": "Bearer " + _unsigned([], {"sub": "platform.admin"}),
    "id past 64 bits": "Bearer " + _unsigned({"alg": "RS256", "kid": "k"}, {"sub": "x", "uid": 2**70, "iat": 2**70}),
}
KNOWN = [
    ("forged", "null header", "GET", "/dicom-web/studies", None, b""),
    ("forged", "list header", "GET", "/info/", None, b""),
    ("forged", "id past 64 bits", "GET", "/datastore/", None, b""),
    ("member", "", "GET", "/dicom-web/studies?offset=abc", None, b""),
    ("member", "", "GET", "/proxy/dicom/qido/studies?limit=abc", None, b""),
    ("admin", "", "POST", "/dicom-web/studies", "multipart/related", b"--x\r\n\r\nDICM\r\n--x--"),
    ("admin", "", "POST", "/dicom-web/studies", "multipart/form-data; boundary=x", MULTIPART_JUNK[0]),
    ("member", "", "POST", "/infer/{model}?image={series}", "multipart/form-data; boundary=x", b""),
    ("member", "", "PUT", "/datastore/label?image={series}", "multipart/form-data; boundary=x", b""),
    ("admin", "", "POST", "/infer/{model}", None, b""),
    ("admin", "", "POST", "/infer/no-such-model?session_id={series}", None, b""),
    ("admin", "", "POST", "/scoring/", "application/json", b'{"x": NaN}'),
]


def _params_body(boundary: str, value: str) -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="params"\r\n\r\n{value}\r\n--{boundary}--\r\n'
    ).encode()


@pytest.mark.parametrize(("who", "token", "method", "path", "content_type", "body"), KNOWN)
def test_inputs_that_answered_500_are_4xx(
    http: httpx.Client,
    seeded: Seeded,
    member: Caller,
    platform_admin: Caller,
    who: str,
    token: str,
    method: str,
    path: str,
    content_type: str | None,
    body: bytes,
) -> None:
    headers = {"forged": {"Authorization": FORGED.get(token, "")}, "member": member.headers()}.get(who)
    headers = dict(headers if headers is not None else platform_admin.headers())
    if content_type:
        headers["Content-Type"] = content_type
    if path.startswith(("/infer/", "/datastore/label")) and who == "member":
        body = _params_body("x", "{bad")  # unreadable params: refused before any work
    url = path.format(model=seeded.model_names[0], series=seeded.alpha_series)
    reply = http.request(method, url, headers=headers, content=body or None)
    assert 400 <= reply.status_code < 500, f"{method} {url}: {reply.status_code} {reply.text[:300]}"
