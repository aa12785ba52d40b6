"""What an error answer may quote of the input, and which JSON numbers are refused (no server needed)."""

from __future__ import annotations

import json

import pytest

from awesomme.api.input_guard import non_finite_number, public_input
from awesomme.api.security_headers import DATA_POLICY, DOCS_POLICY, VIEWER_POLICY, security_headers
from awesomme.core.errors import EXCERPT_CHARS, MAX_MESSAGE, InvalidInput


@pytest.mark.parametrize(
    ("body", "found"),
    [(b'{"a": NaN}', "NaN"), (b"[Infinity]", "Infinity"), (b'{"a": [-Infinity]}', "-Infinity"), (b"[1e999]", "1e999")],
)
def test_non_finite_numbers_are_found(body: bytes, found: str) -> None:
    assert non_finite_number(body) == found


@pytest.mark.parametrize("body", [b'{"a": 1.5e300, "b": -2}', b'"NaN"', b"not json", b"[" * 100_000])
def test_finite_json_and_non_json_pass(body: bytes) -> None:
    assert non_finite_number(body) is None


def test_public_input_keeps_short_values_and_cuts_long_ones() -> None:
    assert public_input("short") == "short"
    assert public_input({"a": 1, "b": [True, None]}) == {"a": 1, "b": [True, None]}
    assert public_input(float("nan")) == "nan"
    assert public_input(2**80) == "an integer of 81 bits"
    cut = public_input("x" * 10_000)
    assert isinstance(cut, str) and len(cut) == EXCERPT_CHARS + 1
    whole = public_input({"k": ["y" * 5_000] * 100})
    assert len(json.dumps(whole, ensure_ascii=False)) <= 2 * EXCERPT_CHARS + 16
    json.dumps(public_input([float("inf")] * 3), allow_nan=False)  # an answer can always be written


def test_error_messages_are_cut() -> None:
    assert len(str(InvalidInput("no member " + "z" * 100_000))) == MAX_MESSAGE + 1


def test_each_path_gets_its_policy() -> None:
    assert security_headers("/api/cohorts")["Content-Security-Policy"] == DATA_POLICY
    assert security_headers("/dicom-web/studies")["Cache-Control"] == "no-store"
    assert security_headers("/ohif/index.html")["Content-Security-Policy"] == VIEWER_POLICY
    assert "Cache-Control" not in security_headers("/ohif/app.bundle.js")
    assert security_headers("/docs")["Content-Security-Policy"] == DOCS_POLICY
    assert security_headers("/login")["Referrer-Policy"] == "same-origin"
    assert security_headers("/api/health")["Referrer-Policy"] == "no-referrer"
    for policy in (DATA_POLICY, DOCS_POLICY, VIEWER_POLICY):
        assert "frame-ancestors 'none'" in policy and "http" not in policy
