"""The strict STOW-RS reader: what two readers could split or read differently is refused."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pydicom
import pytest

from awesomme.orthanc.checked_instance import check_instance
from awesomme.orthanc.multipart import (
    MalformedRequest,
    UnsupportedMediaType,
    encode_multipart,
    parse_content_type,
    split_parts,
)
from awesomme.phantoms import generate_patient


@pytest.fixture(scope="module")
def dicom_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    patient = generate_patient("osteosarcoma-mr", 11, tmp_path_factory.mktemp("p"), shape=(2, 32, 32))
    return Path(patient.dicom_files[0]).read_bytes()


def _body(parts: list[bytes], boundary: str = "b0und", part_type: str = "application/dicom") -> bytes:
    out = b""
    for part in parts:
        out += f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode() + part + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/related; boundary= b0und",  # Orthanc strips the space, requests_toolbelt keeps it
        "multipart/related; boundary =b0und",
        "multipart/related; boundary=b0und; boundary=other",  # repeated
        "multipart/related; boundary=a=b",  # Orthanc ignores a boundary holding '='
        'multipart/related; boundary="a b"',
        "multipart/related; type=application/dicom; type=application/dicom; boundary=b0und",
        "multipart/related",  # no boundary
        "multipart/related; boundary=",
        "multipart/related; boundary=b0und;;",
    ],
)
def test_ambiguous_content_types_are_refused(content_type: str) -> None:
    with pytest.raises(MalformedRequest):
        parse_content_type(content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data; boundary=b0und",
        "application/dicom",
        "multipart/related; type=text/plain; boundary=x",
        'multipart/related; type="text/plain"; boundary=x',
    ],
)
def test_other_media_types_are_unsupported(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        parse_content_type(content_type)


def test_plain_and_quoted_boundaries_read_the_same() -> None:
    assert parse_content_type('multipart/related; type="application/dicom"; boundary=b0und').boundary == "b0und"
    assert parse_content_type('Multipart/Related;type="application/dicom";boundary="b0und"').boundary == "b0und"


def test_parts_round_trip(dicom_file: bytes) -> None:
    body, content_type = encode_multipart([dicom_file, dicom_file + b"x"])
    assert split_parts(body, parse_content_type(content_type).boundary) == [dicom_file, dicom_file + b"x"]


def test_the_body_dicomweb_client_writes_is_read(dicom_file: bytes) -> None:
    """OHIF's Upload (dicomweb-client's multipartEncode): CRLF before the first delimiter, none after the last."""
    boundary = "5d8e0a1c-3b2f-4c6d-9e7a-0f1b2c3d4e5f"
    body = f"\r\n--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + dicom_file
    body += f"\r\n--{boundary}--".encode()
    content_type = f'multipart/related; type="application/dicom"; boundary="{boundary}"'
    assert split_parts(body, parse_content_type(content_type).boundary) == [dicom_file]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda body: b"preamble\r\n" + body,
        lambda body: b"\r\n\r\n" + body,  # more than the first delimiter's own CRLF
        lambda body: body.replace(b"--b0und--", b"--b0und"),  # never closed
        lambda body: body + b"epilogue",
        lambda body: body.replace(b"\r\n--b0und--", b"\r\n--b0undX\r\n--b0und--"),  # boundary-like line
        lambda body: body.replace(b"Content-Type", b"Content-Type: application/dicom\r\nContent-Type", 1),
        lambda body: body.replace(b"Content-Type", b" Content-Type", 1),  # folded
        lambda body: body.replace(b"Content-Type: application/dicom", b"Content-Length: 3\r\nContent-Type: x/y", 1),
    ],
)
def test_ambiguous_bodies_are_refused(dicom_file: bytes, mangle) -> None:
    with pytest.raises((MalformedRequest, UnsupportedMediaType)):
        split_parts(mangle(_body([dicom_file])), "b0und")


def test_nested_multipart_and_other_parts_are_unsupported(dicom_file: bytes) -> None:
    inner = _body([dicom_file], boundary="inner")
    with pytest.raises(UnsupportedMediaType, match="nested"):
        split_parts(_body([inner], part_type="multipart/related; boundary=inner"), "b0und")
    with pytest.raises(UnsupportedMediaType):
        split_parts(_body([b"hello"], part_type="text/plain"), "b0und")


def _with_repeated_element(dicom_file: bytes, keyword: str, value: str) -> bytes:
    """The file with ``keyword`` (a UI element) given twice: first ``value``, then the original."""
    dataset = pydicom.dcmread(io.BytesIO(dicom_file))
    tag = dataset.data_element(keyword).tag
    needle = struct.pack("<HH", tag.group, tag.element) + b"UI"
    position = dicom_file.index(needle, 132 + 12)
    encoded = value.encode() + (b"\0" if len(value) % 2 else b"")
    element = needle + struct.pack("<H", len(encoded)) + encoded
    return dicom_file[:position] + element + dicom_file[position:]


@pytest.mark.parametrize("keyword", ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
def test_repeated_elements_are_refused(dicom_file: bytes, keyword: str) -> None:
    crafted = _with_repeated_element(dicom_file, keyword, "1.2.3.4")
    # pydicom alone reads it without complaint (it keeps the last value):
    assert str(getattr(pydicom.dcmread(io.BytesIO(crafted)), keyword)) != "1.2.3.4"
    with pytest.raises(MalformedRequest, match="more than once"):
        check_instance(crafted, 1)


def test_unreadable_and_truncated_parts_are_refused(dicom_file: bytes) -> None:
    for content in (b"not dicom", dicom_file[: len(dicom_file) // 2], dicom_file + b"\x01\x02\x03"):
        with pytest.raises(MalformedRequest):
            check_instance(content, 1)


def test_what_is_sent_is_what_was_checked(dicom_file: bytes) -> None:
    checked = check_instance(dicom_file, 1)
    stored = pydicom.dcmread(io.BytesIO(checked.encoded))
    assert (stored.StudyInstanceUID, stored.SeriesInstanceUID, stored.SOPInstanceUID) == (
        checked.study_uid,
        checked.series_uid,
        checked.sop_instance_uid,
    )
    assert checked.encoded == dicom_file  # a well-formed file is sent on unchanged
