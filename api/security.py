"""Security headers on every response the service sends: the API's answers, the web page and its files, the
API docs, errors of every kind (the 500s that Starlette's outermost layer answers included, and the 408 / 431
/ 400 that api/httpserver.py writes itself).

- ``X-Content-Type-Options: nosniff``: a browser takes each response for the type it says (a stored file
  served as octet-stream is never sniffed into a page or a script).
- ``Referrer-Policy: no-referrer``: the explorer's addresses hold document hashes and signers; no other
  site learns them from a link.
- ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``: no page frames ours (clickjacking of the
  sign page); the first for browsers that predate the second.
- ``Content-Security-Policy``: the web page loads only its own scripts, styles and data (:data:`PAGE_CSP`;
  the favicon and icons are ``data:`` images); an answer that is not HTML gets :data:`API_CSP`, which allows
  nothing at all, so JSON or a stored file opened in a tab runs nothing. A response that sets its own policy
  keeps it (the API docs, api/apidocs.py).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# 'wasm-unsafe-eval' lets the page compile WebAssembly (its streaming SHA-256, api/web/js/sha256.js) and nothing
# else: eval and inline script stay refused. connect-src lets the offline verifier (api/web/js/offline.js) ask the
# node the person names for a block's hash: a public endpoint over https, or a node of their own on this machine.
PAGE_CSP = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' https: http://127.0.0.1:* http://localhost:*; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

# every response: (name, value) as ASGI carries them
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
_CSP = b"content-security-policy"


class SecurityHeaders:
    """The outermost layer of the app (see :func:`install`): adds :data:`HEADERS` and a policy to each response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                names = {name.lower() for name, _ in headers}
                headers.extend(h for h in HEADERS if h[0] not in names)
                if _CSP not in names:
                    html = any(n.lower() == b"content-type" and v.startswith(b"text/html") for n, v in headers)
                    headers.append((_CSP, (PAGE_CSP if html else API_CSP).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: FastAPI) -> None:
    """Make :class:`SecurityHeaders` the app's outermost layer: outside Starlette's ServerErrorMiddleware, whose
    500 answers a middleware added with ``add_middleware`` never sees."""
    build = app.build_middleware_stack

    def build_stack() -> ASGIApp:
        return SecurityHeaders(build())

    app.build_middleware_stack = build_stack  # type: ignore[method-assign]
