from __future__ import annotations

import threading
from pathlib import Path

import pytest

from awesomme.orthanc.cache import SeriesCache


def _writer(size: int, calls: list[str] | None = None, key: str = ""):
    def produce(path: Path) -> None:
        if calls is not None:
            calls.append(key)
        path.write_bytes(b"x" * size)

    return produce


def _disk_total(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def test_hit_does_not_produce_again(tmp_path: Path) -> None:
    cache = SeriesCache(tmp_path, max_bytes=1000)
    calls: list[str] = []
    first = cache.get("1.2.3", "v1", _writer(100, calls, "a"))
    second = cache.get("1.2.3", "v1", _writer(100, calls, "b"))
    assert first == second and first.read_bytes() == b"x" * 100
    assert calls == ["a"]


def test_least_recently_used_goes_out_and_disk_stays_under_the_bound(tmp_path: Path) -> None:
    cache = SeriesCache(tmp_path, max_bytes=250)
    a = cache.get("1.1", "v", _writer(100))
    b = cache.get("1.2", "v", _writer(100))
    cache.get("1.1", "v", _writer(100))  # touch a: b is now the oldest
    c = cache.get("1.3", "v", _writer(100))
    assert a.exists() and c.exists() and not b.exists()
    assert _disk_total(tmp_path) <= 250 == cache.max_bytes
    assert cache.total_bytes == 200


def test_a_new_version_replaces_the_old_one(tmp_path: Path) -> None:
    cache = SeriesCache(tmp_path, max_bytes=1000)
    old = cache.get("1.2.3", "v1", _writer(10))
    new = cache.get("1.2.3", "v2", _writer(20))
    assert not old.exists() and new.stat().st_size == 20
    assert cache.total_bytes == 20


def test_a_failed_producer_leaves_no_file(tmp_path: Path) -> None:
    cache = SeriesCache(tmp_path, max_bytes=1000)

    def broken(path: Path) -> None:
        path.write_bytes(b"half")
        raise RuntimeError("decode failed")

    with pytest.raises(RuntimeError):
        cache.get("1.2.3", "v1", broken)
    assert _disk_total(tmp_path) == 0


def test_restart_reads_existing_entries_and_drops_partials(tmp_path: Path) -> None:
    cache = SeriesCache(tmp_path, max_bytes=1000)
    kept = cache.get("1.2.3", "v1", _writer(10))
    (kept.parent / "v2.nii.partial").write_bytes(b"junk")
    again = SeriesCache(tmp_path, max_bytes=1000)
    assert again.total_bytes == 10
    assert not (kept.parent / "v2.nii.partial").exists()


def test_restart_with_a_smaller_bound_evicts(tmp_path: Path) -> None:
    cache = SeriesCache(tmp_path, max_bytes=1000)
    for key in ("1.1", "1.2", "1.3"):
        cache.get(key, "v", _writer(100))
    assert SeriesCache(tmp_path, max_bytes=150).total_bytes == 100
    assert _disk_total(tmp_path) == 100


def test_invalidate_removes_every_version(tmp_path: Path) -> None:
    cache = SeriesCache(tmp_path, max_bytes=1000)
    path = cache.get("1.2.3", "v1", _writer(10))
    cache.invalidate("1.2.3")
    assert not path.exists() and cache.total_bytes == 0


def test_concurrent_misses_produce_once(tmp_path: Path) -> None:
    cache = SeriesCache(tmp_path, max_bytes=1000)
    calls: list[str] = []
    threads = [threading.Thread(target=cache.get, args=("1.2.3", "v1", _writer(10, calls, "t"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["t"]


def test_keys_cannot_escape_the_cache_directory(tmp_path: Path) -> None:
    cache = SeriesCache(tmp_path / "cache", max_bytes=1000)
    path = cache.get("../../etc", "../v", _writer(1))
    assert tmp_path / "cache" in path.parents
