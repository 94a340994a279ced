"""/openapi.json, as the running API serves it, is a valid OpenAPI 3.1 document (openapi-spec-validator), every
``$ref`` in it resolves, and every operation declares what it answers: its error statuses as
application/problem+json with the Problem schema (FastAPI's HTTPValidationError, which the API never sends,
appears nowhere). Schemathesis (test_openapi_fuzz.py) checks the answers against these declarations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from api_support import Api
from openapi_spec_validator import validate

PROBLEM_REF = "#/components/schemas/Problem"

# sqlite only: the document does not depend on the database
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def document(api: Api) -> dict[str, Any]:
    r = api.get("/openapi.json")
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve (no {part!r})"
        node = node[part]
    return node


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on an invalid document


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    refs = set(_refs(document))
    assert refs, "no $ref at all?"
    for ref in sorted(refs):
        _resolve(document, ref)
    # the hand-written request bodies name their schemas, and those are there
    assert "#/components/schemas/SubmissionIn" in refs
    assert "HTTPValidationError" not in str(document)


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_every_error_is_declared_as_a_problem(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        for status in ("413", "500"):  # any route: a Content-Length over the limit, a bug
            assert status in responses, (method, path, status)
        for status, response in responses.items():
            if int(status) < 400:
                continue
            content = response.get("content", {})
            assert list(content) == ["application/problem+json"], (method, path, status, content)
            assert content["application/problem+json"]["schema"] == {"$ref": PROBLEM_REF}, (method, path, status)
            assert response.get("description"), (method, path, status)
        has_input = bool(operation.get("parameters")) or "requestBody" in operation
        if has_input:
            assert "422" in responses, (method, path)
        if method == "POST":
            for status in ("408", "413", "422"):  # a body: its deadline, its limit, its validation
                assert status in responses, (method, path, status)


@pytest.mark.parametrize(
    "method,path,statuses",
    [
        ("POST", "/v1/documents", {"200", "202", "400", "401", "408", "413", "415", "422", "429", "502", "503"}),
        ("POST", "/v1/verify", {"200", "400", "408", "413", "415", "422", "502", "503"}),
        ("POST", "/v1/revocations", {"200", "202", "401", "404", "409", "413", "422", "429", "503"}),
        ("GET", "/v1/documents/{doc_hash}/receipts/{signer}", {"200", "404", "409", "422", "503"}),
        ("GET", "/v1/documents/{doc_hash}/file", {"200", "404", "422", "500", "503"}),
        ("GET", "/v1/documents/{doc_hash}/content", {"200", "403", "404", "422", "500", "502", "503"}),
        ("GET", "/v1/submissions/{submission_id}", {"200", "404", "422", "503"}),
        ("GET", "/v1/explorer/blocks/{number}", {"200", "404", "422", "502", "503"}),
        ("GET", "/readyz", {"200", "503"}),
    ],
)
def test_routes_declare_the_statuses_they_answer(
    document: dict[str, Any], method: str, path: str, statuses: set[str]
) -> None:
    declared = set(document["paths"][path][method.lower()]["responses"])
    assert statuses <= declared, statuses - declared


def test_the_problem_schema(document: dict[str, Any]) -> None:
    problem = _resolve(document, PROBLEM_REF)
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert problem.get("additionalProperties", True) is not False  # problems add members (errors, limit, ...)


def test_block_numbers_are_bounded_in_the_document(document: dict[str, Any]) -> None:
    (number,) = document["paths"]["/v1/explorer/blocks/{number}"]["get"]["parameters"]
    assert number["schema"]["minimum"] == 0 and number["schema"]["maximum"] == 2**63 - 1


def test_ui_routes_are_not_operations(document: dict[str, Any]) -> None:
    assert not {"/docs", "/redoc", "/docs-assets"} & set(document["paths"])
