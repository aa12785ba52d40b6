"""3D Slicer's MONAI Label module on the wire: its requests as the module (``MONAILabel.py`` and its bundled
``MONAILabelLib/client.py``) makes them, with ``http.client``, its headers, its JSON bodies and its own multipart
encoder (a fixed boundary, the local file's full path as the part's filename, CRLF after every line), and its
answers read as it reads them (``cgi.FieldStorage`` for a multipart answer).

Written for the tests from the module's published behaviour; ``version`` picks what differs between the module
that Slicer's Extensions Manager installs today (``"head"``: the label is saved with the selected model's name) and
the one of MONAI Label 0.8.5 (``"0.8.5"``: without it).
"""

from __future__ import annotations

import http.client
import json
import mimetypes
import re
import urllib.request
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlencode, urlparse

with warnings.catch_warnings():  # the module parses multipart answers with cgi, deprecated since Python 3.11
    warnings.simplefilter("ignore", DeprecationWarning)
    import cgi

BOUNDARY = "----------lImIt_of_THE_fIle_eW_$"
CLIENT_ID = "user-xyz"  # the module's client id when the user sets none


class SlicerModuleError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body[:300]!r}")
        self.status, self.body = status, body


def multipart_body(fields: dict[str, str], files: dict[str, str]) -> tuple[str, bytes]:
    """The module's multipart encoding: every field, then every file (named by its full local path)."""
    lines: list[bytes] = []
    for key, value in fields.items():
        lines += [
            f"--{BOUNDARY}".encode(),
            f'Content-Disposition: form-data; name="{key}"'.encode(),
            b"",
            value.encode(),
        ]
    for key, filename in files.items():
        kind = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        lines += [
            f"--{BOUNDARY}".encode(),
            f'Content-Disposition: form-data; name="{key}"; filename="{filename}"'.encode(),
            f"Content-Type: {kind}".encode(),
            b"",
            Path(filename).read_bytes(),
        ]
    lines += [f"--{BOUNDARY}--".encode(), b""]
    return f"multipart/form-data; boundary={BOUNDARY}", b"".join(line + b"\r\n" for line in lines)


