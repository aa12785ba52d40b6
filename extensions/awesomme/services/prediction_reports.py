"""Clinician-readable reports of one prediction: a one-row CSV and an HTML page (every value escaped)."""

from __future__ import annotations

from html import escape
from importlib import resources
from string import Template
from typing import Any

from awesomme.core.csv_writer import write_csv
from awesomme.models import Prediction

__all__ = ["report_csv", "report_fields", "report_html"]

_PAGE = Template(
    resources.files("awesomme.api").joinpath("templates/prediction_report.html").read_text(encoding="utf-8")
)


def report_fields(prediction: Prediction, cohort_name: str | None) -> dict[str, Any]:
    """The report's fields in reading order; probabilities as ``probability_<label>``."""
    provenance = prediction.provenance
    source = provenance.get("input", {})
    fields: dict[str, Any] = {
        "prediction_id": prediction.id,
        "notice": provenance.get("notice", ""),
        "model": prediction.model_name,
        "model_version": prediction.model_version,
        "label": prediction.label,
    }
    fields.update({f"probability_{label}": p for label, p in prediction.probabilities.items()})
    fields.update(
        {
            "study_uid": prediction.study_uid or "",
            "series_uid": prediction.series_uid or "",
            "feature_set_id": prediction.feature_set_id or "",
            "cohort": cohort_name or "",
            "input": source.get("kind", ""),
            "preset": provenance.get("preset", ""),
            "features_sha256": source.get("features_sha256", ""),
            "artefact_sha256": provenance.get("artefact_sha256", ""),
            "platform_version": provenance.get("platform_version", ""),
            "created_by": prediction.created_by,
            "created_at": prediction.created_at.isoformat(),
        }
    )
    return fields


def report_csv(prediction: Prediction, cohort_name: str | None) -> str:
    fields = report_fields(prediction, cohort_name)
    return write_csv(list(fields), [list(fields.values())], lineterminator="\r\n")


def report_html(prediction: Prediction, cohort_name: str | None, intended_use: str = "") -> str:
    fields = report_fields(prediction, cohort_name)
    notice = str(fields["notice"])
    shown = {key: value for key, value in fields.items() if not key.startswith("probability_") and key != "notice"}
    rows = "\n".join(
        f"<tr><td>{escape(str(label))}</td><td>{float(p):.3f}</td></tr>"
        for label, p in prediction.probabilities.items()
    )
    details = "\n".join(f"<tr><th>{escape(key)}</th><td>{escape(str(value))}</td></tr>" for key, value in shown.items())
    return _PAGE.substitute(
        id=escape(str(prediction.id)),
        model=escape(prediction.model_name),
        model_version=escape(prediction.model_version),
        notice_block=f'<p class="notice">{escape(notice)}</p>' if notice else "",
        label=escape(prediction.label),
        probability_rows=rows,
        detail_rows=details,
        intended_use=escape(intended_use),
    )
