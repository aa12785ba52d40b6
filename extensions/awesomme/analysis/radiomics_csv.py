"""The CSV layout of one feature set: a header and one row, written by ``GET /api/radiomics/{id}.csv`` and read back
wherever a feature set comes as a file (a classifier's uploaded input).

Columns, in order: the identifying fields (``IDENTITY_COLUMNS``), the provenance flattened to
``provenance.<key>[.<key>...]`` (nested lists and empty mappings as JSON text), then one column per feature, named as
PyRadiomics names it (``original_firstorder_Mean``, ``wavelet-LLH_glcm_Idm``...).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from awesomme.core.csv_writer import FORMULA_STARTS, write_csv
from awesomme.core.errors import InvalidInput

__all__ = [
    "IDENTITY_COLUMNS",
    "MAX_CSV_BYTES",
    "PROVENANCE_PREFIX",
    "FeatureRow",
    "read_feature_csv",
    "write_feature_csv",
]

IDENTITY_COLUMNS = (
    "feature_set_id",
    "study_uid",
    "series_uid",
    "seg_uid",
    "segment_number",
    "preset",
    "tag",
    "created_by",
    "created_at",
)
PROVENANCE_PREFIX = "provenance."
# A feature file is one row of at most a few thousand columns; anything much larger is not one.
MAX_CSV_BYTES = 5_000_000


@dataclass(frozen=True)
class FeatureRow:
    features: dict[str, float]  # NaN where the feature set has no value (PyRadiomics gave none)
    fields: dict[str, str]  # identity and provenance columns, as text


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, Mapping) and value:
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}", inner, out)
    elif isinstance(value, str):
        out[prefix] = value
    elif isinstance(value, bool | int | float) or value is None:
        out[prefix] = "" if value is None else json.dumps(value)
    else:
        out[prefix] = json.dumps(value, default=str)


def write_feature_csv(
    identity: Mapping[str, Any], provenance: Mapping[str, Any], features: Mapping[str, float | None]
) -> str:
    """The header and the one row; a feature without a value (stored as null) is an empty cell."""
    row: dict[str, str | float | None] = {name: str(identity.get(name, "")) for name in IDENTITY_COLUMNS}
    flat: dict[str, str] = {}
    _flatten(PROVENANCE_PREFIX.rstrip("."), provenance, flat)
    row.update(sorted(flat.items()))
    row.update({name: None if value is None else float(value) for name, value in features.items()})
    return write_csv(list(row), [list(row.values())])  # text that looks like a formula is written as text


def read_feature_csv(data: bytes | str) -> FeatureRow:
    """Parse our own layout; anything else (no feature column, a non-numeric value, several rows) is a clear 422.

    An empty feature cell reads as NaN: whoever needs that feature decides whether a missing value is acceptable.
    """
    if len(data) > MAX_CSV_BYTES:
        raise InvalidInput(f"the CSV is over {MAX_CSV_BYTES} bytes: not one feature set")
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        rows = list(csv.reader(io.StringIO(text)))
    except (UnicodeDecodeError, csv.Error) as error:
        raise InvalidInput(f"not a readable CSV file: {error}") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if len(rows) != 2:
        raise InvalidInput(f"a feature-set CSV has a header and exactly one row; this one has {len(rows)} lines")
    header, values = rows
    if len(header) != len(values):
        raise InvalidInput(f"the header has {len(header)} columns but the row {len(values)}")
    if len(set(header)) != len(header):
        raise InvalidInput("the header names a column twice")
    features: dict[str, float] = {}
    fields: dict[str, str] = {}
    for name, value in zip(header, values, strict=True):
        if name in IDENTITY_COLUMNS or name.startswith(PROVENANCE_PREFIX):
            fields[name] = value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_STARTS) else value
            continue
        if not value.strip():
            features[name] = math.nan
            continue
        try:
            number = float(value)
        except ValueError:
            raise InvalidInput(f"feature {name!r} is not a number: {value[:40]!r}") from None
        if math.isinf(number):
            raise InvalidInput(f"feature {name!r} is infinite")
        features[name] = number
    if not features:
        raise InvalidInput("the CSV holds no feature column")
    return FeatureRow(features, fields)
