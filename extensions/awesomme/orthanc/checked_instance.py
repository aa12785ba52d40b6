"""One STOW-RS part read strictly, and the bytes that are sent on to Orthanc for it.

pydicom keeps the last of two equal tags and DCMTK (Orthanc) the first, so a dataset holding an element twice is
refused: a walk over the raw element stream (file meta, data set and every sequence item) finds repeats that
pydicom's reader would silently merge. What goes to Orthanc is pydicom's re-encoding of the dataset that was
checked, with its file meta made consistent with it, never the client's bytes.
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass

import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from awesomme.orthanc.multipart import MalformedRequest, UnsupportedMediaType, excerpt

__all__ = ["CheckedDataset", "CheckedInstance", "check_instance", "find_repeated_element", "read_checked"]

MAX_UID_LENGTH = 64
_LONG_LENGTH_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_VRS = _LONG_LENGTH_VRS | {
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"PN", b"SH", b"SL",
    b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
}  # fmt: skip
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010


class _Malformed(Exception):
    pass


def _tag_name(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


class _Walker:
    """Walks encoded elements without interpreting values; raises on a repeated tag or on bytes that do not parse."""

    def __init__(self, data: bytes, implicit: bool, little: bool) -> None:
        self.data = data
        self.implicit = implicit
        self.prefix = "<" if little else ">"

    def _unpack(self, fmt: str, position: int) -> tuple[int, ...]:
        size = struct.calcsize(fmt)
        if position + size > len(self.data):
            raise _Malformed("the data ends inside an element header")
        return struct.unpack(self.prefix + fmt, self.data[position : position + size])

    def _tag(self, position: int) -> int:
        group, element = self._unpack("HH", position)
        return (group << 16) | element

    def element(self, position: int, limit: int) -> tuple[int, int]:
        """(tag, position after the element); recurses into sequences."""
        tag = self._tag(position)
        if self.implicit or tag >> 16 == 0xFFFE:
            (length,) = self._unpack("I", position + 4)
            vr = dictionary_VR(tag).encode("ascii") if _known(tag) else b"UN"
            start = position + 8
        else:
            vr = self.data[position + 4 : position + 6]
            if vr not in _VRS:
                raise _Malformed(f"{_tag_name(tag)} has no valid VR")
            if vr in _LONG_LENGTH_VRS:
                (length,) = self._unpack("I", position + 8)
                start = position + 12
            else:
                (length,) = self._unpack("H", position + 6)
                start = position + 8
        if length == _UNDEFINED:
            if not self.implicit and vr not in (b"SQ", b"UN", b"OB", b"OW"):
                raise _Malformed(f"{_tag_name(tag)} has an undefined length but is not a sequence")
            return tag, self.items(start, limit, tag == _PIXEL_DATA, None)
        end = start + length
        if end > limit:
            raise _Malformed(f"{_tag_name(tag)} runs past the end of the data")
        if vr == b"SQ":
            self.items(start, end, False, end)
        return tag, end

    def items(self, position: int, limit: int, fragments: bool, end: int | None) -> int:
        """Sequence items (or pixel data fragments) up to ``end`` or the sequence delimiter."""
        while end is None or position < end:
            tag = self._tag(position)
            (length,) = self._unpack("I", position + 4)
            position += 8
            if tag == _SEQUENCE_END and end is None:
                return position
            if tag != _ITEM:
                raise _Malformed(f"{_tag_name(tag)} where a sequence item was expected")
            if fragments:
                if length == _UNDEFINED or position + length > limit:
                    raise _Malformed("a pixel data fragment runs past the end of the data")
                position += length
            elif length == _UNDEFINED:
                position = self.dataset(position, limit, item=True)
            else:
                self.dataset(position, position + length, item=False)
                position += length
        if position != end:
            raise _Malformed("a sequence item runs past its sequence")
        return position

    def dataset(self, position: int, limit: int, item: bool, stop_group: int | None = None) -> int:
        """Elements up to ``limit`` (or the item delimiter when ``item``); no tag twice."""
        seen: set[int] = set()
        while position < limit:
            tag = self._tag(position)
            if stop_group is not None and tag >> 16 != stop_group:
                return position
            if item and tag == _ITEM_END:
                return position + 8
            if tag in seen:
                raise _Repeated(tag)
            seen.add(tag)
            tag, position = self.element(position, limit)
        if item:
            raise _Malformed("an item has no end")
        if position != limit:
            raise _Malformed("an element runs past the end of the data")
        return position


class _Repeated(Exception):
    def __init__(self, tag: int) -> None:
        super().__init__(tag)
        self.tag = tag


def _known(tag: int) -> bool:
    try:
        dictionary_VR(tag)
    except KeyError:
        return False
    return True


def find_repeated_element(content: bytes, implicit: bool, little: bool) -> str | None:
    """The first element given twice in one dataset (file meta, data set, any item) of a Part 10 file.

    Raises ``_Malformed`` when the stream does not parse as the transfer syntax says.
    """
    try:
        # The file meta: group 2, explicit VR little endian, after the 128-byte preamble and "DICM".
        after_meta = _Walker(content, implicit=False, little=True).dataset(132, len(content), False, 0x0002)
        _Walker(content, implicit, little).dataset(after_meta, len(content), item=False)
    except _Repeated as repeated:
        return _tag_name(repeated.tag)
    return None


@dataclass(frozen=True)
class CheckedInstance:
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    patient_id: str
    encoded: bytes  # what Orthanc receives
    original_md5: str  # of the client's part, to recognise an identical re-send of a stored file

    @property
    def encoded_md5(self) -> str:
        return hashlib.md5(self.encoded, usedforsecurity=False).hexdigest()


def _uid(dataset: pydicom.Dataset, keyword: str, index: int) -> str:
    value = dataset.get(keyword)
    if not isinstance(value, str) or not value:
        raise MalformedRequest(f"part {index}: {keyword} is missing or not one UID")
    if len(value) > MAX_UID_LENGTH or not all(part.isdigit() and part.isascii() for part in value.split(".")):
        raise MalformedRequest(f"part {index}: {keyword} {excerpt(value)} is not a UID")
    return value


def _check_meta(dataset: pydicom.FileDataset, sop_instance_uid: str, index: int) -> UID:
    meta = dataset.file_meta
    syntax = meta.get("TransferSyntaxUID")
    if syntax is None:
        raise MalformedRequest(f"part {index}: the file meta names no transfer syntax")
    if syntax == DeflatedExplicitVRLittleEndian:
        raise UnsupportedMediaType(f"part {index}: the deflated transfer syntax is not accepted")
    if syntax.is_private or not syntax.is_transfer_syntax:
        raise UnsupportedMediaType(f"part {index}: unknown transfer syntax {excerpt(str(syntax))}")
    stated = meta.get("MediaStorageSOPInstanceUID")
    if stated is not None and stated != sop_instance_uid:
        raise MalformedRequest(f"part {index}: the file meta names another SOP Instance UID than the dataset")
    return UID(syntax)


@dataclass(frozen=True)
class CheckedDataset:
    """A part that passed every check of ``check_instance`` but its re-encoding: the dataset as read, for a caller that
    changes it (de-identification) and encodes the result itself."""

    dataset: pydicom.FileDataset
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    patient_id: str


def read_checked(content: bytes, index: int) -> CheckedDataset:
    """Read one part; refuse what is not a Part 10 file with single, well-formed UIDs, or could read two ways."""
    try:
        dataset = pydicom.dcmread(io.BytesIO(content))
        sop_instance_uid = _uid(dataset, "SOPInstanceUID", index)
        syntax = _check_meta(dataset, sop_instance_uid, index)
        repeated = find_repeated_element(content, syntax.is_implicit_VR, syntax.is_little_endian)
    except _Malformed as error:
        raise MalformedRequest(f"part {index} is not a well-formed DICOM file: {error}") from error
    except (InvalidDicomError, EOFError, ValueError, TypeError, KeyError, struct.error) as error:
        raise MalformedRequest(f"part {index} is not a readable DICOM file") from error
    if repeated:
        raise MalformedRequest(f"part {index} holds the element {repeated} more than once")
    study_uid = _uid(dataset, "StudyInstanceUID", index)
    series_uid = _uid(dataset, "SeriesInstanceUID", index)
    patient_id = dataset.get("PatientID", "")
    if not isinstance(patient_id, str):
        raise MalformedRequest(f"part {index}: PatientID holds several values")
    return CheckedDataset(dataset, study_uid, series_uid, sop_instance_uid, patient_id)


def check_instance(content: bytes, index: int) -> CheckedInstance:
    """Read one part (``read_checked``) and encode the dataset read, with its file meta made consistent with it."""
    checked = read_checked(content, index)
    dataset = checked.dataset
    meta = dataset.file_meta
    meta.MediaStorageSOPInstanceUID = UID(checked.sop_instance_uid)
    if "SOPClassUID" in dataset:
        meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    encoded = io.BytesIO()
    try:
        dataset.save_as(encoded, write_like_original=False)
    except (ValueError, TypeError, KeyError, struct.error) as error:
        raise MalformedRequest(f"part {index} cannot be encoded again as read") from error
    return CheckedInstance(
        study_uid=checked.study_uid,
        series_uid=checked.series_uid,
        sop_instance_uid=checked.sop_instance_uid,
        patient_id=checked.patient_id,
        encoded=encoded.getvalue(),
        original_md5=hashlib.md5(content, usedforsecurity=False).hexdigest(),
    )
