"""Who a SEG's rater is, for agreement: the account that stored it, an import's declared reader, or a model."""

from __future__ import annotations

from awesomme.models import Segmentation, SegmentationRole
from awesomme.services.agreement import RaterKind, rater_of


def _record(**fields: object) -> Segmentation:
    values: dict[str, object] = {"seg_series_uid": "1.2.3.4", "role": SegmentationRole.LABEL, **fields}
    return Segmentation(**values)


def test_a_label_is_rated_by_the_account_that_stored_it_not_by_its_author_field() -> None:
    assert rater_of(_record(author="Doe^Jane", created_by="alice")) == (RaterKind.ACCOUNT, "alice")


def test_a_declared_reader_is_a_reader_even_when_named_like_an_account() -> None:
    reader = rater_of(_record(author="alice", reader="alice", created_by="bob"))
    assert reader == (RaterKind.READER, "alice") and reader != rater_of(_record(created_by="alice"))


def test_a_prediction_is_its_model_and_a_label_correcting_it_is_its_person() -> None:
    prediction = _record(role=SegmentationRole.PREDICTION, model_name="everything_mr", created_by="alice")
    correction = _record(model_name="everything_mr", created_by="alice", algorithm_type="SEMIAUTOMATIC")
    assert rater_of(prediction) == (RaterKind.MODEL, "model:everything_mr")
    assert rater_of(correction) == (RaterKind.ACCOUNT, "alice")


def test_a_record_from_before_created_by_falls_back_to_its_author_then_its_uid() -> None:
    assert rater_of(_record(author="Doe^Jane")) == (RaterKind.ACCOUNT, "Doe^Jane")
    assert rater_of(_record()) == (RaterKind.ACCOUNT, "unknown:1.2.3.4")
