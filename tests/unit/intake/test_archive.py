"""The zip guard of imports: ordinary archives unpack; path tricks, links, bombs and too many members are refused
whole, naming the member, before anything is unpacked."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest

from awesomme.core.errors import InvalidInput
from awesomme.intake.archive import ArchiveLimits, is_zip, unpack

LIMITS = ArchiveLimits(max_members=10, max_bytes=10 * 1024**2, max_ratio=50.0)


def _zip(members: dict[str, bytes], *, link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
        if link is not None:
            info = zipfile.ZipInfo(link)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def test_an_ordinary_zip_unpacks_its_files_named_after_the_archive():
    files = unpack("study.zip", _zip({"a/IM1.dcm": b"one", "a/IM2.dcm": b"two", "a/": b""}), LIMITS)
    assert [(f.name, f.data) for f in files] == [("study.zip:a/IM1.dcm", b"one"), ("study.zip:a/IM2.dcm", b"two")]


@pytest.mark.parametrize("name", ["../evil.dcm", "a/../../evil.dcm", "/etc/evil.dcm", "C:/evil.dcm", "a\\..\\b.dcm"])
def test_a_member_whose_path_leaves_the_archive_refuses_the_whole_zip(name: str):
    with pytest.raises(InvalidInput, match="leaves the archive") as refused:
        unpack("study.zip", _zip({"fine.dcm": b"x", name: b"y"}), LIMITS)
    assert "study.zip" in str(refused.value)


def test_a_link_member_refuses_the_whole_zip():
    with pytest.raises(InvalidInput, match="evil-link is a link"):
        unpack("study.zip", _zip({"fine.dcm": b"x"}, link="evil-link"), LIMITS)


def test_a_zip_bomb_is_refused_by_its_ratio_before_being_unpacked():
    with pytest.raises(InvalidInput, match="zip bomb"):
        unpack("bomb.zip", _zip({"zeros.dcm": bytes(8 * 1024**2)}), LIMITS)


def test_more_unpacked_bytes_than_allowed_are_refused():
    small = ArchiveLimits(max_members=10, max_bytes=1000, max_ratio=1000.0)
    with pytest.raises(InvalidInput, match="more than the 1000 allowed"):
        unpack("big.zip", _zip({"a.dcm": bytes(600), "b.dcm": bytes(600)}), small)


def test_more_members_than_allowed_are_refused():
    with pytest.raises(InvalidInput, match="11 members, more than the 10 allowed"):
        unpack("many.zip", _zip({f"{n}.dcm": b"x" for n in range(11)}), LIMITS)


def test_a_member_lying_about_its_size_stops_at_its_declared_size():
    data = bytearray(_zip({"a.dcm": b"A" * 5000}))
    # Forge the central directory's uncompressed size (offset 24 of its entry) down to 100 bytes.
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")
    with pytest.raises(InvalidInput, match=r"a\.dcm"):
        unpack("forged.zip", bytes(data), LIMITS)


def test_a_file_that_is_not_a_zip_is_refused_naming_it():
    with pytest.raises(InvalidInput, match=r"broken\.zip is not a readable zip"):
        unpack("broken.zip", b"PK\x03\x04 but nothing else", LIMITS)


def test_zips_are_recognised_by_name_or_signature():
    assert is_zip("x.ZIP", b"")
    assert is_zip("upload", b"PK\x03\x04....")
    assert not is_zip("IM1.dcm", b"\0" * 132)
