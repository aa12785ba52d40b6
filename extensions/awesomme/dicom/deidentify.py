"""De-identification per DICOM PS3.15 Annex E: the Basic Application Level Confidentiality Profile, table-driven.

The profile's Table E.1-1 is data, not code: its attribute lists (actions D, Z, X, U and the combined Z/D, X/Z, X/D,
X/Z/D, X/Z/U*) are read from ``dicomanonymizer.dicom_anonymization_databases.dicomfields_2024b`` of the pinned
``dicom-anonymizer`` package (KitwareMedical, BSD-3-Clause licence), a transcription of Table E.1-1 of DICOM 2024b.
Only that table is used; the engine is ours:

* every action applies at every nesting level (items of every sequence are walked with the same table);
* private elements are removed, and so are curves and overlay data/comments (the table's repeating groups);
* combined actions take the choice that keeps an instance valid without keeping information: Z/D is Z (D for the
  Patient ID, which becomes the pseudonym, and the content date and time), X/Z, X/D and X/Z/D are X, and X/Z/U* on
  a sequence keeps its items, cleaned, with their UIDs replaced;
* U: a UID becomes ``2.25.<128 bits of HMAC-SHA256(key, uid) and a 48-bit check, as one integer>``, so the same
  UID with the same (per-cohort) key always gives the same UID and another key another; UIDs named in ``keep_uids``
  (already stored in the target cohort: its SEGs, series imported before), UIDs this key made (the check verifies)
  and the standard's own registered UIDs are kept;
* D: a dummy value of the element's VR (dates and times: 19000101, 000000);
* options (CID 7050): ``retain_longitudinal_modified_dates`` (113107) shifts every date and date-time back by a
  keyed per-patient number of days (1 to 3650), so intervals between studies are kept; times are kept. The
  patient's own dates (birth, death: group 0010) still follow the profile.
  ``retain_patient_characteristics`` (113108) keeps sex, age, size, weight, ethnic group, smoking and pregnancy
  status and cleans allergies, medical alerts, special needs and patient state. ``clean_descriptors`` (113105)
  keeps descriptions, comments and the protocol name, cleaned of the instance's own identifying values (names, IDs,
  birth date, institution, addresses, telephone numbers) and of runs of 6 or more digits;
* Patient Identity Removed = YES, De-identification Method and its Code Sequence (113100 plus one code per option),
  Longitudinal Temporal Information Modified = MODIFIED (dates shifted) or REMOVED;
* pixel data are never touched: instances flagged Burned In Annotation YES, and the kinds most likely to carry
  identity in their pixels (secondary captures, ultrasound, scanned or encapsulated documents, photographs) are
  refused unless the policy allows them (``allow_burned_in``).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final

import pydicom
from dicomanonymizer.dicom_anonymization_databases import dicomfields_2024b as table_e11
from pydicom.datadict import dictionary_has_tag, dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import correct_ambiguous_vr_element
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian
from pydicom.valuerep import AMBIGUOUS_VR

from awesomme.core.errors import InvalidInput

__all__ = [
    "CODES",
    "OPTIONS",
    "TABLE_SOURCE",
    "DeidentificationPolicy",
    "DeidentificationRefused",
    "DeidentifiedInstance",
    "IdentityRow",
    "deidentify",
    "encode",
    "is_keyed_pseudonym",
    "is_keyed_uid",
    "keyed_pseudonym",
    "keyed_uid",
    "meets_policy",
]

TABLE_SOURCE: Final = "DICOM PS3.15 2024b Table E.1-1, as transcribed in dicom-anonymizer 2.1.0 (BSD-3-Clause)"

RETAIN_MODIFIED_DATES: Final = "retain_longitudinal_modified_dates"
RETAIN_PATIENT_CHARACTERISTICS: Final = "retain_patient_characteristics"
CLEAN_DESCRIPTORS: Final = "clean_descriptors"
OPTIONS: Final = (RETAIN_MODIFIED_DATES, RETAIN_PATIENT_CHARACTERISTICS, CLEAN_DESCRIPTORS)

# CID 7050 (PS3.16): the profile, then each option we offer.
BASIC_PROFILE_CODE: Final = ("113100", "Basic Application Confidentiality Profile")
CODES: Final = {
    RETAIN_MODIFIED_DATES: ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    RETAIN_PATIENT_CHARACTERISTICS: ("113108", "Retain Patient Characteristics Option"),
    CLEAN_DESCRIPTORS: ("113105", "Clean Descriptors Option"),
}

MAX_SHIFT_DAYS: Final = 3650
DUMMY_DATE: Final = "19000101"
DUMMY_TIME: Final = "000000"
DUMMY_TEXT: Final = "ANONYMIZED"
_TEXT_VRS: Final = {"LO", "SH", "ST", "LT", "UT", "UC", "CS"}
_BINARY_VRS: Final = {"OB", "OW", "OD", "OF", "OL", "OV", "UN"}
_NUMBER_VRS: Final = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"}

# Pixels that often show who the patient is (PS3.15 E.1.1 and E.3.1): refused unless the policy allows them.
_HIGH_RISK_CLASSES: Final = {
    "1.2.840.10008.5.1.4.1.1.6.1": "ultrasound",
    "1.2.840.10008.5.1.4.1.1.6.2": "ultrasound",
    "1.2.840.10008.5.1.4.1.1.3.1": "ultrasound",
    "1.2.840.10008.5.1.4.1.1.7": "secondary capture",
    "1.2.840.10008.5.1.4.1.1.7.1": "secondary capture",
    "1.2.840.10008.5.1.4.1.1.7.2": "secondary capture",
    "1.2.840.10008.5.1.4.1.1.7.3": "secondary capture",
    "1.2.840.10008.5.1.4.1.1.7.4": "secondary capture",
    "1.2.840.10008.5.1.4.1.1.104.1": "encapsulated document",
    "1.2.840.10008.5.1.4.1.1.104.2": "encapsulated document",
    "1.2.840.10008.5.1.4.1.1.104.3": "encapsulated document",
    "1.2.840.10008.5.1.4.1.1.77.1.1": "photograph",
    "1.2.840.10008.5.1.4.1.1.77.1.4": "photograph",
}
_HIGH_RISK_MODALITIES: Final = {
    "US": "ultrasound",
    "SC": "secondary capture",
    "DOC": "scanned document",
    "OT": "other (often a scanned document)",
    "XC": "photograph",
    "ES": "endoscopy",
}

# Retain Patient Characteristics: kept (K) or cleaned (C) instead of the profile's action.
_PATIENT_KEPT: Final = {
    "PatientSex",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "EthnicGroup",
    "PatientSexNeutered",
    "SmokingStatus",
    "PregnancyStatus",
}
_PATIENT_CLEANED: Final = {"Allergies", "MedicalAlerts", "SpecialNeeds", "PatientState"}
# Clean Descriptors: free-text descriptions cleaned instead of removed.
_DESCRIPTOR_SUFFIXES: Final = ("Description", "Comments", "Comment")
_DESCRIPTORS: Final = {
    "ProtocolName",
    "AdditionalPatientHistory",
    "ReasonForStudy",
    "ReasonForTheRequestedProcedure",
    "ContrastBolusAgent",
    "AcquisitionComments",
    "DerivationDescription",
}
# The instance's own values that a cleaned text must not repeat.
_IDENTIFYING: Final = {
    "PatientID",
    "OtherPatientIDs",
    "PatientBirthDate",
    "AccessionNumber",
    "StudyID",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "MedicalRecordLocator",
    "StationName",
    "DeviceSerialNumber",
    "AdmissionID",
    "IssuerOfPatientID",
    "PatientMotherBirthName",
    "PatientBirthName",
}
_DIGIT_RUN: Final = re.compile(r"\d{6,}")
_REDACTED: Final = "***"

# Attributes the profile's flags set (they are written after the walk, never taken from the input).
_FLAG_TAGS: Final = {0x00120062, 0x00120063, 0x00120064, 0x00280303}
_PATIENT_GROUP: Final = 0x0010
_PATIENT_ID: Final = 0x00100020
_PATIENT_NAME: Final = 0x00100010
_CONTENT_DATE_TIME: Final = {0x00080023, 0x00080033}


def _table() -> tuple[dict[int, str], list[tuple[int, int, int, int, str]]]:
    """Table E.1-1 as {tag: action} plus its masked (repeating group) rows."""
    exact: dict[int, str] = {}
    masked: list[tuple[int, int, int, int, str]] = []
    for name, action in (
        ("D_TAGS", "D"),
        ("Z_TAGS", "Z"),
        ("X_TAGS", "X"),
        ("U_TAGS", "U"),
        ("Z_D_TAGS", "Z/D"),
        ("X_Z_TAGS", "X/Z"),
        ("X_D_TAGS", "X/D"),
        ("X_Z_D_TAGS", "X/Z/D"),
        ("X_Z_U_STAR_TAGS", "X/Z/U*"),
    ):
        for row in getattr(table_e11, name):
            if len(row) == 2:
                exact[(row[0] << 16) | row[1]] = action
            else:
                group, element, group_mask, element_mask = row
                masked.append((group, element, group_mask, element_mask, action))
    return exact, masked


_EXACT, _MASKED = _table()


def table_action(tag: int) -> str | None:
    """Table E.1-1's action for ``tag`` (None: not listed, the element is kept)."""
    action = _EXACT.get(tag)
    if action is not None:
        return action
    group, element = tag >> 16, tag & 0xFFFF
    for row_group, row_element, group_mask, element_mask, row_action in _MASKED:
        if group & group_mask == row_group and element & element_mask == row_element & element_mask:
            return row_action
    return None


