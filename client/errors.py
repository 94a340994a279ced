"""The CLI's exit statuses and its error types, mapped once (see :func:`exit_code_for`).

    0    ok
    1    verification failed (invalid or unknown document, revoked, not found)
    2    usage or connection error: bad arguments or input, the API or node unreachable or too slow
    3    the API or the chain answered with an error (server error, transaction reverted)
    130  interrupted (Ctrl-C)

The issue fixes "2 for usage or connection error"; the design's separate "3 network/chain" status is
kept for failures *reported by* a reachable server or chain, which a script may want to retry later.
"""

from __future__ import annotations

from enum import IntEnum

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
    CHAIN = 3
    INTERRUPTED = 130


class CliError(DocchainError):
    """An error the CLI reports in one line and ends with ``code``."""

    code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, code: ExitCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class UsageError(CliError):
    code = ExitCode.USAGE


class ApiUnreachable(CliError):
    """No answer from the API: refused, dropped, timed out. Exit 2, per the issue."""

    code = ExitCode.USAGE


class ApiError(CliError):
    """The API answered with an RFC 9457 problem."""

    def __init__(self, status: int, title: str, detail: str | None) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        text = f"the API refused the request ({status} {title})" + (f": {detail}" if detail else "")
        if status == 404:
            code = ExitCode.VERIFICATION_FAILED
        elif 400 <= status < 500:
            code = ExitCode.USAGE
        else:
            code = ExitCode.CHAIN
        super().__init__(text, code)


class VerificationFailed(CliError):
    code = ExitCode.VERIFICATION_FAILED


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
    if isinstance(exc, NodeError):  # node unreachable / not startable: a connection problem
        return ExitCode.USAGE
    if isinstance(exc, ChainError | DocchainError):
        return ExitCode.CHAIN
    if isinstance(exc, OSError):  # unreadable file, permission denied ...
        return ExitCode.USAGE
    return ExitCode.CHAIN


def one_line(exc: BaseException) -> str:
    """The message shown for ``exc``: a single line, never a traceback."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f" {exc.filename}" if exc.filename else ""
        text = f"{exc.strerror}:{where}".rstrip(":")
    else:
        text = str(exc) or exc.__class__.__name__
    return " ".join(text.split())
