"""A prediction's reports: the CSV row a spreadsheet reads back, and an HTML page where every value is escaped."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from awesomme.analysis.classifier_config import DEMO_NOTICE
from awesomme.models import Prediction
from awesomme.services.prediction_reports import report_csv, report_html

HOSTILE = '<script>alert("x")</script>'


def _prediction(notice: str = DEMO_NOTICE, label: str = "good") -> Prediction:
    return Prediction(
        id=12,
        study_uid="1.2.3",
        series_uid="1.2.3.4",
        feature_set_id=7,
        cohort_id=None,
        model_name="osteosarcoma_response",
        model_version="0.1.0",
        label=label,
        probabilities={"good": 0.8125, "poor": 0.1875},
        provenance={"notice": notice, "preset": "osteosarcoma-mr", "input": {"kind": "feature_set"}},
        created_by="Doe, Jane",
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def test_the_csv_is_one_row_with_every_probability() -> None:
    rows = list(csv.DictReader(io.StringIO(report_csv(_prediction(), "osteo"))))
    assert len(rows) == 1
    row = rows[0]
    assert row["prediction_id"] == "12" and row["label"] == "good" and row["notice"] == DEMO_NOTICE
    assert float(row["probability_good"]) == 0.8125 and float(row["probability_poor"]) == 0.1875
    assert row["created_by"] == "Doe, Jane" and row["cohort"] == "osteo" and row["input"] == "feature_set"
    assert row["created_at"] == "2026-01-02T03:04:05+00:00"


def test_the_page_says_demo_and_escapes_every_value() -> None:
    page = report_html(_prediction(label=HOSTILE), HOSTILE, intended_use=HOSTILE)
    assert f'<p class="notice">{DEMO_NOTICE}</p>' in page
    assert "<script>" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<td>0.812</td>" in page or "<td>0.813</td>" in page


def test_a_model_that_is_not_a_demo_has_no_notice() -> None:
    page = report_html(_prediction(notice=""), None)
    assert "notice" not in page.split("<body>")[1] and DEMO_NOTICE not in page