class DeidentificationRefused(InvalidInput):
    """An instance the policy does not let in; ``reason`` names why (``burned_in_annotation``, ``high_risk_kind``,
    ``pseudonym``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class DeidentificationPolicy:
    """A cohort's policy: ``identified`` cohorts store data as sent; others get the Basic Profile with ``options``."""

    identified: bool = False
    options: frozenset[str] = frozenset()
    allow_burned_in: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.options) - set(OPTIONS)
        if unknown:
            raise InvalidInput(
                f"unknown de-identification option(s) {', '.join(sorted(unknown))}; known: {', '.join(OPTIONS)}"
            )
        object.__setattr__(self, "options", frozenset(self.options))


@dataclass(frozen=True)
class IdentityRow:
    """One line of the identity map: an original value and what replaced it."""

    attribute: str
    original: str
    replacement: str


@dataclass
class DeidentifiedInstance:
    dataset: Dataset
    rows: list[IdentityRow] = field(default_factory=list)
    date_shift_days: int = 0


def _mac(key: bytes, label: bytes, value: bytes, size: int) -> bytes:
    return hmac.new(key, label + value, hashlib.sha256).digest()[:size]


def keyed_uid(key: bytes, uid: str) -> str:
    """The UID ``uid`` becomes under ``key``: ``2.25.`` and 176 bits as an integer (58 characters at most): 128 bits
    of HMAC-SHA256 of ``uid``, then 48 bits that authenticate them, so a UID this key made is recognised as such
    (``is_keyed_uid``) and never mapped twice (a SEG of a de-identified series keeps its references)."""
    body = _mac(key, b"uid:", uid.encode("ascii", "replace"), 16)
    check = _mac(key, b"uid-check:", body, 6)
    return "2.25." + str(int.from_bytes(body + check, "big"))


