"""The metadata sheet of a legacy NIfTI import: which file is which image and which masks belong to it.

A CSV with a header row. Its columns are a whitelist, each mapped to a DICOM attribute or to the mask's import,
each value type-checked; any other column, a missing required value or a bad value is refused naming the row (as
numbered in the file, the header being row 1), the column and the value. One row per image; an image with several
masks takes one row per mask, repeating the image's columns unchanged.

| column              | goes to                          | check                                            |
|---------------------|----------------------------------|--------------------------------------------------|
| image               | the NIfTI file (name in upload)  | required, ``.nii`` or ``.nii.gz``                |
| PatientID           | Patient ID (the pseudonym, kept) | required, 1-64 printable ASCII, no backslash     |
| Modality            | Modality                         | required, CT or MR                               |
| PatientSex          | Patient's Sex                    | M, F or O                                        |
| PatientAge          | Patient's Age                    | nnnD, nnnW, nnnM or nnnY                         |
| StudyDate           | Study Date                       | YYYYMMDD or YYYY-MM-DD, a real date              |
| study               | which images share one study     | 1-64 printable ASCII (default: the StudyDate)    |
| SeriesDescription   | Series Description               | 0-64 printable, no backslash                     |
| BodyPartExamined    | Body Part Examined               | 0-16 of A-Z, 0-9, space, _                       |
| mask                | a NIfTI mask of the image        | ``.nii`` or ``.nii.gz``                          |
| label_map           | the mask's segment labels        | JSON object {"1": "tumour"}                      |
| reader              | who drew the mask (display only) | 0-64 printable, no backslash                     |
| algorithm_type      | Segment Algorithm Type           | MANUAL, SEMIAUTOMATIC or AUTOMATIC               |
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date

from awesomme.core.errors import InvalidInput, excerpt

__all__ = ["COLUMNS", "ImageRow", "MaskRow", "parse_sheet"]

COLUMNS = (
    "image",
    "PatientID",
    "Modality",
    "PatientSex",
    "PatientAge",
    "StudyDate",
    "study",
    "SeriesDescription",
    "BodyPartExamined",
    "mask",
    "label_map",
    "reader",
    "algorithm_type",
)
_IMAGE_COLUMNS = COLUMNS[:9]
_REQUIRED = ("image", "PatientID", "Modality")
_NIFTI = re.compile(r"^[^/\\\x00]{1,255}\.nii(\.gz)?$", re.IGNORECASE)
_AGE = re.compile(r"^[0-9]{3}[DWMY]$")
_BODY_PART = re.compile(r"^[A-Z0-9 _]{0,16}$")
_MAX_ROWS = 100_000


@dataclass(frozen=True)
class MaskRow:
    file: str
    row: int
    label_map: dict[str, str] = field(default_factory=dict)
    reader: str = ""
    algorithm_type: str = "MANUAL"


@dataclass
class ImageRow:
    file: str
    row: int
    patient_id: str
    modality: str
    patient_sex: str = ""
    patient_age: str = ""
    study_date: str = ""
    study: str = ""
    series_description: str = ""
    body_part: str = ""
    masks: list[MaskRow] = field(default_factory=list)

    @property
    def study_key(self) -> str:
        return self.study or self.study_date


def _text(value: str, limit: int, what: str) -> str:
    if len(value) > limit:
        raise ValueError(f"longer than {limit} characters")
    if any(char == "\\" or not char.isprintable() for char in value):
        raise ValueError(f"{what} may hold no backslash or control character")
    return value


def _ascii_id(value: str) -> str:
    if not value:
        raise ValueError("is required")
    if not value.isascii():
        raise ValueError("must be ASCII")
    return _text(value, 64, "an identifier")


def _choice(choices: tuple[str, ...]) -> object:
    def check(value: str) -> str:
        if value and value.upper() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value.upper()

    return check


def _date(value: str) -> str:
    if not value:
        return ""
    compact = value.replace("-", "") if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else value
    if not re.fullmatch(r"\d{8}", compact):
        raise ValueError("must be YYYYMMDD or YYYY-MM-DD")
    date(int(compact[:4]), int(compact[4:6]), int(compact[6:]))  # a real date, or ValueError
    return compact


def _pattern(pattern: re.Pattern[str], message: str) -> object:
    def check(value: str) -> str:
        if value and not pattern.match(value):
            raise ValueError(message)
        return value

    return check


def _nifti_name(value: str) -> str:
    if value and not _NIFTI.match(value):
        raise ValueError("must name a .nii or .nii.gz file")
    return value


def _label_map(value: str) -> dict[str, str]:
    if not value:
        return {}
    try:
        names = json.loads(value)
    except ValueError:
        raise ValueError('must be a JSON object such as {"1": "tumour"}') from None
    if not isinstance(names, dict) or not all(isinstance(v, str) and 0 < len(v) <= 64 for v in names.values()):
        raise ValueError('must be a JSON object of labels such as {"1": "tumour"}')
    return {str(key): name for key, name in names.items()}


_CHECKS = {
    "image": _nifti_name,
    "PatientID": _ascii_id,
    "Modality": _choice(("CT", "MR")),
    "PatientSex": _choice(("M", "F", "O")),
    "PatientAge": _pattern(_AGE, "must be nnnD, nnnW, nnnM or nnnY"),
    "StudyDate": _date,
    "study": lambda value: _ascii_id(value) if value else "",
    "SeriesDescription": lambda value: _text(value, 64, "a description"),
    "BodyPartExamined": _pattern(_BODY_PART, "must be up to 16 of A-Z, 0-9, space or _"),
    "mask": _nifti_name,
    "label_map": _label_map,
    "reader": lambda value: _text(value, 64, "a reader's name"),
    "algorithm_type": _choice(("MANUAL", "SEMIAUTOMATIC", "AUTOMATIC")),
}


def _checked(row_number: int, raw: dict[str, str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for column in COLUMNS:
        value = (raw.get(column) or "").strip()
        if column in _REQUIRED and not value:
            raise InvalidInput(f"sheet row {row_number}, column {column}: a value is required")
        try:
            values[column] = _CHECKS[column](value)  # type: ignore[operator]
        except ValueError as error:
            raise InvalidInput(f"sheet row {row_number}, column {column}, value {excerpt(value)!r}: {error}") from None
    return values


def parse_sheet(data: bytes, name: str = "sheet") -> list[ImageRow]:
    """The images of the sheet in order of first appearance, each with its masks."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{excerpt(name)} is not UTF-8 text (a CSV sheet is expected)") from None
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        header = reader.fieldnames or []
        unknown = [column for column in header if column not in COLUMNS]
        if unknown:
            raise InvalidInput(
                f"{excerpt(name)}: unknown column {excerpt(unknown[0])!r}; the columns are {', '.join(COLUMNS)}"
            )
        if len(set(header)) != len(header):
            raise InvalidInput(f"{excerpt(name)}: a column is named twice")
        missing = [column for column in _REQUIRED if column not in header]
        if missing:
            raise InvalidInput(f"{excerpt(name)}: column {missing[0]} is required")
        images: dict[str, ImageRow] = {}
        for index, raw in enumerate(reader, start=2):
            if index > _MAX_ROWS:
                raise InvalidInput(f"{excerpt(name)}: more than {_MAX_ROWS} rows")
            if None in raw:
                raise InvalidInput(f"sheet row {index}: more values than columns")
            _add(images, index, _checked(index, raw))
    except csv.Error as error:
        raise InvalidInput(f"{excerpt(name)} is not a readable CSV: {error}") from None
    if not images:
        raise InvalidInput(f"{excerpt(name)} lists no image")
    return list(images.values())


