"""The PS3.15 Annex E Basic Profile engine on DICOM written by other software (pydicom's test files) and our phantoms.

Canaries are planted in every attribute Table E.1-1 names (top level, inside sequences, nested twice), in private
blocks (top level and inside an item), in descriptions, comments, dates and UIDs, and in the file meta; the bytes
written after de-identification must hold none of them.
"""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from awesomme.core.errors import InvalidInput
from awesomme.dicom import deidentify as engine
from awesomme.dicom.deidentify import (
    CLEAN_DESCRIPTORS,
    RETAIN_MODIFIED_DATES,
    RETAIN_PATIENT_CHARACTERISTICS,
    DeidentificationPolicy,
    DeidentificationRefused,
    deidentify,
    encode,
    is_keyed_uid,
)
from awesomme.phantoms import generate_patient
from tests.dicom_checks import dciodvfy_errors, has_dciodvfy

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
BASIC = DeidentificationPolicy()
DATES = DeidentificationPolicy(options=frozenset({RETAIN_MODIFIED_DATES}))
TEXT_VRS = {"LO", "SH", "LT", "ST", "UT", "UC", "CS", "AE"}
CANARY_DATE = "19470312"
CANARY_TIME = "134217.5"


def _testdata(name: str) -> Dataset:
    return pydicom.dcmread(get_testdata_file(name, download=False))


def _canary(tag: int) -> str:
    return f"CNRY{tag:08X}"


def _canary_uid(tag: int, depth: int) -> str:
    return f"1.2.999.{depth}.{tag}"


def _plant_value(item: Dataset, tag: int, depth: int, planted: set[str]) -> None:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return
    if vr in TEXT_VRS:
        value = _canary(tag)
    elif vr == "PN":
        value = _canary(tag) + "^Canary"
    elif vr == "DA":
        value = CANARY_DATE
    elif vr == "DT":
        value = CANARY_DATE + "134217"
    elif vr == "TM":
        value = CANARY_TIME
    elif vr == "UI":
        value = _canary_uid(tag, depth)
    elif vr == "SQ":
        if depth >= 2:
            return
        child = Dataset()
        _plant_table(child, depth + 1, planted, limit=40)
        item.add_new(tag, "SQ", Sequence([child]))
        return
    else:
        return  # numbers and binary values carry no canary text
    item.add_new(tag, vr, value)
    planted.add(value.split("^")[0])


def _plant_table(item: Dataset, depth: int, planted: set[str], limit: int | None = None) -> None:
    """A canary in every exact tag of Table E.1-1 (the first ``limit`` of them inside items)."""
    tags = [tag for tag in sorted(engine._EXACT) if tag >> 16 != 0x0002]
    if limit is not None:
        # Inside items: the names, IDs, dates and UIDs most likely there, then the first rows of the table.
        wanted = [0x00100010, 0x00100020, 0x00080050, 0x00081155, 0x0020000D, 0x00080020, 0x00400275, 0x00321060]
        tags = wanted + [t for t in tags if t not in wanted][: limit - len(wanted)]
    for tag in tags:
        if tag in item:
            del item[tag]
        _plant_value(item, tag, depth, planted)


def _plant(ds: Dataset) -> tuple[Dataset, set[str]]:
    """``ds`` with canaries everywhere Table E.1-1 names; returns the canary strings to look for."""
    planted: set[str] = set()
    _plant_table(ds, 0, planted)
    # A sequence the table keeps (Referenced Series), with identifying attributes two levels down.
    deep = Dataset()
    deep.ReferencedSOPInstanceUID = "1.2.999.77.1"
    deep.PatientName = "DeepCanary^Nested"
    deep.add_new(0x00091010, "LO", "PRIVATEDEEP")
    series_item = Dataset()
    series_item.SeriesInstanceUID = "1.2.999.77.2"
    series_item.ReferencedInstanceSequence = Sequence([deep])
    ds.ReferencedSeriesSequence = Sequence([series_item])
    planted |= {"1.2.999.77.1", "DeepCanary", "1.2.999.77.2", "PRIVATEDEEP"}
    # Private blocks.
    block = ds.private_block(0x0011, "CANARY CORP", create=True)
    block.add_new(0x01, "LO", "PRIVATETOP")
    block.add_new(0x02, "UI", "1.2.999.88.1")
    planted |= {"PRIVATETOP", "1.2.999.88.1", "CANARY CORP"}
    # Descriptions and comments, also those not in Table E.1-1's exact rows.
    ds.StudyDescription = "CNRYSTUDYDESC"
    ds.SeriesDescription = "CNRYSERIESDESC"
    ds.ImageComments = "CNRYIMAGECOMMENT"
    ds.PatientComments = "CNRYPATIENTCOMMENT"
    planted |= {"CNRYSTUDYDESC", "CNRYSERIESDESC", "CNRYIMAGECOMMENT", "CNRYPATIENTCOMMENT"}
    # The file meta.
    ds.file_meta.SourceApplicationEntityTitle = "CNRYMETAAE"
    planted.add("CNRYMETAAE")
    return ds, planted