def is_keyed_uid(key: bytes, uid: str) -> bool:
    """Whether ``uid`` is one ``keyed_uid`` made with ``key``."""
    if not uid.startswith("2.25.") or not uid[5:].isdigit() or len(uid) > 64:
        return False
    number = int(uid[5:])
    if number >= 1 << 176:
        return False
    raw = number.to_bytes(22, "big")
    return hmac.compare_digest(_mac(key, b"uid-check:", raw[:16], 6), raw[16:])


def keyed_pseudonym(key: bytes, patient_id: str) -> str:
    """``P`` and 16 hexadecimal digits from the patient ID, then 6 that authenticate them (``is_keyed_pseudonym``)."""
    body = _mac(key, b"patient:", patient_id.encode("utf-8", "replace"), 8)
    return "P" + (body + _mac(key, b"patient-check:", body, 3)).hex().upper()


def is_keyed_pseudonym(key: bytes, value: str) -> bool:
    text = value.strip()
    if len(text) != 23 or not text.startswith("P"):
        return False
    try:
        raw = bytes.fromhex(text[1:])
    except ValueError:
        return False
    return hmac.compare_digest(_mac(key, b"patient-check:", raw[:8], 3), raw[8:])


def date_shift_days(key: bytes, patient_id: str) -> int:
    """How many days this patient's dates move back: 1 to ``MAX_SHIFT_DAYS``, fixed by key and patient."""
    digest = hmac.new(key, b"date-shift:" + patient_id.encode("utf-8", "replace"), hashlib.sha256).digest()
    return 1 + int.from_bytes(digest[:8], "big") % MAX_SHIFT_DAYS


