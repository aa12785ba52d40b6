from __future__ import annotations

from awesomme.orthanc.datastore import _segment_labels


def test_segment_names_come_from_either_monailabel_form() -> None:
    assert _segment_labels({"label_info": [{"name": "tumour", "idx": 1}, {"name": "bone", "idx": 2}]}) == {
        1: "tumour",
        2: "bone",
    }
    assert _segment_labels({"label_names": {"lung": 1}}) == {1: "lung"}
    assert _segment_labels({}) == {}
    assert _segment_labels({"label_info": ["junk", {"name": "no index"}]}) == {}
