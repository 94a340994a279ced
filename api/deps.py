"""FastAPI dependencies as named ``Annotated`` aliases, so handlers read like prose.

All are ``async def``: FastAPI runs a plain ``def`` dependency in a worker thread, a hop that cost more
than the whole request (measured: 7 hops per submission cut throughput to a tenth)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request

from docchain.api.chainctx import Bound, ChainContext
from docchain.api.db import Database
from docchain.api.limits import Admission
from docchain.api.notify import Notifier
from docchain.api.pipeline import Pipeline
from docchain.api.problems import Problem
from docchain.api.service import Documents, EnvelopeService, Lifecycle
from docchain.api.settings import Settings
from docchain.api.storage.replicas import Replicas


def _state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """A dependency answering ``app.state.<name>`` (one of the services the lifespan set up)."""

    async def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    return get


async def _bound(request: Request) -> Bound:
    return await request.app.state.chain.bound()  # type: ignore[no-any-return]


async def require_api_key(request: Request) -> None:
    """Write endpoints need a configured API key (``X-API-Key`` or ``Authorization: Bearer``) when any is set."""
    keys: list[str] = request.app.state.settings.api_keys
    if not keys:
        return
    given = request.headers.get("x-api-key")
    if given is None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
    # compared as bytes: compare_digest refuses a str with non-ASCII characters (a TypeError, which was a 500
    # for a header carrying any byte above 0x7f; Starlette decodes header values as Latin-1)
    if not given or not any(hmac.compare_digest(given.encode("latin-1"), k.encode()) for k in keys):
        raise Problem(401, "unauthorized", "Unauthorized", "a valid API key is required (X-API-Key header)")


SettingsDep = Annotated[Settings, Depends(_state("settings"))]
DatabaseDep = Annotated[Database, Depends(_state("db"))]
ChainDep = Annotated[ChainContext, Depends(_state("chain"))]
RegistryDep = Annotated[Bound, Depends(_bound)]
StorageDep = Annotated[Replicas, Depends(_state("storage"))]
NotifierDep = Annotated[Notifier, Depends(_state("notifier"))]
PipelineDep = Annotated[Pipeline, Depends(_state("pipeline"))]
DocumentsDep = Annotated[Documents, Depends(_state("documents"))]
LifecycleDep = Annotated[Lifecycle, Depends(_state("lifecycle"))]
EnvelopesDep = Annotated[EnvelopeService, Depends(_state("envelopes"))]
ApiKey = Depends(require_api_key)


async def admit(request: Request) -> Admission:
    """A relayed write (the relayer pays its gas), once its API key is checked: the relayer's limits."""
    return await request.app.state.limits.admit(request)  # type: ignore[no-any-return]


async def relayed_write(request: Request) -> Admission:
    """The API key check, then the relayer's limits: one dependency for a write route that declares no
    other key check (each dependency FastAPI solves costs the hottest route a few percent)."""
    await require_api_key(request)
    return await admit(request)


AdmissionDep = Annotated[Admission, Depends(admit)]
RelayedWriteDep = Annotated[Admission, Depends(relayed_write)]