def _shift_date(value: str, days: int) -> str:
    text = value.strip()
    if len(text) < 8 or not text[:8].isdigit():
        return DUMMY_DATE
    try:
        moved = date(int(text[:4]), int(text[4:6]), int(text[6:8])) - timedelta(days=days)
    except ValueError:
        return DUMMY_DATE
    return f"{moved.year:04d}{moved.month:02d}{moved.day:02d}"


def _shift_datetime(value: str, days: int) -> str:
    text = value.strip()
    return _shift_date(text[:8], days) + text[8:] if len(text) >= 8 else DUMMY_DATE


def _is_registered_uid(uid: str) -> bool:
    return uid in pydicom.uid.UID_dictionary


class _Walk:
    def __init__(
        self,
        policy: DeidentificationPolicy,
        key: bytes,
        keep_uids: Collection[str],
        shift: int,
        pseudonym: str,
        scrub: Callable[[str], str],
    ) -> None:
        self.policy = policy
        self.key = key
        self.keep_uids = set(keep_uids)
        self.shift = shift
        self.pseudonym = pseudonym
        self.scrub = scrub
        self.uid_rows: dict[str, str] = {}
        self.uid_attribute: dict[str, str] = {}

    def uid(self, value: str, keyword: str) -> str:
        value = value.strip().rstrip("\x00")
        if not value or value in self.keep_uids or _is_registered_uid(value) or is_keyed_uid(self.key, value):
            return value
        mapped = keyed_uid(self.key, value)
        if value not in self.uid_rows:
            self.uid_rows[value] = mapped
            self.uid_attribute[value] = keyword or "UID"
        return mapped

    def dataset(self, dataset: Dataset, top: bool) -> None:
        for tag in list(dataset.keys()):
            if _kept_unread(dataset._dict[tag]):
                continue
            element = dataset[tag]
            if element.tag.is_private:
                del dataset[tag]
                continue
            if top and int(tag) in _FLAG_TAGS:
                del dataset[tag]
                continue
            self.element(dataset, element)

    def element(self, dataset: Dataset, element: DataElement) -> None:
        tag = int(element.tag)
        keyword = element.keyword
        action = table_action(tag)
        options = self.policy.options
        # Dates of events move by the patient's shift; the patient's own (birth, death) follow the profile.
        dated = RETAIN_MODIFIED_DATES in options and tag >> 16 != _PATIENT_GROUP
        if element.VR in ("DA", "DT") and dated and action != "U":
            self.shift_dates(element)
            return
        if element.VR == "TM" and dated and action is not None:
            return  # times are kept with shifted dates: only whole days move
        if RETAIN_PATIENT_CHARACTERISTICS in options and keyword in _PATIENT_KEPT:
            return
        if RETAIN_PATIENT_CHARACTERISTICS in options and keyword in _PATIENT_CLEANED:
            self.clean(element)
            return
        if CLEAN_DESCRIPTORS in options and action is not None and self.is_descriptor(element):
            self.clean(element)
            return
        if tag == _PATIENT_ID:
            element.value = self.pseudonym
            return
        if tag == _PATIENT_NAME:
            element.value = self.pseudonym + "^"
            return
        if action is None:
            if element.VR == "SQ":
                self.items(element)
            return
        resolved = self.resolve(action, tag)
        if resolved == "X":
            del dataset[element.tag]
        elif resolved == "Z":
            element.value = [] if element.VR == "SQ" else None
        elif resolved == "D":
            self.dummy(element)
        elif resolved == "U":
            if element.VR == "SQ":
                self.items(element)
            elif element.VR == "UI":
                self.replace_uids(element)
            else:
                self.dummy(element)

    @staticmethod
    def resolve(action: str, tag: int) -> str:
        if action == "Z/D":
            return "D" if tag in _CONTENT_DATE_TIME else "Z"
        if action in ("X/Z", "X/D", "X/Z/D"):
            return "X"
        if action == "X/Z/U*":
            return "U"
        return action

    @staticmethod
    def is_descriptor(element: DataElement) -> bool:
        keyword = element.keyword
        if element.VR not in _TEXT_VRS - {"CS"}:
            return False
        return keyword in _DESCRIPTORS or keyword.endswith(_DESCRIPTOR_SUFFIXES)

    def items(self, element: DataElement) -> None:
        for item in element.value or []:
            self.dataset(item, top=False)

    def replace_uids(self, element: DataElement) -> None:
        value = element.value
        if isinstance(value, str | bytes):
            text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
            element.value = self.uid(text, element.keyword)
        elif value is not None:
            element.value = [self.uid(str(one), element.keyword) for one in value]

    def shift_dates(self, element: DataElement) -> None:
        shift = _shift_date if element.VR == "DA" else _shift_datetime
        value = element.value
        if not value:
            return
        if isinstance(value, str):
            element.value = shift(value, self.shift)
        else:
            element.value = [shift(str(one), self.shift) for one in value]

    def clean(self, element: DataElement) -> None:
        value = element.value
        if isinstance(value, str):
            element.value = self.scrub(value)
        elif isinstance(value, list | pydicom.multival.MultiValue):
            element.value = [self.scrub(str(one)) for one in value]
        elif value is not None and element.VR == "SQ":
            self.items(element)
        elif value is not None:
            self.dummy(element)

    def dummy(self, element: DataElement) -> None:
        vr = element.VR
        if vr == "SQ":
            self.items(element)
        elif vr == "UI":
            self.replace_uids(element)
        elif vr == "DA":
            element.value = DUMMY_DATE
        elif vr == "TM":
            element.value = DUMMY_TIME
        elif vr == "DT":
            element.value = DUMMY_DATE + DUMMY_TIME
        elif vr == "PN":
            element.value = DUMMY_TEXT + "^"
        elif vr in ("IS", "DS"):
            element.value = "0"
        elif vr == "AS":
            element.value = "000Y"
        elif vr in _NUMBER_VRS:
            element.value = 0
        elif vr in _BINARY_VRS:
            element.value = b""
        elif vr == "AE":
            element.value = "ANONYMOUS"
        else:
            element.value = DUMMY_TEXT


