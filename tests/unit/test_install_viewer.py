"""``scripts/install_viewer.py``: the pinned viewer's integrity is checked, and its /viewer/ patch hits exactly the
counts measured on OHIF 3.13.2 or fails loudly, never leaving a half-installed viewer."""

from __future__ import annotations

import importlib.util
import io
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install_viewer.py"


@pytest.fixture(scope="module")
def installer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("install_viewer", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dist_like_3_13_2(installer: ModuleType, folder: Path, bundles: int = 8) -> Path:
    """A dist with the shape the patch expects: the public path in ``bundles`` bundles, five font URLs, an index."""
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(bundles):
        (folder / f"{number}.bundle.js").write_bytes(b"x;" + installer.WEBPACK_PUBLIC_PATH[0] + b"y;")
    (folder / "other.bundle.js").write_bytes(b"nothing to patch")
    (folder / "app.bundle.css").write_bytes(b"a{src:url(/f.woff2)}" * 5)
    links = "".join(f'<link href="/assets/{n}.png">' for n in range(28))
    html = (
        '<script>window.PUBLIC_URL="/"</script>'
        + links
        + '<script src="/app-config.js"></script>'
        + installer.SERVICE_WORKER_SCRIPT.decode()
        + '<script>window.PUBLIC_URL="/"</script><script src="/app.bundle.js"></script>'
    )
    (folder / "index.html").write_text(html)
    (folder / "app-config.js").write_text("window.config = {dataSources: 'https://demo.example'}")
    return folder


def test_the_patch_moves_every_root_path_under_viewer(installer: ModuleType, tmp_path: Path) -> None:
    dist = _dist_like_3_13_2(installer, tmp_path / "dist")
    installer.patch(dist)
    for number in range(8):
        assert b'__webpack_require__.p = "/viewer/";' in (dist / f"{number}.bundle.js").read_bytes()
    assert (dist / "app.bundle.css").read_bytes().count(b"url(/viewer/") == 5
    html = (dist / "index.html").read_text()
    assert html.count('window.PUBLIC_URL="/viewer/"') == 2 and 'src="/viewer/app-config.js"' in html
    assert "init-service-worker" not in html and 'href="/assets' not in html
    assert not (dist / "app-config.js").exists()  # the server writes its own


@pytest.mark.parametrize("bundles", [7, 9])
def test_a_build_with_another_count_fails_the_install(installer: ModuleType, tmp_path: Path, bundles: int) -> None:
    dist = _dist_like_3_13_2(installer, tmp_path / "dist", bundles=bundles)
    with pytest.raises(installer.InstallError, match="expected 8"):
        installer.patch(dist)


def test_a_tarball_whose_hash_differs_from_the_pin_is_refused_and_nothing_is_installed(
    installer: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version, _ = installer.pinned()
    cache = tmp_path / "cache" / "npm"
    cache.mkdir(parents=True)
    forged = io.BytesIO()
    with tarfile.open(fileobj=forged, mode="w:gz") as archive:
        archive.addfile(tarfile.TarInfo("package/dist/index.html"), io.BytesIO(b""))
    tarball = cache / f"ohif-app-{version}.tgz"
    tarball.write_bytes(forged.getvalue())  # a cached copy that was tampered with: dropped, fetched again

    def npm_pack(*args: object, **kwargs: object) -> None:  # the registry (or a proxy) serves other bytes too
        tarball.write_bytes(forged.getvalue())

    monkeypatch.setattr(installer.subprocess, "run", npm_pack)
    with pytest.raises(installer.InstallError, match="differs from the pinned"):
        installer.install(tmp_path / "viewer")
    assert not (tmp_path / "viewer").exists()
    assert not tarball.exists()