def _add(images: dict[str, ImageRow], row: int, values: dict[str, object]) -> None:
    file = str(values["image"])
    image = ImageRow(
        file=file,
        row=row,
        patient_id=str(values["PatientID"]),
        modality=str(values["Modality"]),
        patient_sex=str(values["PatientSex"]),
        patient_age=str(values["PatientAge"]),
        study_date=str(values["StudyDate"]),
        study=str(values["study"]),
        series_description=str(values["SeriesDescription"]),
        body_part=str(values["BodyPartExamined"]),
    )
    known = images.setdefault(file, image)
    if known is not image:
        for column, attribute in zip(_IMAGE_COLUMNS, _ATTRIBUTES, strict=True):
            if getattr(known, attribute) != getattr(image, attribute):
                raise InvalidInput(f"sheet row {row}, column {column}: differs from row {known.row} for image {file}")
    mask = str(values["mask"])
    if mask:
        if mask == file or any(m.file == mask for i in images.values() for m in i.masks):
            raise InvalidInput(f"sheet row {row}, column mask: {excerpt(mask)} is listed twice or is an image")
        label_map = values["label_map"]
        assert isinstance(label_map, dict)
        known.masks.append(
            MaskRow(mask, row, label_map, str(values["reader"]), str(values["algorithm_type"]) or "MANUAL")
        )
    elif values["label_map"] or values["reader"] or values["algorithm_type"]:
        raise InvalidInput(f"sheet row {row}: label_map, reader and algorithm_type describe a mask, and none is named")


_ATTRIBUTES = (
    "file",
    "patient_id",
    "modality",
    "patient_sex",
    "patient_age",
    "study_date",
    "study",
    "series_description",
    "body_part",
)
