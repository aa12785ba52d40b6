"""The files of an import: plain uploads, or the members of one zip, unpacked in memory behind guards.

A zip is refused whole when it tries a trick: a member whose name leaves the archive (absolute, ``..``, a drive,
a backslash, a NUL), a link, an encrypted member, more members than allowed, more unpacked bytes than allowed, or
a member that expands more than the ratio cap (a zip bomb). The declared sizes are checked before anything is
unpacked, and every member is read in chunks that stop at its declared size and at the total cap, so a forged
header cannot make it expand further.
"""

from __future__ import annotations

import io
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

from awesomme.core.errors import InvalidInput, excerpt

__all__ = ["ArchiveLimits", "UploadedFile", "is_zip", "unpack"]

_CHUNK = 1024**2
_MIN_RATIO_BYTES = 1024**2  # tiny members compress absurdly well (zero-filled padding): the ratio counts above this


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int
    max_bytes: int
    max_ratio: float


@dataclass(frozen=True)
class UploadedFile:
    name: str  # the upload's file name, or ``archive.zip:member/path``
    data: bytes


def is_zip(name: str, data: bytes) -> bool:
    return name.lower().endswith(".zip") or data[:4] == b"PK\x03\x04"


def _safe_member_name(name: str) -> bool:
    if not name or "\x00" in name or "\\" in name or name.startswith("/") or ":" in name.split("/")[0]:
        return False
    return ".." not in PurePosixPath(name).parts


def _is_link(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_ISLNK(mode)


def _check_members(archive_name: str, infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> list[zipfile.ZipInfo]:
    files = [info for info in infos if not info.is_dir()]
    if len(infos) > limits.max_members:
        raise InvalidInput(f"{archive_name}: {len(infos)} members, more than the {limits.max_members} allowed")
    total = 0
    for info in infos:
        member = f"{archive_name}: member {excerpt(info.filename)}"
        if not _safe_member_name(info.filename):
            raise InvalidInput(f"{member} has a path that leaves the archive (nothing was imported)")
        if _is_link(info):
            raise InvalidInput(f"{member} is a link (nothing was imported)")
        if info.flag_bits & 0x1:
            raise InvalidInput(f"{member} is encrypted")
        total += info.file_size
        if info.file_size > _MIN_RATIO_BYTES and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise InvalidInput(
                f"{member} expands {info.file_size / max(info.compress_size, 1):.0f} times, more than the "
                f"{limits.max_ratio:g} allowed (a zip bomb?)"
            )
    if total > limits.max_bytes:
        raise InvalidInput(f"{archive_name}: {total} bytes unpacked, more than the {limits.max_bytes} allowed")
    return files


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, archive_name: str) -> bytes:
    """The member's bytes, never more than it declares nor than what is left of the total budget."""
    cap = min(info.file_size, budget)
    chunks, size = [], 0
    with archive.open(info) as stream:
        while True:
            chunk = stream.read(min(_CHUNK, cap + 1 - size))
            if not chunk:
                break
            size += len(chunk)
            if size > cap:
                raise InvalidInput(f"{archive_name}: member {excerpt(info.filename)} unpacks past its declared size")
            chunks.append(chunk)
    return b"".join(chunks)


def unpack(name: str, data: bytes, limits: ArchiveLimits) -> list[UploadedFile]:
    """The files of one uploaded zip, in archive order, each named ``name:member``."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise InvalidInput(f"{excerpt(name)} is not a readable zip: {error}") from None
    with archive:
        members = _check_members(excerpt(name), archive.infolist(), limits)
        files, budget = [], limits.max_bytes
        for info in members:
            try:
                content = _read_member(archive, info, budget, excerpt(name))
            except (
                zipfile.BadZipFile,
                zipfile.LargeZipFile,
                NotImplementedError,
                OSError,
                EOFError,
                zlib.error,
            ) as error:
                raise InvalidInput(
                    f"{excerpt(name)}: member {excerpt(info.filename)} cannot be read: {error}"
                ) from None
            budget -= len(content)
            files.append(UploadedFile(f"{excerpt(name)}:{excerpt(info.filename, 255)}", content))
    return files
