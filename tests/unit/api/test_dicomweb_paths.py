from __future__ import annotations

import pytest

from awesomme.api.dicomweb import _ALLOWED_PATH


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
