from __future__ import annotations

import pytest

from awesomme.api.dicomweb import _ALLOWED_PATH, STUDIES_PER_QUERY, _public_urls, narrowed_queries
from awesomme.core.visibility import Visibility


@pytest.mark.parametrize(
    "path",
    [
        "studies",
        "series",
        "studies/1.2.840.1",
        "studies/1.2/series/1.3/metadata",
        "studies/1.2/series/1.3/instances/1.4/frames/1",
        "studies/1.2/series/1.3/instances/1.4/rendered",
    ],
)
def test_dicomweb_resources_pass(path: str) -> None:
    assert _ALLOWED_PATH.match(path)


@pytest.mark.parametrize(
    "path",
    [
        "system",
        "tools/find",
        "studies/../system",
        "studies/1..2",
        "studies/.",
        "instances/1.2/file",
        "studies/1.2/archive",
        "",
    ],
)
def test_everything_else_is_refused(path: str) -> None:
    assert not _ALLOWED_PATH.match(path)


def test_a_search_asks_orthanc_only_for_the_callers_studies() -> None:
    nothing = Visibility()
    assert narrowed_queries([("PatientID", "x")], "studies", nothing) == []
    some = Visibility(studies=frozenset({"1.2"}), partial_studies=frozenset({"1.3"}))
    assert narrowed_queries([("limit", "1"), ("offset", "2")], "studies", some) == [[("StudyInstanceUID", "1.2,1.3")]]
    many = Visibility(studies=frozenset(f"1.{n}" for n in range(STUDIES_PER_QUERY + 1)))
    assert len(narrowed_queries([], "series", many)) == 2
    # A search of one study, or with its own study filter, is Orthanc's to narrow.
    assert narrowed_queries([], "studies/1.2/series", some)[0][-1] == ("includefield", "0020000E")
    assert narrowed_queries([("StudyInstanceUID", "9.9")], "studies", some) == [[("StudyInstanceUID", "9.9")]]


def test_orthancs_urls_become_ours() -> None:
    internal, public = "http://127.0.0.1:8042/dicom-web", "https://viewer.example/dicom-web"
    answer = [
        {"00081190": {"vr": "UR", "Value": [internal + "/studies/1.2"]}},
        {"7FE00010": {"vr": "OW", "BulkDataURI": internal + "/studies/1.2/bulk/7fe00010"}},
        {"00081190": {"vr": "UR", "Value": ["http://127.0.0.1:8042/dicom-webX/other"]}},
    ]
    assert _public_urls(answer, internal, public) == [
        {"00081190": {"vr": "UR", "Value": [public + "/studies/1.2"]}},
        {"7FE00010": {"vr": "OW", "BulkDataURI": public + "/studies/1.2/bulk/7fe00010"}},
        {"00081190": {"vr": "UR", "Value": ["http://127.0.0.1:8042/dicom-webX/other"]}},
    ]