def _identifying_values(dataset: Dataset) -> list[str]:
    """Values a cleaned text must not repeat: names (each part), IDs, birth date, institution, addresses."""
    found: set[str] = set()

    def add(text: str) -> None:
        for part in re.split(r"[\^\\=,;]", text):
            part = part.strip()
            if len(part) >= 3:
                found.add(part)

    def walk(item: Dataset) -> None:
        for element in item:
            if element.VR == "SQ":
                for child in element.value or []:
                    walk(child)
            elif element.value is not None and (element.VR == "PN" or element.keyword in _IDENTIFYING):
                values = (
                    element.value if isinstance(element.value, list | pydicom.multival.MultiValue) else [element.value]
                )
                for value in values:
                    add(str(value))

    walk(dataset)
    return sorted(found, key=len, reverse=True)


def _scrubber(dataset: Dataset) -> Callable[[str], str]:
    values = _identifying_values(dataset)
    pattern = re.compile("|".join(re.escape(value) for value in values), re.IGNORECASE) if values else None

    def scrub(text: str) -> str:
        if pattern is not None:
            text = pattern.sub(_REDACTED, text)
        return _DIGIT_RUN.sub(_REDACTED, text)

    return scrub


def _no_text(text: str) -> str:  # pragma: no cover - only called when an option cleans text
    return _REDACTED


def _refuse_risky(dataset: Dataset, policy: DeidentificationPolicy) -> None:
    if policy.allow_burned_in:
        return
    if str(dataset.get("BurnedInAnnotation", "")).strip().upper() == "YES":
        raise DeidentificationRefused(
            "burned_in_annotation",
            "the instance is flagged Burned In Annotation YES: its pixels may show who the "
            "patient is, and this cohort does not allow such instances",
        )
    sop_class = str(dataset.get("SOPClassUID", ""))
    modality = str(dataset.get("Modality", "")).strip().upper()
    kind = _HIGH_RISK_CLASSES.get(sop_class) or _HIGH_RISK_MODALITIES.get(modality)
    if kind is not None:
        raise DeidentificationRefused(
            "high_risk_kind",
            f"the instance is a {kind} (SOP class {sop_class or 'none'}, modality {modality or 'none'}):"
            " its pixels often show who the patient is, and this cohort does not allow such instances",
        )


def _check_pseudonym(pseudonym: str) -> str:
    text = pseudonym.strip()
    if not text or len(text) > 64 or "\\" in text or "^" in text or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise DeidentificationRefused(
            "pseudonym",
            "the pseudonymous PatientID must be 1 to 64 characters without a backslash, a caret or control characters",
        )
    return text


