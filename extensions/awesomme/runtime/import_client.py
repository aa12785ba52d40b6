"""``awesomme import dicom|nifti``: an import through the platform's API (``POST /api/imports``), as any script
would do it, with a progress bar while the server works and the report at the end.

It authenticates with a personal access token (``--token`` or ``AWESOMME_TOKEN``). Folders are walked for regular
files (links are not followed); a NIfTI import takes the ``.nii``/``.nii.gz`` files and needs its sheet.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

__all__ = ["collect_files", "run_import"]

_POLL_S = 0.5


def _walk(path: Path) -> Iterator[Path]:
    if path.is_symlink():
        return
    if path.is_file():
        yield path
    elif path.is_dir():
        for child in sorted(path.iterdir()):
            yield from _walk(child)
    else:
        raise ValueError(f"{path} is neither a file nor a folder")


def collect_files(paths: list[str], kind: str) -> list[Path]:
    """The files to send: given files as they are, folders walked (for NIfTI, its .nii and .nii.gz files only)."""
    found: list[Path] = []
    for text in paths:
        path = Path(text)
        if not path.exists():
            raise ValueError(f"{path} does not exist")
        for file in _walk(path):
            if path.is_file() or kind == "dicom" or file.name.lower().endswith((".nii", ".nii.gz")):
                found.append(file)
    if not found:
        raise ValueError("no file to import")
    return found


def _error(reply: httpx.Response) -> str:
    try:
        return str(reply.json().get("detail", reply.text))
    except ValueError:
        return reply.text[:500]


def run_import(
    server: str, token: str, cohort: str, kind: str, paths: list[str], sheet: str | None, mapping_out: str | None
) -> int:
    """Upload, follow, report; 0 when every file was stored or already present."""
    files = collect_files(paths, kind)
    token = token or os.environ.get("AWESOMME_TOKEN", "")
    if not token:
        raise ValueError("a personal access token is needed: --token or AWESOMME_TOKEN")
    parts: list[tuple[str, tuple[str, bytes, str]]] = [
        ("files", (file.name, file.read_bytes(), "application/octet-stream")) for file in files
    ]
    if sheet:
        parts.append(("sheet", (Path(sheet).name, Path(sheet).read_bytes(), "text/csv")))
    with httpx.Client(base_url=server, headers={"Authorization": f"Bearer {token}"}, timeout=600) as http:
        reply = http.post("/api/imports", data={"cohort": cohort, "kind": kind}, files=parts)
        if reply.status_code != 202:
            raise ValueError(f"the server refused the import ({reply.status_code}): {_error(reply)}")
        job_id = int(reply.json()["id"])
        report = _follow(http, job_id, len(files))
        _print_report(report)
        if mapping_out and report.get("mapping") == "ready":
            answer = http.get(f"/api/imports/{job_id}/mapping.csv")
            if answer.status_code == 200:
                Path(mapping_out).touch(mode=0o600)
                Path(mapping_out).write_bytes(answer.content)
                print(f"identity map written to {mapping_out} (the server kept no copy)")
            else:
                print(f"identity map not available ({answer.status_code}): {_error(answer)}", file=sys.stderr)
    refused = [item for item in report.get("items", []) if item.get("error")]
    return 0 if report.get("status") == "done" and not refused else 1


def _follow(http: httpx.Client, job_id: int, total: int) -> dict[str, Any]:
    with tqdm(total=total, unit="file", desc=f"import {job_id}") as bar:
        while True:
            reply = http.get(f"/api/imports/{job_id}")
            if reply.status_code != 200:
                raise ValueError(f"cannot follow import {job_id} ({reply.status_code}): {_error(reply)}")
            report: dict[str, Any] = reply.json()
            bar.total = report.get("files") or total
            bar.update(max(0, int(report.get("done_files") or 0) - bar.n))
            if report.get("status") != "running":
                return report
            time.sleep(_POLL_S)


def _print_report(report: dict[str, Any]) -> None:
    print(f"import {report['id']}: {report['status']}" + (f" ({report['error']})" if report.get("error") else ""))
    for item in report.get("items", []):
        if item.get("error"):
            print(f"  refused  {item['error']}")
        else:
            seg = f" seg {item['seg_uid']}" if item.get("seg_uid") else ""
            print(f"  {item.get('status', 'stored'):<15} series {item.get('series_uid')}{seg}")
    print(report.get("mapping_note", ""))
