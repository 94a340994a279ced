"""The CLI's exit statuses and its error types, mapped once (see :func:`exit_code_for`).

    0    ok: valid, done
    1    verification failed: invalid, not registered, signed by others, file mismatch, revoked,
         untrusted registry, registry without code (and a document, receipt or record that is not found)
    2    usage or bad input: bad arguments, malformed file / hash / address, unreadable file, bad config,
         the API refusing the request as malformed (4xx)
    3    network or chain unavailable: the API or the node unreachable or timed out, the API answering 5xx
         (503 included), chain errors, reverted transactions
    130  interrupted: Ctrl-C anywhere, a password prompt and ``submit --wait`` included

Scripts branch on these: 1 is an answer about the document, 2 a mistake to fix before trying again, 3 a
failure that the same command may get past later. With ``--json`` an error is also one JSON object on
stdout, ``{"error": {"code": 3, "kind": "unavailable", "message": "..."}}``; ``kind`` names the status.
"""

from __future__ import annotations

import sys
from enum import IntEnum
from typing import Any

from docchain.chain.errors import (
    ChainError,
    DocchainError,
    InvalidInput,
    NodeError,
    VerificationError,
)


class ExitCode(IntEnum):
    OK = 0
    VERIFICATION_FAILED = 1
    USAGE = 2
    UNAVAILABLE = 3
    CHAIN = 3  # an alias of UNAVAILABLE: a chain that refuses or fails is the same status for a script
    INTERRUPTED = 130

    @property
    def kind(self) -> str:
        """The status's name in a ``--json`` error object."""
        return _KINDS[self]


_KINDS = {
    ExitCode.OK: "ok",
    ExitCode.VERIFICATION_FAILED: "verification",
    ExitCode.USAGE: "usage",
    ExitCode.UNAVAILABLE: "unavailable",
    ExitCode.INTERRUPTED: "interrupted",
}


class CliError(DocchainError):
    """An error the CLI reports in one line and ends with ``code``; ``details`` (JSON-able) go into the
    ``--json`` error object, for what a script needs beyond the message (the rows of a partial result)."""

    code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, code: ExitCode | None = None, *, details: Any = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.details = details


class UsageError(CliError):
    code = ExitCode.USAGE


class ApiUnreachable(CliError):
    """No answer from the API: refused, dropped, timed out."""

    code = ExitCode.UNAVAILABLE


class ApiTimedOut(ApiUnreachable):
    """The API took the request and gave no answer in time: it may have acted on it (a write is not resent)."""


class ApiError(CliError):
    """The API answered with an RFC 9457 problem. A 5xx is the service unavailable (3), and so is a
    transaction the chain reverted (``contract-revert``); a failed proof (``verification-failed``) is 1; any
    other 4xx is a request it refused (2), except a 404 for a lookup (``lookup``: a document, receipt or
    record the user named), which is the answer "not found" (1)."""

    def __init__(
        self, status: int, title: str, detail: str | None, *, lookup: bool = False, problem: str | None = None
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.problem = problem  # the problem type's last segment (docchain's slug), when there is one
        # a 5xx is the service failing (a backend down, a bug), not a verdict on the request
        said = "the API refused the request" if status < 500 else "the docchain API could not serve the request"
        text = f"{said} ({status} {title})" + (f": {detail}" if detail else "")
        if problem == "verification-failed" or (status == 404 and lookup):
            code = ExitCode.VERIFICATION_FAILED
        elif problem == "contract-revert" or status == 429:  # a limit: the same request may pass later
            code = ExitCode.UNAVAILABLE
        elif 400 <= status < 500:
            code = ExitCode.USAGE
        else:
            code = ExitCode.UNAVAILABLE
        super().__init__(text, code)


class VerificationFailed(CliError):
    code = ExitCode.VERIFICATION_FAILED


def _is_network(exc: BaseException) -> bool:
    """A transport failure of any of the HTTP stacks in use. Looked up in ``sys.modules``: a library that
    was never imported raised nothing, and importing requests or web3 here would slow every CLI start."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    for module, name in (
        ("requests", "RequestException"),
        ("httpx", "TransportError"),
        ("web3.exceptions", "Web3Exception"),
    ):
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(exc, cls):
            return True
    return False


def exit_code_for(exc: BaseException) -> ExitCode:
    """The one table from exception to exit status."""
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, VerificationError):
        return ExitCode.VERIFICATION_FAILED
    if isinstance(exc, InvalidInput):
        return ExitCode.USAGE
    if isinstance(exc, NodeError | ChainError | DocchainError):
        return ExitCode.UNAVAILABLE
    if _is_network(exc):  # before OSError: requests' errors and ConnectionRefusedError are OSErrors too
        return ExitCode.UNAVAILABLE
    if isinstance(exc, OSError):  # unreadable file, permission denied, not a directory ...
        return ExitCode.USAGE
    return ExitCode.UNAVAILABLE  # anything else, a bug included: neither a verdict nor the user's input to fix


def one_line(exc: BaseException) -> str:
    """The message shown for ``exc``: a single line, never a traceback."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" {exc.filename}" if exc.filename else ""
        text = f"{exc.strerror}:{where}".rstrip(":")
    else:
        text = str(exc) or exc.__class__.__name__
    return " ".join(text.split())


def error_object(code: ExitCode, message: str, details: Any = None) -> dict[str, Any]:
    """The ``--json`` form of an error: the exit status, its kind and the one-line message."""
    error: dict[str, Any] = {"code": int(code), "kind": code.kind, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}
