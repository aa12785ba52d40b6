"""Security headers on every answer of the server, as a pure ASGI middleware (streamed DICOM is never held).

Every answer: ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and a Content-Security-Policy with
``frame-ancestors 'none'``. Data answers (``/api``, ``/dicom-web``, ``/proxy/dicom``, MONAI Label's routes) also get
``Cache-Control: no-store``, ``Referrer-Policy: no-referrer`` and a policy that lets nothing run. The pages we serve get
the policy they can live with: the documentation loads only this server's own files; MONAI Label's bundled viewer
(``/ohif/``) runs inline scripts, WebAssembly codecs and workers, and may reach nothing but this server. Pages keep
``Referrer-Policy: same-origin``: with ``no-referrer`` a browser sends ``Origin: null`` with the page's form posts and
fetches, which the session cookie's same-origin check refuses. A header the route set itself is kept.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "DATA_POLICY",
    "DOCS_POLICY",
    "OHIF_VIEWER_POLICY",
    "VIEWER_POLICY",
    "SecurityHeadersMiddleware",
    "security_headers",
]

DATA_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# The bundled OHIF (about 3.11): inline bootstrap scripts, WebAssembly image codecs, workers from blob: URLs,
# inline styles, images drawn into data:/blob: URLs; no eval (it renders without). Its web fonts from a public host
# are blocked on purpose.
VIEWER_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval' blob:; "
    "worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
    "connect-src 'self' data: blob:; media-src 'self' data: blob:; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'"
)
# Our viewer (/viewer/, the prebuilt OHIF 3.13.2 and our plugin): the same, plus 'unsafe-eval': its SEG loader
# (ndarray's compiled constructors, in the labelmap-from-SEG path) calls new Function, and a SEG cannot be shown
# without it (measured: an EvalError under the policy above). Still nothing from another host.
OHIF_VIEWER_POLICY = VIEWER_POLICY.replace("script-src 'self'", "script-src 'self' 'unsafe-eval'", 1)
_PAGES = {"/", "/docs", "/login"}
_DOCS_PREFIX = "/docs/"
_VIEWER_PREFIXES = ("/ohif/", "/static/")
_OHIF_VIEWER_PREFIXES = ("/viewer/", "/viewer-plugins/")
_STATIC = ("/ohif/", "/static/", "/docs/", "/favicon.ico", *_OHIF_VIEWER_PREFIXES)


def security_headers(path: str) -> dict[str, str]:
    """The headers an answer to ``path`` gets (where the route set none of its own)."""
    headers = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"}
    if path.startswith(_OHIF_VIEWER_PREFIXES):
        policy = OHIF_VIEWER_POLICY
    elif path == "/ohif" or path.startswith(_VIEWER_PREFIXES):
        policy = VIEWER_POLICY
    elif path in ("/", "/docs") or path.startswith(_DOCS_PREFIX):
        policy = DOCS_POLICY
    else:
        policy = DATA_POLICY
    headers["Content-Security-Policy"] = policy
    page = path in _PAGES or path.startswith((*_VIEWER_PREFIXES, *_OHIF_VIEWER_PREFIXES)) or path == "/ohif"
    headers["Referrer-Policy"] = "same-origin" if page else "no-referrer"
    if not (path.startswith(_STATIC) or path == "/ohif"):
        headers["Cache-Control"] = "no-store"
    return headers


class SecurityHeadersMiddleware:
    """Adds ``security_headers(path)`` to each answer's start; the body passes through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