def _originals(ds: Dataset) -> set[str]:
    found = {str(ds.get(k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")}
    found |= {str(ds.get("FrameOfReferenceUID", ""))}
    return {value for value in found if value}


def _written(ds: Dataset) -> bytes:
    return encode(ds)


def _inputs(tmp_path: Path) -> dict[str, Dataset]:
    datasets = {name: _testdata(name) for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "waveform_ecg.dcm")}
    for kind in ("chest-ct", "osteosarcoma-mr"):
        patient = generate_patient(kind, 3, tmp_path / kind, shape=(16, 16, 4))
        datasets[kind] = pydicom.dcmread(patient.dicom_files[0])
    return datasets


@pytest.mark.parametrize("policy", [BASIC, DATES], ids=["basic", "modified-dates"])
def test_no_planted_identity_survives_in_the_written_bytes(tmp_path: Path, policy: DeidentificationPolicy) -> None:
    for name, original in _inputs(tmp_path).items():
        originals = _originals(original) | {str(original.get("PatientID", "")), str(original.get("PatientBirthDate"))}
        planted, canaries = _plant(original)
        if RETAIN_MODIFIED_DATES in policy.options:
            canaries.discard(CANARY_TIME)  # times of day are kept with shifted dates (the option's point)
        pixels = planted.get("PixelData")
        result = deidentify(planted, policy, KEY, pseudonym=None, keep_uids=())
        written = _written(result.dataset)
        leaks = sorted(value for value in canaries | originals if value and value.encode() in written)
        assert not leaks, f"{name}: {leaks[:10]}"
        assert b"CNRY" not in written, name
        assert result.dataset.get("PixelData") == pixels, name
        reread = pydicom.dcmread(io.BytesIO(written))
        assert not any(element.tag.is_private for element in reread.iterall()), name
        assert reread.file_meta.MediaStorageSOPInstanceUID == reread.SOPInstanceUID


def test_pixel_data_and_geometry_are_unchanged(tmp_path: Path) -> None:
    original = _inputs(tmp_path)["chest-ct"]
    result = deidentify(original, BASIC, KEY, pseudonym=None, keep_uids=())
    reread = pydicom.dcmread(io.BytesIO(encode(result.dataset)))
    assert reread.PixelData == original.PixelData
    assert (reread.pixel_array == original.pixel_array).all()
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "RescaleSlope"):
        assert reread.get(keyword) == original.get(keyword)


def test_profile_flags_and_codes_are_set_as_the_standard_says() -> None:
    policy = DeidentificationPolicy(
        options=frozenset({RETAIN_MODIFIED_DATES, RETAIN_PATIENT_CHARACTERISTICS, CLEAN_DESCRIPTORS})
    )
    out = deidentify(_testdata("CT_small.dcm"), policy, KEY, pseudonym=None, keep_uids=()).dataset
    assert out.PatientIdentityRemoved == "YES"
    codes = [(item.CodeValue, item.CodingSchemeDesignator) for item in out.DeidentificationMethodCodeSequence]
    assert codes == [("113100", "DCM"), ("113107", "DCM"), ("113108", "DCM"), ("113105", "DCM")]
    assert "113106" not in {value for value, _ in codes}
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    assert len(out.DeidentificationMethod) == 4
    basic = deidentify(_testdata("CT_small.dcm"), BASIC, KEY, pseudonym=None, keep_uids=()).dataset
    assert [item.CodeValue for item in basic.DeidentificationMethodCodeSequence] == ["113100"]
    assert basic.LongitudinalTemporalInformationModified == "REMOVED"


def test_table_actions_x_removes_z_empties_u_remaps_references_consistently() -> None:
    ds = _testdata("CT_small.dcm")
    ds.AccessionNumber = "ACC123"  # Z
    ds.InstitutionName = "Hospital"  # X/Z/D -> X
    source_uid = "1.2.999.5.5"
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ref.ReferencedSOPInstanceUID = source_uid
    ds.SourceImageSequence = Sequence([ref])
    other = Dataset()
    other.SOPInstanceUID = source_uid
    out = deidentify(ds, BASIC, KEY, pseudonym=None, keep_uids=()).dataset
    assert "InstitutionName" not in out
    assert "AccessionNumber" in out and not out.AccessionNumber
    mapped = out.SourceImageSequence[0]
    assert mapped.ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"  # a registered UID: kept
    assert mapped.ReferencedSOPInstanceUID == engine.keyed_uid(KEY, source_uid)
    assert out.SOPClassUID == ds.SOPClassUID
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
        new = str(out.get(keyword))
        assert new != str(ds.get(keyword)) and new.startswith("2.25.") and len(new) <= 64
        assert all(part.isdigit() for part in new.split("."))


def test_same_key_same_uids_other_key_other_uids() -> None:
    first = deidentify(_testdata("MR_small.dcm"), BASIC, KEY, pseudonym=None, keep_uids=()).dataset
    again = deidentify(_testdata("MR_small.dcm"), BASIC, KEY, pseudonym=None, keep_uids=()).dataset
    other = deidentify(_testdata("MR_small.dcm"), BASIC, OTHER_KEY, pseudonym=None, keep_uids=()).dataset
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "PatientID"):
        assert first.get(keyword) == again.get(keyword)
        assert first.get(keyword) != other.get(keyword)
    assert encode(first) == encode(again)  # an identical re-send is recognised byte for byte


