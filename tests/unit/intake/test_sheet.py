"""The metadata sheet of a legacy NIfTI import: whitelisted columns mapped to DICOM attributes, every value type
checked; a bad row is refused naming its row, column and value."""

from __future__ import annotations

import pytest

from awesomme.core.errors import InvalidInput
from awesomme.intake.sheet import parse_sheet

HEADER = "image,PatientID,Modality,PatientSex,PatientAge,StudyDate,SeriesDescription,BodyPartExamined,mask,label_map,reader,algorithm_type\n"  # noqa: E501


def test_rows_give_images_with_their_masks_and_typed_attributes():
    sheet = (
        HEADER
        + 'ct1.nii.gz,SUBJ-001,ct,m,045Y,2019-03-04,Chest CT,CHEST,ct1_lung.nii.gz,"{""1"": ""lung""}",Dr A,manual\n'
        + "ct1.nii.gz,SUBJ-001,CT,M,045Y,20190304,Chest CT,CHEST,ct1_nodule.nii,,,SEMIAUTOMATIC\n"
        + "mr1.nii,SUBJ-002,MR,,,,,,,,,\n"
    )
    images = parse_sheet(sheet.encode())
    assert [image.file for image in images] == ["ct1.nii.gz", "mr1.nii"]
    ct = images[0]
    assert (ct.patient_id, ct.modality, ct.patient_sex, ct.patient_age, ct.study_date) == (
        "SUBJ-001", "CT", "M", "045Y", "20190304",
    )  # fmt: skip
    assert [(m.file, m.label_map, m.reader, m.algorithm_type) for m in ct.masks] == [
        ("ct1_lung.nii.gz", {"1": "lung"}, "Dr A", "MANUAL"),
        ("ct1_nodule.nii", {}, "", "SEMIAUTOMATIC"),
    ]
    assert images[1].masks == []


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("ct.nii,SUBJ,US,,,,,,,,,", "Modality"),
        ("ct.nii,SUBJ,CT,X,,,,,,,,", "PatientSex"),
        ("ct.nii,SUBJ,CT,,45,,,,,,,", "PatientAge"),
        ("ct.nii,SUBJ,CT,,,2019-02-30,,,,,,", "StudyDate"),
        ("ct.nii,SUBJ,CT,,,,a\\b,,,,,", "SeriesDescription"),
        ("ct.nii,SUBJ,CT,,,,,chest!,,,,", "BodyPartExamined"),
        ("ct.nii,SUBJ,CT,,,,,,m.nii,[1],,", "label_map"),
        ("ct.nii,SUBJ,CT,,,,,,m.nii,,,GUESSED", "algorithm_type"),
        ("ct.dcm,SUBJ,CT,,,,,,,,,", "image"),
        ("ct.nii,,CT,,,,,,,,,", "PatientID"),
    ],
)
def test_a_bad_value_is_refused_naming_row_and_column(row: str, column: str):
    sheet = HEADER + "ok.nii,SUBJ,CT,,,,,,,,,\n" + row + "\n"
    with pytest.raises(InvalidInput, match=f"sheet row 3, column {column}"):
        parse_sheet(sheet.encode())


def test_an_unknown_column_is_refused_naming_it():
    with pytest.raises(InvalidInput, match="unknown column 'PatientName'"):
        parse_sheet(b"image,PatientID,Modality,PatientName\nct.nii,S,CT,Doe^John\n")


def test_an_image_whose_rows_disagree_is_refused():
    sheet = HEADER + "ct.nii,S1,CT,,,,,,a.nii,,,\nct.nii,S2,CT,,,,,,b.nii,,,\n"
    with pytest.raises(InvalidInput, match="sheet row 3, column PatientID: differs from row 2"):
        parse_sheet(sheet.encode())


def test_mask_columns_without_a_mask_are_refused():
    with pytest.raises(InvalidInput, match="sheet row 2: label_map, reader and algorithm_type describe a mask"):
        parse_sheet((HEADER + "ct.nii,S1,CT,,,,,,,,Dr A,\n").encode())


def test_a_sheet_that_is_not_text_is_refused():
    with pytest.raises(InvalidInput, match="not UTF-8"):
        parse_sheet(b"\xff\xfe\x00bad", "sheet.csv")
