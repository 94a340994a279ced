"""The docchain REST API (docs/rest-contract.md) over HTTP, with httpx.

Idempotent calls (every GET, verify, and document submission — the API deduplicates by
(docHash, signer)) are retried with exponential backoff when the connection is refused or dropped or
the server is briefly unavailable (502/503/504). Every failure becomes one plain sentence:
"cannot reach the docchain API at http://...: connection refused", and its exit status (see
:class:`~docchain.client.errors.ApiError`): unreachable or 5xx 3, a refused request 2, and a 404 1 only
for a lookup of something the user named (a document, its receipt, a transaction), where it is the answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from docchain.client.errors import ApiError, ApiTimedOut, ApiUnreachable

T = TypeVar("T")
RETRY_STATUSES = {502, 503, 504}
RATE_LIMIT_PATIENCE_S = 120.0  # how long a command waits out 429s (per-signer limits are per minute)
# An upload's answer comes once the first storage backend holds the file: the API bounds each stall of that
# backend (DOCCHAIN_IPFS_TIMEOUT_S, 15 s) and answers 503 naming it, so the client waits well beyond that.
UPLOAD_TIMEOUT_S = 120.0


def _retry_after(response: httpx.Response) -> float | None:
    """The pause a 429's ``Retry-After`` asks for, in seconds (the API sends an integer)."""
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


