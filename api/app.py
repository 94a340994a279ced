"""The FastAPI application: lifespan (database, migrations, chain, worker, indexer), edge middleware
(upload limit, request logs, metrics), routes, problem+json handlers, and the web UI mount."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from docchain.api import apidocs, logs, metrics, openapi, problems, security
from docchain.api.certificates import Certificates
from docchain.api.chainctx import ChainContext
from docchain.api.db import LISTEN_RETRY_S, ChainMismatch, Database
from docchain.api.limits import RelayerLimits
from docchain.api.notify import Notifier, relay
from docchain.api.outbox import OutboxWriter
from docchain.api.pipeline import AlsoWaking, create_pipeline
from docchain.api.routes import certificates as certificate_routes
from docchain.api.routes import chain as chain_routes
from docchain.api.routes import documents, envelopes, notifications, verify
from docchain.api.service import Documents, EnvelopeService, Lifecycle
from docchain.api.settings import Settings
from docchain.api.storage import replicas as storage_replicas
from docchain.chain.errors import DocchainError

log = logging.getLogger("docchain.api")
WEB_DIR = Path(__file__).parent / "web"


# Bodies with a limit of their own, below DOCCHAIN_MAX_UPLOAD_BYTES (FastAPI reads these whole before the
# route runs), for a path and every path under it. A revocation is ~400 bytes of JSON; an envelope's request
# with 16 signers ~2 KB, and a signature's registration as a submission's JSON.
_HOT_PATHS = frozenset({"/v1/documents", "/v1/verify"})
BODY_LIMITS = {"/v1/revocations": 16 * 1024, "/v1/envelopes": 64 * 1024}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
CLIENT_CLOSED = 499  # the status a request is counted and logged with when its client disconnected first


class EdgeMiddleware:
    """Upload size limit (413 before reading when Content-Length says so, else while streaming), the body's
    deadline (408: the headers' is api/httpserver.py's), one structured log line and metrics per request, and
    a log line when a client disconnects mid-request.

    Both refusals met while the body streams are raised from ``receive`` as Starlette's HTTPException: FastAPI
    turns any other exception raised while it reads a body into a 400, and re-raises that one. An answer sent
    before the body has all arrived ends the connection (api/httpserver.py)."""

    def __init__(
        self, app: ASGIApp, max_body: int, body_timeout: float = 120.0, limits: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.limits = limits or {}
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _limit(self, path: str) -> int:
        for prefix, limit in self.limits.items():
            if path == prefix or path.startswith(prefix + "/"):
                return limit
        return self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        method = scope["method"]
        limit = self._limit(scope["path"])
        has_body = False  # (HTTP/1.1: a request has a body only with a Content-Length or a Transfer-Encoding)
        for key, value in scope["headers"]:
            if key == b"transfer-encoding":
                has_body = True
            elif key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                has_body = declared > 0
                if declared > limit:
                    response = problems.problem_response(
                        None,
                        413,
                        "payload-too-large",
                        "Payload too large",
                        f"the request body ({declared} bytes) exceeds the limit of {limit} bytes",
                        limit=limit,
                    )
                    await response(scope, receive, send)
                    self._done(scope, method, 413, start)
                    return
        received = 0
        status = 500
        # the body has body_timeout from now (the end of the headers) to arrive; once it has (or when there is
        # none), receive() waits for a disconnect as long as a response streams (events, long-polls)
        deadline = asyncio.get_running_loop().time() + self.body_timeout
        body_done = not has_body

        async def limited() -> Message:
            nonlocal received, body_done
            if body_done:
                message = await receive()
            else:
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    raise HTTPException(
                        408, f"the request body did not arrive within {self.body_timeout:g} s (DOCCHAIN_BODY_TIMEOUT_S)"
                    ) from None
                body_done = message["type"] != "http.request" or not message.get("more_body", False)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"the request body exceeds {limit} bytes")
            elif message["type"] == "http.disconnect" and status == 500:
                log.info("client disconnected", extra={"method": method, "path": scope["path"], "received": received})
            return message

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, limited, sending)
        except ClientDisconnect:
            # The client went away mid-request (its body unread): nobody is left to answer and nothing failed
            # here, so it is neither counted nor logged as a 500. 499 is nginx's "client closed request".
            status = CLIENT_CLOSED
        finally:
            self._done(scope, method, status, start)

    def _done(self, scope: Scope, method: str, status: int, start: float) -> None:
        elapsed = time.perf_counter() - start
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        # the metrics' children are looked up once per (method, route, status): labels() takes a lock and
        # builds its key on every call. A method outside HTTP's own is one label value, so a client cannot
        # grow the metrics without bound.
        key = (method if method in _METHODS else "other", template, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                metrics.REQUESTS.labels(key[0], template, str(status)),
                metrics.LATENCY.labels(template),
            )
        children[0].inc()
        children[1].observe(elapsed)
        if log.isEnabledFor(logging.INFO):
            client = scope.get("client")
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": scope["path"],
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                    "client": client[0] if client else None,
                },
            )


class WebFiles(StaticFiles):
    """The web page's files, mounted at "/" after every route. Starlette prefers this mount's full match to a
    route's partial one (the path right, the method not), so GET /v1/verify came here and got "no such file":
    such a path is answered 405, with the route's methods in Allow."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if problems.route_methods(scope["app"], scope):
            raise HTTPException(405)
        return await super().get_response(path, scope)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    storage = storage_replicas.build(settings)  # a bad setting stops the start here (python -m docchain.api: exit 2)
    storage.sweep_spool()
    db = Database(settings.resolved_database_url)
    await db.migrate()
    chain = ChainContext(settings)
    chain.claim = db.claim_chain
    try:  # refuse to start on a database of another chain / registry (checked again on a lazy bind)
        await asyncio.wait_for(chain.bound(), timeout=2)  # python -m docchain.api checked already
    except ChainMismatch as exc:
        log.error("refusing to start: %s", exc)
        await db.close()
        await chain.close()
        raise
    except (DocchainError, TimeoutError) as exc:  # node down, no registry yet: bind lazily (routes answer 503)
        log.warning("not bound to the chain yet", extra={"error": str(exc) or exc.__class__.__name__})
    notifier = Notifier()
    pipeline = create_pipeline(settings, db, chain, notifier)
    app.state.db, app.state.chain, app.state.notifier, app.state.pipeline = db, chain, notifier, pipeline
    app.state.storage = storage
    app.state.limits = RelayerLimits(settings, db, chain)  # what relayed writes may spend (api/limits.py)
    app.state.outbox = outbox = OutboxWriter(db)
    app.state.lifecycle = lifecycle = Lifecycle(db, settings.confirmations)
    # the sealed copies this instance stages are made here, on the host whose spool holds them
    staged = storage_replicas.StagedCopier(db, storage, settings.data_dir, idle_s=settings.idle_poll_s)
    app.state.documents = Documents(settings, lifecycle, chain, storage, outbox, AlsoWaking(pipeline, staged.wake))
    app.state.envelopes = EnvelopeService(app.state.documents)  # relayed envelope actions (api/routes/envelopes.py)
    app.state.certificates = Certificates(chain, lifecycle.store, settings.confirmations)
    outbox.start()
    await pipeline.start()
    staged.start()
    # the pipeline working this database may be another process's: its changes arrive on the database's
    # channel (api/notify.py)
    listening = asyncio.Event()
    relaying = asyncio.create_task(relay(db, notifier, listening), name="notify-relay")
    # Serve once the channel reaches this process: a change published before would wake its waiters only at
    # their next re-read. A database that is down does not hold the start longer than one listen retry.
    with suppress(TimeoutError):
        await asyncio.wait_for(listening.wait(), LISTEN_RETRY_S)
    log.info(
        "docchain API started",
        extra={
            "rpc": settings.rpc_url,
            "database": db.engine.url.render_as_string(),
            "storage": ",".join(storage.names),
            "pipeline": settings.pipeline,
        },
    )
    try:
        yield
    finally:
        # Accepted submissions are already durable; stopping only waits for the cycle in progress, so a
        # transaction is never left signed-but-unrecorded.
        log.info("shutting down: finishing the current anchoring cycle")
        await outbox.close()  # answers every request already queued
        # together: each waits a bounded time for its work in progress, and the API exits within 5 s
        await asyncio.gather(pipeline.stop(), staged.stop())
        relaying.cancel()
        await asyncio.gather(relaying, return_exceptions=True)
        await db.close()
        await chain.close()
        log.info("docchain API stopped")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    logs.setup(settings.log_level, settings.log_file)
    app = FastAPI(
        title="docchain API",
        version="1",
        summary="Sign documents on Ethereum: submit, anchor, verify.",
        description="See docs/rest-contract.md. Errors are RFC 9457 application/problem+json.",
        lifespan=lifespan,
        docs_url=None,  # served by api/apidocs.py, with their assets, instead of from a CDN
        redoc_url=None,
        telemetry=None if settings.otel else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    problems.install(app)
    openapi.install(app)
    security.install(app)
    # The routers' routes go onto the app's own list (Starlette's public ``routes``), complete already
    # (prefix, tags and dependencies are applied as a router adds them): an included router is matched
    # through a wrapper of its own on every request. The two hot POSTs, submit and verify, go first, as
    # Starlette tries the routes in order (the sort is stable; OpenAPI lists the paths in this order).
    for router in (
        documents.router,
        verify.router,
        chain_routes.router,
        chain_routes.health,
        notifications.router,
        envelopes.router,
    ):
        app.router.routes.extend(router.routes)
    app.router.routes.extend(certificate_routes.router.routes)
    app.router.routes.sort(key=lambda r: getattr(r, "path", None) not in _HOT_PATHS)
    app.add_middleware(
        EdgeMiddleware, max_body=settings.max_upload_bytes, body_timeout=settings.body_timeout_s, limits=BODY_LIMITS
    )
    apidocs.install(app)
    if WEB_DIR.is_dir():
        app.mount("/", WebFiles(directory=WEB_DIR, html=True), name="web")
    return app


def factory() -> Any:
    """``uvicorn --factory docchain.api.app:factory``: settings from the environment. Served so, requests have
    uvicorn's own protocol, without the head deadline and size bound of api/httpserver.py (``python -m
    docchain.api`` has them): put a proxy with its own client timeouts in front."""
    return create_app()
