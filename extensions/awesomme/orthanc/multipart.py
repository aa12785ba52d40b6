"""A strict reader and a writer for the ``multipart/related`` bodies of STOW-RS.

Written by hand on purpose: a STOW check is only worth something if whoever stores reads the same parts. Lenient
readers disagree with each other (requests_toolbelt keeps a space after ``boundary=`` that Orthanc strips, and
Orthanc ignores a ``boundary`` holding ``=``), so this reader refuses everything that two readers could split
differently: a repeated or oddly written parameter, a boundary outside a small safe alphabet, a preamble, a
delimiter-like line inside a part, a repeated or folded part header, a Content-Length that disagrees, nested
multipart and any part that is not ``application/dicom``. The checked parts are then sent on in a body this module
writes itself, under a boundary it generates: the client's bytes around the parts never reach Orthanc.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from awesomme.core.errors import AwesommeError

__all__ = [
    "DICOM_MEDIA_TYPE",
    "MalformedRequest",
    "StowContentType",
    "UnsupportedMediaType",
    "encode_multipart",
    "excerpt",
    "parse_content_type",
    "split_parts",
]

DICOM_MEDIA_TYPE = "application/dicom"
EXCERPT_CHARS = 40
# RFC 2046 allows more (space, '='); these are what every reader agrees on.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:?]{1,70}")
_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_MEDIA_TYPE = re.compile(rf"({_TCHARS})/({_TCHARS})")
# One parameter: OWS ";" OWS name "=" (token | quoted-string without escapes), nothing around "=". A bare value
# may hold "/" (clients write type=application/dicom unquoted): no reader splits on it.
_PARAMETER = re.compile(rf'[ \t]*;[ \t]*({_TCHARS})=([!#$%&\'*+\-.^_`|~0-9A-Za-z/]+|"[^"\\\r\n]*")')
_HEADER_LINE = re.compile(rf"({_TCHARS}):[ \t]*([^\r\n]*?)[ \t]*")
_PART_HEADERS = {"content-type", "content-length", "content-id", "content-location", "content-transfer-encoding"}


class MalformedRequest(AwesommeError):
    status_code = 400


class UnsupportedMediaType(AwesommeError):
    status_code = 415


def excerpt(text: str | bytes) -> str:
    """At most a short, printable excerpt of client input for an error answer."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    shown = "".join(c if c.isprintable() else "?" for c in text[:EXCERPT_CHARS])
    return repr(shown + ("..." if len(text) > EXCERPT_CHARS else ""))


def _parameters(rest: str, what: str) -> dict[str, str]:
    """``; name=value`` pairs; a repeated name or anything not matching the strict grammar is refused."""
    parameters: dict[str, str] = {}
    position = 0
    while position < len(rest.rstrip(" \t")):
        match = _PARAMETER.match(rest, position)
        if match is None:
            raise MalformedRequest(f"{what}: cannot read the parameters at {excerpt(rest[position:])}")
        name, value = match.group(1).lower(), match.group(2)
        if name in parameters:
            raise MalformedRequest(f"{what}: the parameter {excerpt(name)} is given more than once")
        parameters[name] = value[1:-1] if value.startswith('"') else value
        position = match.end()
    return parameters


def _media_type(value: str, what: str) -> tuple[str, dict[str, str]]:
    match = _MEDIA_TYPE.match(value)
    if match is None:
        raise MalformedRequest(f"{what} is not a media type: {excerpt(value)}")
    return f"{match.group(1)}/{match.group(2)}".lower(), _parameters(value[match.end() :], what)


@dataclass(frozen=True)
class StowContentType:
    boundary: str
    type: str | None


def parse_content_type(value: str) -> StowContentType:
    """The request's Content-Type: ``multipart/related; type="application/dicom"; boundary=...``."""
    media_type, parameters = _media_type(value.strip(" \t"), "Content-Type")
    if media_type != "multipart/related":
        raise UnsupportedMediaType(
            f"STOW-RS takes multipart/related with application/dicom parts, not {excerpt(media_type)}"
        )
    boundary = parameters.get("boundary")
    if boundary is None:
        raise MalformedRequest("Content-Type multipart/related needs a boundary parameter")
    if not _BOUNDARY.fullmatch(boundary):
        raise MalformedRequest(
            f"the multipart boundary {excerpt(boundary)} must be 1 to 70 letters, digits or '()+_,-./:? "
            "(no spaces, no '=')"
        )
    part_type = parameters.get("type")
    if part_type is not None and part_type.lower() != DICOM_MEDIA_TYPE:
        raise UnsupportedMediaType(f"only {DICOM_MEDIA_TYPE} parts are stored, not type={excerpt(part_type)}")
    return StowContentType(boundary, part_type)