def test_uids_made_by_the_key_or_kept_are_not_mapped_again() -> None:
    once = deidentify(_testdata("CT_small.dcm"), BASIC, KEY, pseudonym=None, keep_uids=()).dataset
    twice = deidentify(once, BASIC, KEY, pseudonym=None, keep_uids=()).dataset
    assert twice.SOPInstanceUID == once.SOPInstanceUID and twice.StudyInstanceUID == once.StudyInstanceUID
    assert twice.PatientID == once.PatientID
    assert is_keyed_uid(KEY, once.SeriesInstanceUID) and not is_keyed_uid(OTHER_KEY, once.SeriesInstanceUID)
    original = _testdata("CT_small.dcm")
    kept = deidentify(original, BASIC, KEY, pseudonym=None, keep_uids={original.StudyInstanceUID}).dataset
    assert kept.StudyInstanceUID == original.StudyInstanceUID
    assert kept.SeriesInstanceUID != original.SeriesInstanceUID


def test_date_shift_is_per_patient_and_keeps_intervals() -> None:
    studies = []
    for study_date in ("20200105", "20200317"):
        ds = _testdata("CT_small.dcm")
        ds.StudyDate, ds.PatientID = study_date, "MRN-42"
        ds.AcquisitionDateTime = study_date + "101500"
        studies.append(deidentify(ds, DATES, KEY, pseudonym=None, keep_uids=()))
    from datetime import date

    def day(text: str) -> date:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))

    first, second = (result.dataset for result in studies)
    assert (day(second.StudyDate) - day(first.StudyDate)).days == (day("20200317") - day("20200105")).days
    shift = studies[0].date_shift_days
    assert shift == studies[1].date_shift_days and 1 <= shift <= engine.MAX_SHIFT_DAYS
    assert (day("20200105") - day(first.StudyDate)).days == shift
    assert first.AcquisitionDateTime.endswith("101500") and first.AcquisitionDateTime[:8] == first.StudyDate
    other = _testdata("CT_small.dcm")
    other.StudyDate, other.PatientID = "20200105", "MRN-43"
    assert deidentify(other, DATES, KEY, pseudonym=None, keep_uids=()).date_shift_days != shift
    assert not first.get("PatientBirthDate")  # the patient's own dates are not kept, shifted or not
    plain = deidentify(_testdata("CT_small.dcm"), BASIC, KEY, pseudonym=None, keep_uids=()).dataset
    assert "StudyDate" in plain and not plain.StudyDate  # Z without the option: present, empty


def test_a_callers_pseudonym_survives_and_the_identity_map_names_the_originals() -> None:
    ds = _testdata("CT_small.dcm")
    result = deidentify(ds, BASIC, KEY, pseudonym="SUBJ-007", keep_uids=())
    assert result.dataset.PatientID == "SUBJ-007"
    assert str(result.dataset.PatientName) == "SUBJ-007^"
    rows = {(row.attribute, row.original): row.replacement for row in result.rows}
    assert rows[("PatientID", ds.PatientID)] == "SUBJ-007"
    assert rows[("StudyInstanceUID", ds.StudyInstanceUID)] == result.dataset.StudyInstanceUID
    assert rows[("SOPInstanceUID", ds.SOPInstanceUID)] == result.dataset.SOPInstanceUID
    with pytest.raises(DeidentificationRefused) as refused:
        deidentify(ds, BASIC, KEY, pseudonym="bad\\id", keep_uids=())
    assert refused.value.reason == "pseudonym"


