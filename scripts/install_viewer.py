#!/usr/bin/env python3
"""Installs the viewer served at ``/viewer/``: the prebuilt ``@ohif/app`` pinned in ``ohif-plugin/ohif-app.lock``.

The tarball comes from the npm registry through ``npm pack``; its SHA-512 must equal the pinned integrity, else
nothing is installed. Its ``dist/`` (without source maps) is unpacked and patched to live under ``/viewer/`` instead
of ``/``: each rewrite must hit exactly the number of places measured on this release, so a different build fails
here, loudly, instead of half-working in a browser. The result replaces ``var/viewer/`` in one rename; a second run
with the same pin does nothing. ``app-config.js`` is not shipped: the server generates it from the settings.

Usage: ``python scripts/install_viewer.py [--dest DIR] [--force]``. Standard library and ``npm`` only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCK_FILE = REPO_ROOT / "ohif-plugin" / "ohif-app.lock"
DEFAULT_DEST = REPO_ROOT / "var" / "viewer"
MARKER = ".installed"
PREFIX = "/viewer/"

# (what, replacement, expected count): counted on @ohif/app 3.13.2's dist.
WEBPACK_PUBLIC_PATH = (b'__webpack_require__.p = "/";', b'__webpack_require__.p = "/viewer/";')
BUNDLES_WITH_PUBLIC_PATH = 8  # app.bundle, three numbered chunks, the compute/histogram/interpolation/polySeg workers
CSS_URL = (b"url(/", b"url(/viewer/")
CSS_URLS = 5  # app.bundle.css: the one web font, five times
INDEX_PUBLIC_URL = (b'window.PUBLIC_URL="/"', b'window.PUBLIC_URL="/viewer/"')
INDEX_PUBLIC_URLS = 2
# Only unregisters service workers; none is ever registered on our origin.
SERVICE_WORKER_SCRIPT = b'<script rel="preload" as="script" type="module" src="/init-service-worker.js"></script>'
INDEX_ROOTED = ((b'src="/', b'src="/viewer/'), (b'href="/', b'href="/viewer/'))
INDEX_ROOTED_LINKS = 30  # after the service worker's script is gone
DROPPED = ("app-config.js", "init-service-worker.js", "sw.js", "google.js", "_headers", "_redirects", "serve.json")


class InstallError(RuntimeError):
    pass


def pinned() -> tuple[str, str]:
    """``(version, integrity)`` from the lock file: one line ``<version> sha512-<base64>``."""
    version, integrity = LOCK_FILE.read_text(encoding="utf-8").split()
    if not integrity.startswith("sha512-"):
        raise InstallError(f"{LOCK_FILE}: the integrity must be a sha512- hash")
    return version, integrity


def integrity_of(path: Path) -> str:
    digest = hashlib.sha512()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def fetch(version: str, integrity: str, cache: Path) -> Path:
    """The pinned tarball, from the cache when its hash still matches, else from the registry through npm."""
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"ohif-app-{version}.tgz"
    if not tarball.is_file() or integrity_of(tarball) != integrity:
        tarball.unlink(missing_ok=True)
        subprocess.run(
            ["npm", "pack", f"@ohif/app@{version}", "--pack-destination", str(cache), "--silent"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    found = integrity_of(tarball)
    if found != integrity:
        tarball.unlink()
        raise InstallError(f"@ohif/app {version}: integrity {found} differs from the pinned {integrity}")
    return tarball


def unpack(tarball: Path, into: Path) -> None:
    """``package/dist/**`` without source maps; nothing outside ``into``, no links, no devices."""
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive:
            name = member.name
            if not name.startswith("package/dist/") or name.endswith(".map"):
                continue
            relative = Path(name[len("package/dist/") :])
            if relative.is_absolute() or ".." in relative.parts:
                raise InstallError(f"unsafe path in the tarball: {name}")
            target = into / relative
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(member)
                assert source is not None
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
            else:
                raise InstallError(f"unexpected entry in the tarball: {name}")


def _replace(content: bytes, old: bytes, new: bytes, expected: int, where: str) -> bytes:
    found = content.count(old)
    if found != expected:
        raise InstallError(f"{where}: {old!r} found {found} times, expected {expected}")
    return content.replace(old, new)


def patch(dist: Path) -> None:
    """Rewrites the build's public path ``/`` to ``/viewer/``, with the counts measured on this release."""
    old, new = WEBPACK_PUBLIC_PATH
    bundles = [path for path in sorted(dist.glob("*.js")) if old in path.read_bytes()]
    if len(bundles) != BUNDLES_WITH_PUBLIC_PATH:
        raise InstallError(f"{len(bundles)} bundles set the public path, expected {BUNDLES_WITH_PUBLIC_PATH}")
    for bundle in bundles:
        bundle.write_bytes(_replace(bundle.read_bytes(), old, new, 1, bundle.name))
    css = dist / "app.bundle.css"
    css.write_bytes(_replace(css.read_bytes(), *CSS_URL, CSS_URLS, css.name))
    others = [path.name for path in dist.glob("*.css") if path != css and CSS_URL[0] in path.read_bytes()]
    if others:
        raise InstallError(f"stylesheets with root URLs the patch does not know: {others}")
    index = dist / "index.html"
    html = _replace(index.read_bytes(), *INDEX_PUBLIC_URL, INDEX_PUBLIC_URLS, "index.html")
    html = _replace(html, SERVICE_WORKER_SCRIPT, b"", 1, "index.html")
    rooted = sum(html.count(old) for old, _ in INDEX_ROOTED)
    if rooted != INDEX_ROOTED_LINKS:
        raise InstallError(f"index.html: {rooted} root-relative src/href, expected {INDEX_ROOTED_LINKS}")
    for old, new in INDEX_ROOTED:
        html = html.replace(old, new)
    index.write_bytes(html)
    for name in DROPPED:
        (dist / name).unlink(missing_ok=True)


def install(dest: Path, force: bool = False) -> bool:
    """Installs the pinned viewer into ``dest``; False when it was already there."""
    version, integrity = pinned()
    stamp = f"{version} {integrity}\n"
    marker = dest / MARKER
    if not force and marker.is_file() and marker.read_text(encoding="utf-8") == stamp:
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tarball = fetch(version, integrity, dest.parent / "cache" / "npm")
    staging = Path(tempfile.mkdtemp(prefix=".viewer-", dir=dest.parent))
    try:
        unpack(tarball, staging)
        patch(staging)
        (staging / MARKER).write_text(stamp, encoding="utf-8")
        old = dest.with_name(dest.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if dest.exists():
            dest.rename(old)
        staging.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    parser.add_argument("--force", action="store_true", help="install again even when the pin is installed")
    args = parser.parse_args(argv)
    try:
        done = install(args.dest, args.force)
    except (InstallError, subprocess.CalledProcessError, OSError) as error:
        print(f"install_viewer: {error}", file=sys.stderr)
        return 1
    version, _ = pinned()
    print(f"viewer @ohif/app {version} {'installed' if done else 'already installed'} in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