def _code_item(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def _set_flags(dataset: Dataset, policy: DeidentificationPolicy) -> None:
    chosen = [CODES[option] for option in OPTIONS if option in policy.options]
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = ["DICOM PS3.15 E.1-1 Basic Profile (2024b)"] + [
        meaning[:64] for _, meaning in chosen
    ]
    dataset.DeidentificationMethodCodeSequence = Sequence(
        [_code_item(*BASIC_PROFILE_CODE)] + [_code_item(value, meaning) for value, meaning in chosen]
    )
    dataset.LongitudinalTemporalInformationModified = (
        "MODIFIED" if RETAIN_MODIFIED_DATES in policy.options else "REMOVED"
    )


def _new_file_meta(dataset: Dataset, old: FileMetaDataset | None) -> FileMetaDataset:
    """File meta rebuilt from the de-identified dataset: nothing of the sender's (AE titles, private info) stays."""
    meta = FileMetaDataset()
    syntax = old.get("TransferSyntaxUID") if old is not None else None
    meta.TransferSyntaxUID = UID(syntax) if syntax else ExplicitVRLittleEndian
    if "SOPClassUID" in dataset:
        meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    if "SOPInstanceUID" in dataset:
        meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    return meta


def _dates_shifted_before(ds: Dataset, key: bytes, keep_uids: Collection[str]) -> bool:
    """An instance of a study already de-identified (kept or made by this key) that says its dates were shifted
    keeps its dates: shifting them again would move it away from its study."""
    study = str(ds.get("StudyInstanceUID", "") or "")
    already = study in keep_uids or is_keyed_uid(key, study)
    flagged = str(ds.get("PatientIdentityRemoved", "")).upper() == "YES"
    modified = str(ds.get("LongitudinalTemporalInformationModified", "")).upper() == "MODIFIED"
    return already and flagged and modified


def deidentify(
    ds: Dataset,
    policy: DeidentificationPolicy,
    key: bytes,
    *,
    pseudonym: str | None = None,
    keep_uids: Collection[str] = (),
) -> DeidentifiedInstance:
    """``ds`` de-identified under ``policy`` with the cohort's ``key`` (``ds`` itself is left as it was).

    ``pseudonym`` becomes PatientID (and Patient's Name ``<pseudonym>^``); without one, a keyed pseudonym of the
    original PatientID. ``keep_uids`` are kept as they are. The answer's rows map each original identity value and
    UID to its replacement (for the importer's identity map: never to be stored). Raises ``DeidentificationRefused``
    for instances the policy does not let in.
    """
    if policy.identified:
        return DeidentifiedInstance(dataset=_copy(ds))
    if not key:
        raise ValueError("a de-identification key is required")
    _refuse_risky(ds, policy)
    original_id = str(ds.get("PatientID", "") or "")
    original_name = str(ds.get("PatientName", "") or "")
    if pseudonym is not None:
        new_id = _check_pseudonym(pseudonym)
    elif is_keyed_pseudonym(key, original_id):
        new_id = original_id.strip()  # de-identified with this key before (a SEG drawn on our series)
    else:
        new_id = keyed_pseudonym(key, original_id)
    shift = 0 if _dates_shifted_before(ds, key, keep_uids) else date_shift_days(key, original_id or new_id)
    out = _copy(ds)
    cleans = bool(policy.options & {CLEAN_DESCRIPTORS, RETAIN_PATIENT_CHARACTERISTICS})
    walk = _Walk(policy, key, keep_uids, shift, new_id, _scrubber(ds) if cleans else _no_text)
    walk.dataset(out, top=True)
    if "PatientID" not in out:
        out.PatientID = new_id
    if "PatientName" not in out:
        out.PatientName = new_id + "^"
    _set_flags(out, policy)
    out.file_meta = _new_file_meta(out, getattr(ds, "file_meta", None))
    rows = [IdentityRow("PatientID", original_id, new_id), IdentityRow("PatientName", original_name, new_id + "^")]
    rows += [IdentityRow(walk.uid_attribute[uid], uid, new) for uid, new in walk.uid_rows.items()]
    return DeidentifiedInstance(
        dataset=out, rows=rows, date_shift_days=shift if RETAIN_MODIFIED_DATES in policy.options else 0
    )


# VRs of elements that ``_Walk.element`` leaves as they are when Table E.1-1 does not list them and no option names
# them: not sequences (their items are walked), not dates (shifted), not UN or ambiguous VRs (read to know).
_PLAIN_VRS: Final = frozenset([
    "AE", "AS", "AT", "CS", "DS", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV", "OW", "PN", "SH", "SL",
    "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UR", "US", "UT", "UV",
])  # fmt: skip
_NOT_PLAIN: Final = {_PATIENT_ID, _PATIENT_NAME, *_FLAG_TAGS}


def _kept_unread(element: DataElement | RawDataElement) -> bool:
    """Whether an element not read yet is one the walk keeps unchanged whatever the policy: public, not listed by
    Table E.1-1, of a plain VR, no patient characteristic an option cleans. It stays unread (its bytes go out as they
    came, checked on the way in) instead of being decoded only to be kept."""
    if not isinstance(element, RawDataElement):
        return False
    tag = int(element.tag)
    if tag >> 16 & 1 or tag in _NOT_PLAIN or table_action(tag) is not None:
        return False
    vr = element.VR
    if vr is None:  # implicit VR: the dictionary's
        if not dictionary_has_tag(tag):
            return False
        vr = dictionary_VR(tag)
    return vr in _PLAIN_VRS and keyword_for_tag(tag) not in _PATIENT_CLEANED


def _copy(ds: Dataset) -> Dataset:
    """An independent copy for the walk to change. Elements not yet read (pydicom's raw elements) are immutable and
    shared; read ones are copied, sequences item by item (pydicom 2's deep copy follows each item's parent and takes
    seconds, or exhausts the stack, on a dataset with many sequences)."""
    out = Dataset()
    for tag, element in ds._dict.items():
        if isinstance(element, RawDataElement):
            out._dict[tag] = element
        elif element.VR == "SQ":
            out.add(DataElement(tag, "SQ", Sequence([_copy(item) for item in element.value or []])))
        else:
            value = element.value
            if isinstance(value, MultiValue | list):
                value = list(value)
            out.add(DataElement(tag, element.VR, value))
    out.is_little_endian = getattr(ds, "is_little_endian", None)
    out.is_implicit_VR = getattr(ds, "is_implicit_VR", None)
    # The shared raw elements are in the original's encoding: the copy reads (and writes) them as such.
    out.set_original_encoding(ds.read_implicit_vr, ds.read_little_endian, ds.read_encoding)
    if hasattr(ds, "file_meta"):
        out.file_meta = FileMetaDataset(ds.file_meta)
    return out


def _resolve_ambiguous_vrs(dataset: Dataset, little_endian: bool) -> None:
    """What pydicom's writer does to a dataset whose encoding changed, for the elements that were read or written:
    an ambiguous VR (US or SS, OB or OW, ...) resolved from the dataset. Unread elements are written as read."""
    for element in dataset._dict.values():
        if isinstance(element, RawDataElement):
            continue
        if element.VR == "SQ":
            for item in element.value or []:
                _resolve_ambiguous_vrs(item, little_endian)
        elif element.VR in AMBIGUOUS_VR:
            correct_ambiguous_vr_element(element, dataset, little_endian)


def encode(dataset: Dataset) -> bytes:
    """``dataset`` as a Part 10 file (preamble, file meta), as Orthanc receives it."""
    buffer = io.BytesIO()
    file_dataset = pydicom.dataset.FileDataset("", dataset, file_meta=dataset.file_meta, preamble=b"\x00" * 128)
    file_dataset.is_little_endian = dataset.file_meta.TransferSyntaxUID.is_little_endian
    file_dataset.is_implicit_VR = dataset.file_meta.TransferSyntaxUID.is_implicit_VR
    # Read in this very encoding (``_copy``): pydicom writes the unread elements as they are instead of reading
    # every one of them to resolve ambiguous VRs; the read and written ones are resolved here.
    file_dataset.set_original_encoding(dataset.read_implicit_vr, dataset.read_little_endian, dataset.read_encoding)
    _resolve_ambiguous_vrs(file_dataset, file_dataset.is_little_endian)
    file_dataset.save_as(buffer, write_like_original=False)
    return buffer.getvalue()


def meets_policy(dataset: Dataset | dict[str, Any], policy: DeidentificationPolicy) -> bool:
    """Whether an instance already stored may join a cohort of ``policy``: identified cohorts take anything, the
    others only instances marked Patient Identity Removed YES."""
    if policy.identified:
        return True
    value = dataset.get("PatientIdentityRemoved", "")
    return str(value or "").strip().upper() == "YES"
