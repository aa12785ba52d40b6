"""The research export's CSV layout: column groups in a stable order, values written losslessly, formulas defused."""

from __future__ import annotations

import csv
import io

from awesomme.services.exports import cohort_export_csv


def test_columns_come_in_groups_and_cells_keep_their_values() -> None:
    rows = [
        {
            "cohort_id": 1,
            "cohort": "alpha",
            "study_uid": "1.1",
            "series_uid": "1.1.1",
            "modality": "MR",
            "tag": "=cmd|' /C calc'!A0",
            "original_firstorder_Mean": 0.1 + 0.2,
            "original_shape_Elongation": -1.5,
            "provenance.parameters.setting.preCrop": True,
            "provenance.user": "@ann",
            "score.mrs.n": 2,
            "prediction.probability.good": 0.25,
            "prediction.label": "good",
        },
        {"cohort_id": 1, "cohort": "alpha", "study_uid": "1.1", "series_uid": "1.1.2", "modality": "MR", "tag": ""},
    ]
    table = list(csv.reader(io.StringIO(cohort_export_csv(rows))))
    header = table[0]
    assert header[:5] == ["cohort_id", "cohort", "study_uid", "series_uid", "modality"]
    assert header.index("tag") < header.index("prediction.label") < header.index("prediction.probability.good")
    assert header.index("prediction.probability.good") < header.index("score.mrs.n") < header.index("provenance.user")
    assert header[-2:] == ["original_firstorder_Mean", "original_shape_Elongation"]  # features last, as extracted
    first = dict(zip(header, table[1], strict=True))
    assert float(first["original_firstorder_Mean"]) == 0.1 + 0.2  # repr: every digit kept
    assert first["original_shape_Elongation"] == "-1.5"  # numbers are never taken for formulas
    assert first["tag"].startswith("'=") and first["provenance.user"] == "'@ann"  # text formulas are defused
    assert first["provenance.parameters.setting.preCrop"] == "true"
    second = dict(zip(header, table[2], strict=True))
    assert second["original_firstorder_Mean"] == "" and second["prediction.label"] == ""
