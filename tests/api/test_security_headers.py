"""Security headers on every response (issue 19, defect 11), and the API docs served whole by the app.

Every answer, of every kind (JSON, problem, HTML, script, stylesheet, stored file, metrics, the docs),
carries ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``, ``X-Frame-Options: DENY`` and
a Content-Security-Policy refusing to be framed: ``default-src 'none'`` for anything that is not a page,
the web page's own scripts and styles only for it, and for /docs and /redoc scripts from the app only (their
styles inline, as Swagger UI and ReDoc need). /docs and /redoc reference nothing outside the app: every
script, stylesheet and icon they name is fetched here from the app itself (tests/web renders them offline
in Chromium)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from api_support import Api, Env, new_signer

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _csp(response: httpx.Response) -> dict[str, set[str]]:
    policy: dict[str, set[str]] = {}
    for directive in response.headers["content-security-policy"].split(";"):
        name, *values = directive.split()
        policy[name] = set(values)
    return policy


def _secured(response: httpx.Response) -> dict[str, set[str]]:
    h = response.headers
    assert h["x-content-type-options"] == "nosniff", (response.url, h)
    assert h["referrer-policy"] == "no-referrer", (response.url, h)
    assert h["x-frame-options"] == "DENY", (response.url, h)
    policy = _csp(response)
    assert policy["frame-ancestors"] == {"'none'"}, (response.url, policy)
    assert len(h.get_list("content-security-policy")) == 1, (response.url, h)
    return policy


@pytest.fixture(scope="module")
def stored(env: Env, api: Api) -> tuple[str, str]:
    """A document stored and anchored: (docHash, signer) for its file and receipt."""
    content = os.urandom(1000)
    doc = hashlib.sha256(content).digest()
    signer = new_signer()
    submission = json.dumps(signer.registration(env.domain, doc))
    r = api.post("/v1/documents", files={"submission": (None, submission), "file": ("doc.txt", content)})
    assert r.status_code == 202, r.text
    api.wait_state(r.json()["id"], ("anchored", "confirmed"))
    return f"0x{doc.hex()}", signer.address


NOT_PAGES = [
    ("GET", "/healthz", 200),
    ("GET", "/readyz", 200),
    ("GET", "/openapi.json", 200),
    ("GET", "/metrics", 200),
    ("GET", "/v1/chain", 200),
    ("GET", "/v1/explorer/blocks", 200),
    ("GET", "/v1/documents/0x" + "00" * 32, 404),
    ("GET", "/v1/documents/0x12", 422),
    ("GET", "/v1/nowhere", 404),
    ("DELETE", "/v1/documents", 405),
    ("POST", "/v1/documents", 422),
    ("GET", "/js/app.js", 200),
    ("GET", "/style.css", 200),
    ("GET", "/docs-assets/vendor/swagger-ui-bundle.js", 200),
    ("GET", "/docs-assets/swagger-init.js", 200),
]


@pytest.mark.parametrize("method,path,status", NOT_PAGES, ids=[f"{m} {p[:40]}" for m, p, _ in NOT_PAGES])
def test_answers_that_are_not_pages_allow_nothing(api: Api, method: str, path: str, status: int) -> None:
    r = api.client.request(method, path)
    assert r.status_code == status, r.text[:300]
    policy = _secured(r)
    assert policy["default-src"] == {"'none'"}, policy
    assert not [d for d in policy if d.endswith("-src") and d != "default-src"], policy


def test_stored_file_receipt_and_413_are_secured(api: Api, stored: tuple[str, str]) -> None:
    doc, signer = stored
    for r in (
        api.get(f"/v1/documents/{doc}/file"),
        api.get(f"/v1/documents/{doc}/receipts/{signer}"),
        api.post("/v1/documents", content=b"x" * (2 * 1024 * 1024), headers={"content-type": "application/json"}),
    ):
        assert r.status_code in (200, 413), r.text[:300]
        assert _secured(r)["default-src"] == {"'none'"}


def test_a_500_is_secured(env: Env, api: Api, stored: tuple[str, str]) -> None:
    """A stored file that no longer matches its hash is a 500 problem: with the headers too."""
    doc, _ = stored
    hexdoc = doc[2:]
    path = env.data_dir / "documents" / hexdoc[:2] / hexdoc[2:4] / hexdoc
    original = path.read_bytes()
    path.chmod(0o644)
    try:
        path.write_bytes(b"tampered" + original[8:])
        r = api.get(f"/v1/documents/{doc}/file")
        assert r.status_code == 500 and r.json()["type"].endswith("/storage-corrupted"), r.text
        assert _secured(r)["default-src"] == {"'none'"}
    finally:
        path.write_bytes(original)


def test_the_web_page_runs_only_its_own_scripts(api: Api) -> None:
    r = api.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    policy = _secured(r)
    assert policy["default-src"] == {"'none'"}
    # no inline script, no eval, no other origin; WebAssembly for the streaming SHA-256
    assert policy["script-src"] == {"'self'", "'wasm-unsafe-eval'"}
    assert policy["style-src"] == {"'self'"}
    # its API, and the node a person names to the offline verifier for a block's hash
    assert policy["connect-src"] == {"'self'", "https:", "http://127.0.0.1:*", "http://localhost:*"}
    assert policy["img-src"] <= {"'self'", "data:"}
    assert policy["base-uri"] == {"'none'"}


class _Assets(HTMLParser):
    """Every URL a page loads: script src, link href, img src; and whether it has an inline script."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            if a.get("src"):
                self.urls.append(a["src"] or "")
            else:
                self._in_script_without_src = True
        elif tag == "link" and a.get("href"):
            self.urls.append(a["href"] or "")
        elif tag == "img" and a.get("src"):
            self.urls.append(a["src"] or "")
        elif tag == "redoc" and a.get("spec-url"):
            self.urls.append(a["spec-url"] or "")

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script_without_src = False


TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/"])
def test_pages_load_every_asset_from_the_app(api: Api, page: str) -> None:
    r = api.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    policy = _secured(r)
    assert policy["script-src"] == ({"'self'", "'wasm-unsafe-eval'"} if page == "/" else {"'self'"}), policy
    parser = _Assets()
    parser.feed(r.text)
    assert parser.inline_scripts == 0  # the policy would refuse them
    assert parser.urls, "no assets?"
    for url in parser.urls:
        if url.startswith("data:"):
            continue
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from elsewhere"
        asset = api.get(urljoin(api.url + page, url))
        assert asset.status_code == 200, (url, asset.status_code)
        assert asset.content, url
        suffix = os.path.splitext(parts.path)[1]
        if suffix in TYPES:
            assert TYPES[suffix] in asset.headers["content-type"], (url, asset.headers["content-type"])
        _secured(asset)
    if page == "/docs":  # its init script names the document it shows, relative to the page too
        init = api.get("/docs-assets/swagger-init.js").text
        (spec,) = re.findall(r'new URL\("([^"]+)"', init)
        assert api.get(urljoin(api.url + page, spec)).json()["openapi"].startswith("3.1")


def test_docs_pages_allow_scripts_of_the_app_only(api: Api) -> None:
    for page in ("/docs", "/redoc"):
        policy = _secured(api.get(page))
        assert policy["script-src"] == {"'self'"} and policy["connect-src"] == {"'self'"}
        assert "'unsafe-eval'" not in str(policy) and "http" not in str(policy), policy


def test_security_headers_are_not_doubled(api: Api) -> None:
    r = api.get("/docs")
    for name in ("x-content-type-options", "referrer-policy", "x-frame-options", "content-security-policy"):
        assert len(r.headers.get_list(name)) == 1, (name, r.headers.get_list(name))
