"""RFC 9457 problem details: every error the API answers goes through the one table below."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from docchain.api.db import DatabaseBusy
from docchain.api.storage.base import BackendUnavailable, NotStored, StorageCorrupted, StorageError
from docchain.api.storage.replicas import KeyRequired
from docchain.chain.errors import (
    ChainError,
    ContractRevert,
    DocchainError,
    InvalidInput,
    NodeError,
    NotDeployed,
    RegistrationNotFound,
    TransactionTimeout,
    VerificationError,
)

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

# FastAPI and Starlette are imported by the functions that answer, not by this module: the anchoring process
# raises Problem (through the lifecycle it shares with the API) and never answers HTTP, and importing FastAPI
# costs it a quarter of a second at every start.

log = logging.getLogger("docchain.api")

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://docchain.dev/problems/"
RETRY_AFTER_S = 5  # a 503's Retry-After: the pipeline's own backoff reaches 5 s while the node is down


class Problem(Exception):
    """An error with its HTTP status, raised by handlers (not found, conflict, too large, ...)."""

    def __init__(
        self, status: int, slug: str, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers  # e.g. Retry-After, or Connection: close when the rest of the body is not read
        self.extra = extra


def not_found(detail: str) -> Problem:
    return Problem(404, "not-found", "Not found", detail)


def conflict(detail: str) -> Problem:
    return Problem(409, "conflict", "Conflict", detail)


def unavailable(detail: str) -> Problem:
    return Problem(503, "unavailable", "Service unavailable", detail)


def too_large(detail: str, limit: int) -> Problem:
    # (the client may still be sending: api/httpserver.py ends the connection with a lingering close)
    return Problem(413, "payload-too-large", "Payload too large", detail, limit=limit)


# (exception class, status, slug, title) — the first matching row wins, so subclasses come first.
TABLE: list[tuple[type[Exception], int, str, str]] = [
    (InvalidInput, 422, "invalid-input", "Invalid input"),
    (RegistrationNotFound, 404, "not-found", "Not found"),
    (VerificationError, 422, "verification-failed", "Verification failed"),
    (ContractRevert, 422, "contract-revert", "The registry rejected the request"),
    (NotDeployed, 503, "not-deployed", "No registry deployed"),
    (DatabaseBusy, 503, "database-unavailable", "Database unavailable"),
    (NodeError, 503, "node-unavailable", "Ethereum node unavailable"),
    (TransactionTimeout, 504, "transaction-timeout", "Transaction not mined in time"),
    (ChainError, 502, "chain-error", "Chain error"),
    (KeyRequired, 403, "key-required", "Document key required"),
    (NotStored, 404, "not-stored", "Document not stored"),
    (StorageCorrupted, 500, "storage-corrupted", "Stored document corrupted"),
    (BackendUnavailable, 503, "storage-unavailable", "Storage unavailable"),
    (StorageError, 502, "storage-error", "Storage error"),
    (DocchainError, 500, "internal", "Internal error"),
]

_HTTP_TITLES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    408: ("request-timeout", "Request timeout"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("too-many-requests", "Too many requests"),
}


def problem_response(
    request: Request | None,
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail}
    if request is not None:
        body["instance"] = request.url.path
    body.update(extra)
    from fastapi.responses import JSONResponse

    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", "ApiKey")
    if status == 503:  # every 503 is an outage the client outlives (node, database, a stopping process)
        headers.setdefault("Retry-After", str(RETRY_AFTER_S))
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers or None)


def _json_safe(errors: list[Any]) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        out.append({"loc": loc, "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))})
    return out


def route_methods(app: Any, scope: Any) -> set[str]:
    """The methods the app's routes have for the scope's path (empty: no route has the path)."""
    from starlette.routing import Match, Route

    methods: set[str] = set()
    for route in app.router.routes:
        if isinstance(route, Route) and route.methods and route.matches(scope)[0] != Match.NONE:
            methods |= route.methods
    return methods


def _allowed(request: Request) -> str:
    """The methods the path has, for a 405's ``Allow`` (RFC 9110 15.5.6). Starlette's router names only those
    of the first route matching the path (GET /v1/documents and POST /v1/documents are two routes), so every
    route is asked; a path no route has is the web files' mount, which serves GET and HEAD."""
    return ", ".join(sorted(route_methods(request.app, request.scope) or {"GET", "HEAD"}))


def install(app: FastAPI) -> None:
    """Register the handlers; after this no error leaves the API in any other shape."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(request, exc.status, exc.slug, exc.title, exc.detail, headers=exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _json_safe(list(exc.errors()))
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(p for p in first["loc"] if p not in ("body", "query", "path"))
        detail = f"{where}: {first['msg']}" if where else str(first["msg"])
        return problem_response(request, 422, "validation", "Request validation failed", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title = _HTTP_TITLES.get(exc.status_code, ("http-error", "HTTP error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
            headers["Allow"] = _allowed(request)
        return problem_response(request, exc.status_code, slug, title, detail, headers=headers)

    @app.exception_handler(DocchainError)
    async def _docchain(request: Request, exc: DocchainError) -> JSONResponse:
        for cls, status, slug, title in TABLE:
            if isinstance(exc, cls):
                extra: dict[str, Any] = {}
                if isinstance(exc, ContractRevert):
                    extra["error"] = exc.name
                if isinstance(exc, VerificationError):
                    extra["step"] = exc.step
                if status >= 500:
                    log.warning("request failed", extra={"path": request.url.path, "error": str(exc)})
                return problem_response(request, status, slug, title, str(exc), **extra)
        raise AssertionError("DocchainError is in the table")

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        # the database cannot be reached (PostgreSQL down, restarting or refusing connections; an error raised
        # while connecting carries no statement): nothing was accepted, and the client may retry. Any other
        # database error is a bug, answered as one.
        unreachable = exc.statement is None or exc.connection_invalidated
        if unreachable or isinstance(exc, OperationalError | InterfaceError):
            log.warning("database unavailable", extra={"path": request.url.path, "error": str(exc.orig)})
            return problem_response(
                request, 503, "database-unavailable", "Database unavailable", "the database cannot be reached; retry"
            )
        return await _unexpected(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return problem_response(request, 500, "internal", "Internal error", "an unexpected error occurred")
