"""The C-FIND identifiers carry only the keys we allow: the caller's values go into a fixed set of attributes, and
every other attribute is an empty return key (no name, no birth date, no free-text search)."""

from __future__ import annotations

from awesomme.intake.pacs import series_identifier, study_identifier

STUDY_KEYS = {
    "QueryRetrieveLevel", "StudyInstanceUID", "PatientID", "AccessionNumber", "StudyDate", "StudyDescription",
    "ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
}  # fmt: skip


def test_a_study_query_sends_only_the_allowed_keys_with_the_callers_values_in_the_matching_ones() -> None:
    ds = study_identifier("P-1", None, "20240101", None, "CT")
    assert {element.keyword for element in ds} == STUDY_KEYS
    matching = {element.keyword: element.value for element in ds if element.value}
    assert matching == {"QueryRetrieveLevel": "STUDY", "PatientID": "P-1", "StudyDate": "20240101-",
                        "ModalitiesInStudy": "CT"}  # fmt: skip


def test_a_series_query_matches_on_one_study_and_returns_no_patient_attribute() -> None:
    ds = series_identifier(study_uid="1.2.3")
    assert not any(element.keyword.startswith("Patient") for element in ds)
    assert {element.keyword: element.value for element in ds if element.value} == {
        "QueryRetrieveLevel": "SERIES", "StudyInstanceUID": "1.2.3",
    }  # fmt: skip