class SlicerModule:
    """One Slicer session against ``server_url``: connect, Next Sample, Run, Submit Label."""

    def __init__(self, server_url: str, username: str, password: str, tmpdir: Path, version: str = "head") -> None:
        self.server_url, self.username, self.password = server_url.rstrip("/"), username, password
        self.tmpdir, self.version = tmpdir, version
        self.headers: dict[str, str] = {}
        self.info: dict[str, Any] = {}

    # -- the wire ---------------------------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        parsed = urlparse(self.server_url)
        return http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=300)

    def _send(
        self, method: str, selector: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        connection = self._connection()
        connection.request(method, selector, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read(), response

    def method(
        self, method: str, selector: str, body: Any = None, content_type: str | None = None, auth: bool = True
    ) -> tuple[int, bytes]:
        headers = dict(self.headers) if auth else {}
        data: bytes | None = None
        if body:
            if content_type is None:
                body, content_type = (
                    (json.dumps(body), "application/json") if isinstance(body, dict) else (body, "text/plain")
                )
            data = body.encode() if isinstance(body, str) else body
            headers.update({"content-type": content_type, "content-length": str(len(data))})
        status, answer, _ = self._send(method, selector, data, headers)
        return status, answer

    def multipart(
        self, method: str, selector: str, fields: dict[str, str], files: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, bytes]]:
        content_type, body = multipart_body(fields, files)
        headers = {**self.headers, "content-type": content_type, "content-length": str(len(body))}
        connection = self._connection()
        connection.request(method, selector, body, headers)
        response = connection.getresponse()
        answer_type = response.getheader("content-type", content_type)
        if "multipart" in answer_type and response.status == 200:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                storage = cgi.FieldStorage(
                    fp=response, environ={"REQUEST_METHOD": "POST"}, headers=response.msg, keep_blank_values=True
                )
            form: dict[str, Any] = {}
            parts: dict[str, bytes] = {}
            for item in storage.list or []:
                if item.filename:
                    parts[item.filename] = item.value
                else:
                    form[item.name] = item.value
            return response.status, form, parts
        raw = response.read()
        if response.status != 200:
            raise SlicerModuleError(response.status, raw)
        return response.status, json.loads(raw), {}

    # -- the module's actions ---------------------------------------------------------------------------------
    def connect(self) -> dict[str, Any]:
        """What pressing the refresh button next to the server address does: auth check, token, info."""
        status, answer = self.method("GET", "/auth/", auth=False)
        assert status == 200 and json.loads(answer).get("enabled") is True, answer
        if not self.headers:
            form = urlencode({"username": self.username, "password": self.password, "grant_type": "password"})
            status, answer = self.method("POST", "/auth/token", form, "application/x-www-form-urlencoded", auth=False)
            if status != 200:
                raise SlicerModuleError(status, answer)
            token = json.loads(answer)
            self.headers["Authorization"] = f"{token['token_type']} {token['access_token']}"
        status, _ = self.method("GET", "/auth/token/valid")
        assert status == 200
        status, answer = self.method("GET", "/info/")
        if status != 200:
            raise SlicerModuleError(status, answer)
        self.info = json.loads(answer)
        return self.info

    def next_sample(self, strategy: str = "random") -> tuple[dict[str, Any], Path]:
        """Next Sample: the strategy's answer, then the download the module builds itself (no token, no cookie)."""
        status, answer = self.method("POST", f"/activelearning/{quote_plus(strategy)}", {"client_id": CLIENT_ID})
        if status != 200:
            raise SlicerModuleError(status, answer)
        sample = json.loads(answer)
        image_id = sample["id"]
        path = self.tmpdir / sample.get("name", image_id)
        urllib.request.urlretrieve(f"{self.server_url}/datastore/image?image={quote_plus(image_id)}", path)  # noqa: S310
        return sample, path

    def run(self, model: str, image_id: str) -> tuple[Path, dict[str, Any]]:
        """Run: the model's mask, asked for as NRRD of uint8, saved where the module saves it."""
        params = {"result_extension": ".nrrd", "result_dtype": "uint8", "client_id": CLIENT_ID}
        selector = f"/infer/{quote_plus(model)}?image={quote_plus(image_id)}"
        _, form, parts = self.multipart("POST", selector, {"params": json.dumps(params)}, {})
        assert parts, f"no mask in the answer: {form}"
        name, data = next(iter(parts.items()))
        result = self.tmpdir / name
        result.write_bytes(data)
        answer = form.get("params")
        return result, json.loads(answer) if isinstance(answer, str) else dict(answer or {})

    def submit_label(self, image_id: str, label_file: Path, segment_names: list[str], model: str) -> dict[str, Any]:
        """Submit Label: every segment of the editor, numbered by its place (the label file holds those values)."""
        label_info = [{"name": name, "idx": index + 1} for index, name in enumerate(segment_names)]
        params: dict[str, Any] = {"label_info": label_info}
        if self.version == "head":
            params["model"] = model
        params["client_id"] = CLIENT_ID
        selector = f"/datastore/label?image={quote_plus(image_id)}"
        _, answer, _ = self.multipart("PUT", selector, {"params": json.dumps(params)}, {"label": str(label_file)})
        return answer

    def original_label(self, image_id: str) -> tuple[list[str], Path]:
        """The "original label" setting after Next Sample: the label names the datastore lists for the image's
        ``original`` label, and that label's file, saved under the name the answer gives."""
        status, answer = self.method("GET", "/datastore/?output=all")
        if status != 200:
            raise SlicerModuleError(status, answer)
        info = json.loads(answer)["objects"][image_id]["labels"]["original"]["info"]
        names = list(info.get("params", {}).get("label_names", {}))
        selector = f"/datastore/label?label={quote_plus(image_id)}&tag={quote_plus('original')}"
        status, data, response = self._send("GET", selector, None, dict(self.headers))
        if status != 200:
            raise SlicerModuleError(status, data)
        disposition = response.getheader("content-disposition") or ""
        filename = re.findall('filename="(.+)"', disposition, flags=re.IGNORECASE)[0]
        path = self.tmpdir / f"original{''.join(Path(filename).suffixes)}"
        path.write_bytes(data)
        return names, path
