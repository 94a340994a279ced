"""/docs (Swagger UI) and /redoc (ReDoc) render in Chromium from the app alone (issue 19, defect 11): any
request to another origin is aborted (as offline, or behind a firewall: the CDN FastAPI's defaults load
from left the pages blank), none is made, nothing is refused by the pages' Content-Security-Policy, no
script fails, and each page shows the API's operations from /openapi.json."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect
from webstack import VIEWPORTS, Pages, Stack

TIMEOUT = 30_000


@dataclass
class Visit:
    page: Any
    elsewhere: list[str] = field(default_factory=list)  # requests to another origin (aborted)
    errors: list[str] = field(default_factory=list)  # console errors (CSP refusals among them), page errors


@pytest.fixture
def visit(browser: Any, stack: Stack) -> Iterator[Any]:
    contexts: list[Any] = []
    origin = urlsplit(stack.url).netloc

    def open_page(path: str) -> Visit:
        ctx = browser.new_context(viewport=VIEWPORTS["desktop"])
        contexts.append(ctx)
        page = ctx.new_page()
        seen = Visit(page)

        def route(r: Any) -> None:
            url = r.request.url
            if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).netloc == origin:
                r.continue_()
            else:
                seen.elsewhere.append(url)
                r.abort()

        ctx.route("**/*", route)
        page.on("console", lambda m: seen.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: seen.errors.append(f"pageerror: {e}"))
        page.goto(stack.url + path)
        return seen

    yield open_page
    for ctx in contexts:
        ctx.close()


def _operations(stack: Stack) -> int:
    paths = httpx.get(stack.url + "/openapi.json", timeout=30).json()["paths"]
    return sum(len(item) for item in paths.values())


def test_swagger_ui_renders_from_the_app(visit: Any, stack: Stack) -> None:
    seen = visit("/docs")
    page = seen.page
    expect(page.locator(".info .title")).to_contain_text("docchain API", timeout=TIMEOUT)
    expect(page.locator(".opblock")).to_have_count(_operations(stack), timeout=TIMEOUT)
    # an operation opens, with its problem+json answers
    page.locator(".opblock-summary-path", has_text="/v1/documents/{doc_hash}/receipts/{signer}").first.click()
    expect(page.locator(".opblock.is-open .responses-table")).to_contain_text("409", timeout=TIMEOUT)
    expect(page.locator(".opblock.is-open")).to_contain_text("application/problem+json")
    Pages.shot(page, "api-docs-swagger")
    assert seen.elsewhere == [] and seen.errors == [], (seen.elsewhere, seen.errors)


def test_redoc_renders_from_the_app(visit: Any, stack: Stack) -> None:
    seen = visit("/redoc")
    page = seen.page
    expect(page.locator("h1").first).to_contain_text("docchain API", timeout=TIMEOUT)
    expect(page.locator("[data-section-id^='operation/']")).to_have_count(_operations(stack), timeout=TIMEOUT)
    expect(page.get_by_text("application/problem+json").first).to_be_attached()
    Pages.shot(page, "api-docs-redoc")
    # ReDoc's sidebar always asks for Redocly's logo from their CDN (no option turns it off): the page's policy
    # refuses it before any request leaves (elsewhere stays empty), and ReDoc drops the image. Nothing else.
    logo = [e for e in seen.errors if "https://cdn.redoc.ly/redoc/logo-mini.svg" in e and "img-src" in e]
    assert len(logo) <= 1 and not page.locator("img[alt='redocly logo']").count()
    assert seen.elsewhere == [] and [e for e in seen.errors if e not in logo] == [], (seen.elsewhere, seen.errors)


def test_the_web_page_links_to_the_docs(visit: Any, stack: Stack) -> None:
    seen = visit("/")
    link = seen.page.locator("footer a", has_text="API docs")
    expect(link).to_have_attribute("href", "docs")
    assert seen.elsewhere == [], seen.elsewhere
