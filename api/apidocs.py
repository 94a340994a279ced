"""The API docs, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served whole by the app: they work offline
and behind a firewall, where FastAPI's defaults load their scripts from a CDN (blank pages).

Swagger UI's and ReDoc's built bundles come from the ``fastapi-offline`` distribution on PyPI, a plain
dependency of docchain: the files ship in the wheel, so ``pip install docchain`` (and the Docker image, which
has no node) carries them, with no build step and no copy in this repository. (npm's ``swagger-ui-dist`` and
``redoc`` would need node and a copy into the package at build time; ``drf-spectacular-sidecar`` ships the
same files but requires Django.) Only its static files are used, with pages written here: the scripts start
from files (``api/docs_ui/``), so the pages' Content-Security-Policy needs no inline script.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

VENDOR_DIR = Path(fastapi_offline.__file__).parent / "static"
OWN_DIR = Path(__file__).parent / "docs_ui"
ASSETS = "/docs-assets"

# Swagger UI and ReDoc set inline styles (ReDoc's styled-components inject <style> elements), ReDoc's search
# runs in a worker made from a blob: URL, and both draw icons as data: images. Scripts: this origin only.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

# Relative URLs: the pages keep working under a path prefix (a reverse proxy's root_path).
SWAGGER_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — Swagger UI</title>
<link rel="icon" href="docs-assets/vendor/favicon.png">
<link rel="stylesheet" href="docs-assets/vendor/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs-assets/vendor/swagger-ui-bundle.js"></script>
<script src="docs-assets/swagger-init.js"></script>
</body>
</html>
"""

REDOC_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — ReDoc</title>
<link rel="icon" href="docs-assets/vendor/favicon.png">
<link rel="stylesheet" href="docs-assets/redoc.css">
</head>
<body>
<noscript>ReDoc needs JavaScript to show the API documentation; /openapi.json is the document itself.</noscript>
<redoc spec-url="openapi.json"></redoc>
<script src="docs-assets/vendor/redoc.standalone.js"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Serve ``/docs``, ``/redoc`` and their assets (create the app with ``docs_url=None, redoc_url=None``)."""
    headers = {"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"}
    swagger = SWAGGER_HTML.format(title=app.title)
    redoc = REDOC_HTML.format(title=app.title)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(swagger, headers=headers)

    @app.get("/redoc", include_in_schema=False)
    async def redoc_page() -> HTMLResponse:
        return HTMLResponse(redoc, headers=headers)

    # the vendor mount first: "/docs-assets" would otherwise take its paths too
    app.mount(f"{ASSETS}/vendor", StaticFiles(directory=VENDOR_DIR), name="docs-vendor")
    app.mount(ASSETS, StaticFiles(directory=OWN_DIR), name="docs-assets")
