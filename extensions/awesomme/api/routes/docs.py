"""``/docs`` (and ``/``): the API's documentation page, Swagger UI served from this server's own files.

FastAPI's and MONAI Label's pages load Swagger UI and ReDoc from a public CDN (and fonts from another host); ours
loads the Swagger UI that the ``swagger-ui-py`` package ships, and no inline script, so its Content-Security-Policy
(``awesomme.api.security_headers.DOCS_POLICY``) allows scripts from this server only.
"""

from __future__ import annotations

from importlib import resources
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

__all__ = ["ASSETS", "router"]

router = APIRouter(include_in_schema=False)

# The few files of the page: everything else the package holds stays unserved.
ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}
AssetName = Literal["swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "start.js"]

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>AWESOMME API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/start.js"></script>
</body>
</html>
"""
# No validator badge (it calls a public validator with the schema) and nothing fetched but our own schema.
_START = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
  defaultModelsExpandDepth: -1,
  presets: [SwaggerUIBundle.presets.apis],
});
"""


@router.get("/", response_class=HTMLResponse)
@router.get("/docs", response_class=HTMLResponse)
async def docs_page() -> HTMLResponse:
    return HTMLResponse(_PAGE)


@router.get("/docs/{name}")
async def docs_asset(name: AssetName) -> Response:
    if name == "start.js":
        return Response(_START, media_type="text/javascript")
    path = resources.files("swagger_ui").joinpath("static", name)
    return FileResponse(str(path), media_type=ASSETS[name])