TERMINAL_STATES = {"anchored", "confirmed", "failed", "revoked"}


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc).lower()
    if isinstance(exc, httpx.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer within the timeout"
    if isinstance(exc, httpx.ConnectError):
        if "refused" in text:
            return "connection refused"
        if "name or service" in text or "nodename" in text or "getaddrinfo" in text:
            return "unknown host"
        return "cannot connect (" + (" ".join(str(exc).split()) or exc.__class__.__name__) + ")"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "the connection was dropped"
    return " ".join(str(exc).split()) or exc.__class__.__name__


class ApiClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.25,
        api_key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        headers = {"User-Agent": "docchain-cli", "Accept": "application/json"}
        if api_key:
            headers["X-API-Key"] = api_key
        self._http = httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(timeout), headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _unreachable(self, exc: httpx.TransportError) -> ApiUnreachable:
        return ApiUnreachable(f"cannot reach the docchain API at {self.base_url}: {_reason(exc)}")

    def _send(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        read_timeout: float | None = None,
        lookup: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        attempts = 1 + (self.retries if idempotent else 0)
        if read_timeout is not None:
            kwargs["timeout"] = httpx.Timeout(self.timeout, read=read_timeout)
        limited_until = time.monotonic() + RATE_LIMIT_PATIENCE_S
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self._http.request(method, path, **kwargs)
                # A rate limit accepted nothing, so even a write is sent again once the API says it may be;
                # waiting does not use up an attempt, and stops when it would outlast the patience.
                # (A file upload's stream is spent: it is answered as it is, and re-opened by _retry_fresh.)
                while (
                    response.status_code == 429
                    and "files" not in kwargs
                    and (pause := _retry_after(response)) is not None
                ):
                    if time.monotonic() + pause > limited_until:
                        break
                    time.sleep(pause)
                    response = self._http.request(method, path, **kwargs)
            except httpx.ConnectTimeout as exc:
                # A slow server will likely be slow again; retrying only multiplies the wait.
                raise self._unreachable(exc) from exc
            except httpx.TimeoutException as exc:  # the request went out: the API may have acted on it
                raise ApiTimedOut(str(self._unreachable(exc))) from exc
            except httpx.TransportError as exc:
                if last:
                    raise self._unreachable(exc) from exc
            else:
                if response.status_code not in RETRY_STATUSES or last:
                    return self._check(response, lookup=lookup)
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    @staticmethod
    def _check(response: httpx.Response, *, lookup: bool = False) -> httpx.Response:
        if response.is_success:
            return response
        title, detail, slug = response.reason_phrase, None, None
        try:
            problem = response.json()
            if isinstance(problem, dict):
                title = str(problem.get("title") or title)
                detail = problem.get("detail")
                if detail is not None and not isinstance(detail, str):
                    detail = json.dumps(detail)
                if isinstance(problem.get("type"), str):
                    slug = problem["type"].rstrip("/").rsplit("/", 1)[-1]
        except ValueError:
            text = response.text.strip()
            detail = text[:200] or None
        raise ApiError(response.status_code, title, detail, lookup=lookup, problem=slug)

    def _json(self, method: str, path: str, *, idempotent: bool = True, lookup: bool = False, **kwargs: Any) -> Any:
        """The answer's JSON. ``lookup``: the path names something the user asked about, so a 404 answers
        "not found" (exit 1) rather than pointing at a wrong API address or a stale id (exit 2)."""
        response = self._send(method, path, idempotent=idempotent, lookup=lookup, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(response.status_code, "not JSON", f"unexpected answer from {path}") from exc

    # ------------------------------------------------------------------ endpoints

    def chain(self) -> dict[str, Any]:
        return dict(self._json("GET", "/v1/chain"))

    def submit(self, submission: dict[str, Any], file: Path | None = None) -> dict[str, Any]:
        """POST /v1/documents; the API answers an existing (docHash, signer) with that submission."""
        if file is None:
            return dict(self._json("POST", "/v1/documents", json=submission))

        patience = max(self.timeout, UPLOAD_TIMEOUT_S)

        def upload() -> dict[str, Any]:
            with open(file, "rb") as stream:
                return dict(
                    self._json(
                        "POST",
                        "/v1/documents",
                        idempotent=False,
                        data={"submission": json.dumps(submission)},
                        files={"file": (file.name, stream, "application/octet-stream")},
                        timeout=httpx.Timeout(self.timeout, read=patience, write=patience),
                    )
                )

        # The stream cannot be rewound by httpx's own retry, so each attempt re-opens the file.
        try:
            return self._retry_fresh(upload)
        except ApiTimedOut as exc:
            raise ApiTimedOut(
                f"{exc}; the submission may have been accepted: run the same command again (a repeat answers "
                "with the existing submission) or `docchain status FILE`"
            ) from exc

    def _retry_fresh(self, call: Callable[[], T]) -> T:
        for attempt in range(self.retries + 1):
            try:
                return call()
            except ApiTimedOut:
                raise  # sent, perhaps acted on: resending could store the file again
            except ApiUnreachable:
                if attempt == self.retries:
                    raise
            time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    def submission(self, submission_id: str, wait: float | None = None) -> dict[str, Any]:
        params = {} if wait is None else {"wait": f"{wait:g}"}
        read = None if wait is None else wait + self.timeout
        return dict(self._json("GET", f"/v1/submissions/{submission_id}", params=params, read_timeout=read))

    def wait_for(self, submission_id: str, *, until: float, states: set[str] | None = None) -> dict[str, Any]:
        """Long-poll until the submission reaches one of ``states`` (anchored or later) or ``until``."""
        targets = states or TERMINAL_STATES
        while True:
            remaining = until - time.monotonic()
            answer = self.submission(submission_id, wait=max(0.0, min(60.0, remaining)))
            if answer.get("state") in targets or remaining <= 0:
                return answer

    def document(self, doc_hash: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/v1/documents/{doc_hash}", lookup=True))

    def receipt(self, doc_hash: str, signer: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/v1/documents/{doc_hash}/receipts/{signer}", lookup=True))

    @contextmanager
    def download(self, doc_hash: str, key: str | None = None) -> Iterator[httpx.Response]:
        """GET the document's content, streamed; ``key`` (a receipt's storage.ipfs.key) lets the API read a
        sealed IPFS copy too. The ``X-Docchain-Storage-Backend`` header names the backend that served it."""
        headers = {} if key is None else {"X-Docchain-Key": key}
        try:
            with self._http.stream("GET", f"/v1/documents/{doc_hash}/content", headers=headers) as response:
                if not response.is_success:
                    response.read()
                    self._check(response, lookup=True)
                yield response
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def documents(self, **params: Any) -> dict[str, Any]:
        query = {k: v for k, v in params.items() if v is not None}
        return dict(self._json("GET", "/v1/documents", params=query))

    def verify(self, doc_hash: str, signer: str | None, receipt: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"docHash": doc_hash, "signers": True}  # printed beside the verdict
        if signer:
            body["signer"] = signer
        if receipt is not None:
            body["receipt"] = receipt
        return dict(self._json("POST", "/v1/verify", json=body))

    def nonce(self, signer: str) -> int:
        return int(self._json("GET", f"/v1/nonces/{signer}")["nonce"])

    def revoke(self, revocation: dict[str, Any], signature: str) -> dict[str, Any]:
        # Not retried blindly: a revocation whose answer was lost is visible in the document status.
        return dict(
            self._json(
                "POST",
                "/v1/revocations",
                idempotent=False,
                lookup=True,  # 404: the signer has no record of the document to revoke
                json={"revocation": revocation, "signature": signature},
            )
        )

    def revocations(self, doc_hash: str, signer: str) -> dict[str, Any]:
        """GET the signer's revocation requests for the document, newest first (404: none)."""
        return dict(self._json("GET", f"/v1/documents/{doc_hash}/revocations/{signer}", lookup=True))

    def tx(self, tx_hash: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/v1/explorer/tx/{tx_hash}", lookup=True))

    def block(self, number: int) -> dict[str, Any]:
        return dict(self._json("GET", f"/v1/explorer/blocks/{number}", lookup=True))

    def signer_documents(self, address: str) -> Any:
        return self._json("GET", f"/v1/explorer/signers/{address}", lookup=True)

    def healthy(self) -> bool:
        try:
            return self._http.get("/healthz", timeout=2.0).is_success
        except httpx.TransportError:
            return False
