"""The OpenAPI document as the API answers: every status a route can return is declared on it, errors as
``application/problem+json`` with the ``Problem`` schema, and every ``$ref`` resolves.

Routes declare the statuses of their own logic with ``responses=problems_for(...)``; :func:`install` adds
what any route may answer (413: a Content-Length over the upload limit is refused before routing; 500: a
bug, answered as a problem too) and the schemas that hand-written request bodies (multipart alternatives,
``openapi_extra``) reference but FastAPI never sees as a model.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from docchain.api.problems import MEDIA_TYPE
from docchain.api.schemas import Problem, SubmissionIn

REF_TEMPLATE = "#/components/schemas/{model}"
PROBLEM: dict[str, Any] = {"content": {MEDIA_TYPE: {"schema": {"$ref": REF_TEMPLATE.format(model="Problem")}}}}

# Why each error status is answered; a route may say more precisely why (``problems_for(404, why={...})``).
REASONS = {
    400: "the request is not valid HTTP (a malformed header or form)",
    401: "this write endpoint needs a valid API key (X-API-Key or Authorization: Bearer)",
    403: "the document is held sealed only (encrypted on IPFS): send its key in X-Docchain-Key",
    404: "not found",
    408: "the request body did not arrive within DOCCHAIN_BODY_TIMEOUT_S",
    409: "conflict with the current state",
    413: "the body, a file part or a field is over its limit (the detail names it)",
    415: "the content type is neither application/json nor multipart/form-data",
    422: "invalid input (the detail names the field; type .../validation lists every one in errors)",
    429: "over a relayer limit: the client's or the signer's writes per minute or per UTC day (Retry-After: when)",
    500: "an unexpected error (a bug), or a stored file that no longer matches its hash",
    502: "the Ethereum node answered with an error",
    503: "the Ethereum node, the database, the registry or a storage backend is unavailable: nothing was changed, "
    "retry",
    504: "the transaction was not mined in time",
}
EVERY_ROUTE = (413, 500)
# the relayed writes (the relayer pays their gas) are also refused while its balance is low (api/limits.py)
RELAYED_WHY = {503: REASONS[503] + "; or the relayer's balance is below DOCCHAIN_RELAYER_MIN_BALANCE_WEI"}
# the statuses of routes that read a body, and of those that ask the node
BODY = (400, 408, 413, 415, 422)
CHAIN = (502, 503)


def problems_for(*statuses: int, why: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status as a problem+json response with its reason."""
    why = why or {}
    return {status: {**PROBLEM, "description": why.get(status, REASONS[status])} for status in sorted(set(statuses))}


def _ref(model: str) -> str:
    return REF_TEMPLATE.format(model=model)


def _components(model: type[BaseModel]) -> dict[str, Any]:
    """The model's schema and those it refers to, keyed by name, as FastAPI lays them out in components."""
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    defs = schema.pop("$defs", {})
    return {**defs, model.__name__: schema}


def _complete(document: dict[str, Any], models: tuple[type[BaseModel], ...]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in models:
        for name, schema in _components(model).items():
            schemas.setdefault(name, schema)
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status in EVERY_ROUTE:
                responses.setdefault(str(status), {**PROBLEM, "description": REASONS[status]})
            # FastAPI's default 422 (HTTPValidationError, application/json) is not what the API answers
            if _ref("HTTPValidationError") in json.dumps(responses.get("422", {})):
                responses["422"] = {**PROBLEM, "description": REASONS[422]}
    text = json.dumps(document["paths"])
    if _ref("HTTPValidationError") not in text:
        schemas.pop("HTTPValidationError", None)
        if _ref("ValidationError") not in text:
            schemas.pop("ValidationError", None)


def install(app: FastAPI, models: tuple[type[BaseModel], ...] = (Problem, SubmissionIn)) -> None:
    """Serve the completed document at ``/openapi.json`` (built once, on first request)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _complete(build(), models)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