def _part_headers(block: bytes, index: int) -> dict[str, str]:
    what = f"part {index}"
    headers: dict[str, str] = {}
    try:
        text = block.decode("ascii")
    except UnicodeDecodeError as error:
        raise MalformedRequest(f"{what}: its headers are not ASCII") from error
    for line in text.split("\r\n") if text else []:
        match = _HEADER_LINE.fullmatch(line)
        if match is None:
            raise MalformedRequest(f"{what}: cannot read the header line {excerpt(line)}")
        name = match.group(1).lower()
        if name in headers:
            raise MalformedRequest(f"{what}: the header {excerpt(name)} is given more than once")
        if name not in _PART_HEADERS:
            raise MalformedRequest(f"{what}: unexpected header {excerpt(name)}")
        headers[name] = match.group(2)
    return headers


def _check_part(headers: dict[str, str], content: bytes, index: int) -> None:
    what = f"part {index}"
    if "content-type" not in headers:
        raise UnsupportedMediaType(f"{what} has no Content-Type (each part is {DICOM_MEDIA_TYPE})")
    media_type, parameters = _media_type(headers["content-type"], f"{what}'s Content-Type")
    if media_type.startswith("multipart/"):
        raise UnsupportedMediaType(f"{what} is a nested {excerpt(media_type)}: each part is one {DICOM_MEDIA_TYPE}")
    if media_type != DICOM_MEDIA_TYPE or set(parameters) - {"transfer-syntax"}:
        raise UnsupportedMediaType(f"{what} is {excerpt(headers['content-type'])}, not {DICOM_MEDIA_TYPE}")
    encoding = headers.get("content-transfer-encoding", "binary").lower()
    if encoding not in ("binary", "8bit"):
        raise UnsupportedMediaType(f"{what}: Content-Transfer-Encoding {excerpt(encoding)} is not binary")
    length = headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) != len(content)):
        raise MalformedRequest(f"{what}: Content-Length {excerpt(length)} is not the part's length {len(content)}")


def split_parts(body: bytes, boundary: str) -> list[bytes]:
    """The contents of the parts, read strictly: refused unless every reader would split the body the same way."""
    opening = b"--" + boundary.encode("ascii")
    delimiter = b"\r\n" + opening
    # The CRLF that belongs to every delimiter may open the first one too (dicomweb-client, so OHIF, writes it).
    start = 2 if body.startswith(delimiter + b"\r\n") else 0
    if not body.startswith(opening + b"\r\n", start):
        raise MalformedRequest("the body must start with the boundary line (no preamble)")
    parts: list[bytes] = []
    position = start + len(opening) + 2
    while True:
        end = body.find(delimiter, position)
        if end < 0:
            raise MalformedRequest("the body ends before its closing boundary")
        header_end = body.find(b"\r\n\r\n", position, end)
        if header_end >= 0:
            header_block, content = body[position:header_end], body[header_end + 4 : end]
        elif body.startswith(b"\r\n", position):  # no headers at all
            header_block, content = b"", body[position + 2 : end]
        else:
            raise MalformedRequest(f"part {len(parts) + 1} has no blank line after its headers")
        index = len(parts) + 1
        _check_part(_part_headers(header_block, index), content, index)
        parts.append(content)
        after = end + len(delimiter)
        tail = body[after : after + 2]
        if tail == b"--":
            if body[after + 2 :] not in (b"", b"\r\n"):
                raise MalformedRequest("nothing may follow the closing boundary")
            return parts
        if tail != b"\r\n":  # "--boundaryX" or "--boundary " inside a part: readers disagree on those
            raise MalformedRequest(f"part {index} holds a line that starts like the boundary")
        position = after + 2


def encode_multipart(parts: Iterable[bytes]) -> tuple[bytes, str]:
    """A fresh STOW-RS body around ``parts`` and its Content-Type, under a boundary no part contains."""
    contents = list(parts)
    while True:
        boundary = "awesomme-" + secrets.token_hex(16)
        if not any(boundary.encode("ascii") in part for part in contents):
            break
    head = f"--{boundary}\r\nContent-Type: {DICOM_MEDIA_TYPE}\r\n\r\n".encode("ascii")
    chunks = []
    for part in contents:
        chunks += [head, part, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks), f'multipart/related; type="{DICOM_MEDIA_TYPE}"; boundary={boundary}'