def test_options_keep_patient_characteristics_and_clean_descriptors() -> None:
    ds = _testdata("CT_small.dcm")
    ds.PatientSex, ds.PatientAge, ds.PatientWeight = "F", "042Y", "61"
    ds.StudyDescription = f"Chest CT of {ds.PatientName.family_name} MRN 12345678"
    ds.SeriesDescription = "Axial 5mm"
    policy = DeidentificationPolicy(options=frozenset({RETAIN_PATIENT_CHARACTERISTICS, CLEAN_DESCRIPTORS}))
    out = deidentify(ds, policy, KEY, pseudonym=None, keep_uids=()).dataset
    assert (out.PatientSex, out.PatientAge, str(out.PatientWeight)) == ("F", "042Y", "61")
    assert out.SeriesDescription == "Axial 5mm"
    assert ds.PatientName.family_name not in out.StudyDescription and "12345678" not in out.StudyDescription
    assert out.StudyDescription.startswith("Chest CT of")
    basic = deidentify(ds, BASIC, KEY, pseudonym=None, keep_uids=()).dataset
    assert "StudyDescription" not in basic and "PatientAge" not in basic
    assert "PatientSex" in basic and not basic.PatientSex


def test_burned_in_and_high_risk_kinds_are_refused_unless_allowed() -> None:
    burned = _testdata("CT_small.dcm")
    burned.BurnedInAnnotation = "YES"
    with pytest.raises(DeidentificationRefused) as refused:
        deidentify(burned, BASIC, KEY, pseudonym=None, keep_uids=())
    assert refused.value.reason == "burned_in_annotation" and isinstance(refused.value, InvalidInput)
    for sop_class, modality in (
        ("1.2.840.10008.5.1.4.1.1.7", "OT"),
        ("1.2.840.10008.5.1.4.1.1.6.1", "US"),
        ("1.2.840.10008.5.1.4.1.1.104.1", "DOC"),
    ):
        risky = _testdata("CT_small.dcm")
        risky.SOPClassUID, risky.Modality = sop_class, modality
        with pytest.raises(DeidentificationRefused) as refused:
            deidentify(risky, BASIC, KEY, pseudonym=None, keep_uids=())
        assert refused.value.reason == "high_risk_kind"
        allowed = DeidentificationPolicy(allow_burned_in=True)
        assert deidentify(risky, allowed, KEY, pseudonym=None, keep_uids=()).dataset.PatientIdentityRemoved == "YES"
    assert deidentify(burned, DeidentificationPolicy(allow_burned_in=True), KEY, pseudonym=None, keep_uids=())


def test_an_identified_policy_changes_nothing_and_unknown_options_are_refused() -> None:
    ds = _testdata("CT_small.dcm")
    same = deidentify(ds, DeidentificationPolicy(identified=True), KEY, pseudonym=None, keep_uids=())
    assert same.dataset == ds and same.rows == []
    with pytest.raises(InvalidInput, match="retain_safe_private"):
        DeidentificationPolicy(options=frozenset({"retain_safe_private"}))


def test_the_table_is_2024b_and_covers_every_action() -> None:
    actions = set(engine._EXACT.values()) | {row[-1] for row in engine._MASKED}
    assert actions == {"D", "Z", "X", "U", "Z/D", "X/Z", "X/D", "X/Z/D", "X/Z/U*"}
    assert engine.table_action(0x00100010) == "Z" and keyword_for_tag(0x00100010) == "PatientName"
    assert engine.table_action(0x60024000) == "X"  # overlay comments, a repeating group
    assert engine.table_action(0x00080060) is None  # Modality: kept
    assert "2024b" in engine.TABLE_SOURCE


@pytest.mark.skipif(not has_dciodvfy(), reason="dciodvfy (dicom3tools) is not installed")
def test_dciodvfy_reports_no_new_errors(tmp_path: Path) -> None:
    for name, original in _inputs(tmp_path).items():
        if name in ("rtplan.dcm", "waveform_ecg.dcm"):
            continue
        before, after = tmp_path / f"{name}.before.dcm", tmp_path / f"{name}.after.dcm"
        before.write_bytes(encode(original))
        after.write_bytes(encode(deidentify(original, DATES, KEY, pseudonym=None, keep_uids=()).dataset))
        new = set(dciodvfy_errors(after)) - set(dciodvfy_errors(before))
        assert not new, f"{name}: {sorted(new)[:5]}"
