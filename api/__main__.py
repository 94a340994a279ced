"""``python -m docchain.api --host H --port P``: the API on uvicorn (uvloop + httptools).

Other settings come from ``DOCCHAIN_*`` environment variables (see api/settings.py). SIGTERM / SIGINT
stop accepting connections, let the anchoring cycle in progress finish and close the node and database
connections; the process then exits 0 (a graceful stop is not a crash).

``--workers N`` (or ``DOCCHAIN_WORKERS``) serves the port from N processes, to use more cores for
requests; see api/workers.py.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType

import uvicorn
from pydantic import ValidationError
from uvicorn.config import STARTUP_FAILURE

from docchain.api import logs
from docchain.api.settings import Settings, setting_problems
from docchain.api.workers import Supervisor, die_with, received_key
from docchain.chain.errors import DocchainError, InvalidInput

STORAGE_UNREACHABLE = 3  # exit status: a storage backend cannot be reached at start (as uvicorn's own 3)


async def _preflight(settings: Settings) -> str | None:
    """The database's chain and registry against the configured ones, when the node can be reached now
    (otherwise the service checks on its first binding). Returns the mismatch, if any."""
    from docchain.api.chainctx import ChainContext
    from docchain.api.db import ChainMismatch, Database, DatabaseTooNew

    db = Database(settings.resolved_database_url)
    chain = ChainContext(settings)
    chain.claim = db.claim_chain
    try:
        await db.migrate()
        await asyncio.wait_for(chain.bound(), timeout=5)
    except (ChainMismatch, DatabaseTooNew) as exc:
        return str(exc)
    except (DocchainError, TimeoutError):
        pass
    finally:
        await db.close()
        await chain.close()
    return None


def check_storage(settings: Settings) -> tuple[str, int] | None:
    """The storage backends ``DOCCHAIN_STORAGE`` names, built and reached before anything starts: a bad
    setting is exit 2 (the message names it), a backend that cannot be reached exit 3."""
    from docchain.api.storage.base import StorageError, StorageMisconfigured
    from docchain.api.storage.replicas import build

    try:
        build(settings).check()
    except (InvalidInput, StorageMisconfigured) as exc:
        return _one_line(str(exc)), 2
    except StorageError as exc:
        where = _ENDPOINT_SETTING.get(exc.backend, "DOCCHAIN_STORAGE")
        return _one_line(f"storage backend unreachable ({where}): {exc}"), STORAGE_UNREACHABLE
    return None


def _one_line(text: str) -> str:
    """A backend's message may quote a server's answer, line breaks included: the start-up says one line."""
    return " ".join(text.split())


# the setting that says where each backend is, named when it cannot be reached
_ENDPOINT_SETTING = {"local": "DOCCHAIN_STORAGE_DIR", "s3": "DOCCHAIN_S3_ENDPOINT_URL", "ipfs": "DOCCHAIN_IPFS_API_URL"}


# How long the requests running at SIGTERM may take to finish before they are cancelled. Held long-polls and
# event streams answer at once (see _Server), so only a request that is slow itself (an upload) takes that
# long; with the pipeline's step after it, the process exits within 5 s.
GRACEFUL_S = 3


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app as it starts to stop (``on_stop``) rather than once its requests are
    done: held long-polls and event streams then answer at once, where they held the graceful stop until its
    timeout and were cut (a 500, an unterminated stream)."""

    def __init__(self, config: uvicorn.Config, on_stop: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_stop = on_stop

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.on_stop()
        await super().shutdown(sockets)


def _serve(
    config: uvicorn.Config, sockets: list[socket.socket] | None = None, on_stop: Callable[[], None] = lambda: None
) -> int:
    """Run uvicorn until SIGTERM / SIGINT has shut it down gracefully; the exit status (0, or uvicorn's 3 when
    the server never started, as ``uvicorn.run`` does).

    uvicorn's ``Server.capture_signals`` installs its own handlers while serving, restores the previous ones
    afterwards and re-raises each signal it caught, so that the embedding program's handlers see it. With the
    default handlers that re-raise kills the process after the clean shutdown (SIGTERM: status -15, which
    supervisors read as a crash). The handlers installed here are the "previous" ones: a re-raised signal
    only lands in them, and a signal that arrives before uvicorn has taken over asks the server to stop.
    """
    server = _Server(config, on_stop)

    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True  # uvicorn's own flag: a no-op once it has shut down

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, stop) for sig in handled}
    try:
        server.run(sockets=sockets)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if server.started else STARTUP_FAILURE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m docchain.api",
        description="Run the docchain API (uvicorn, uvloop + httptools) with its anchoring pipeline.\n"
        "Every other setting is a DOCCHAIN_* environment variable or a .env line:\n"
        "docs/operations.md lists them all.",
        epilog="""examples:
  DOCCHAIN_RPC_URL=http://127.0.0.1:8545 DOCCHAIN_RELAYER_KEY=0x... python -m docchain.api
  python -m docchain.api --host 0.0.0.0 --port 8000 --workers 2   # two processes on the port

SIGTERM or Ctrl-C stop it gracefully (exit 0); exit 2: bad configuration, 3: could not start serving
(the port, or a storage backend that cannot be reached).""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default: %(default)s)")
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="API processes serving the port, for more cores (default: DOCCHAIN_WORKERS, else 1)",
    )
    # a worker's listening socket, its supervisor's pid and the pipe with the relayer's key, from api/workers.py
    parser.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--supervisor", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--key-fd", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fd is not None:
        die_with(supervisor=args.supervisor)
    try:
        settings = Settings()
        logs.setup(settings.log_level, settings.log_file)
        if args.key_fd is not None:  # decrypted by the supervisor: no scrypt here
            settings.given_relayer_key(received_key(args.key_fd))
        settings.relayer_private_key()  # fail before binding the port when no key is configured
    except ValidationError as exc:
        for line in setting_problems(exc):
            print(f"docchain-api: {line}", file=sys.stderr)
        return 2
    except (DocchainError, ValueError, OSError) as exc:
        print(f"docchain-api: {exc}", file=sys.stderr)
        return 2
    workers = args.workers if args.workers is not None else settings.workers
    if workers < 1:
        print("docchain-api: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.fd is None:  # (a worker's supervisor checked, and migrated the database, before starting it)
        problem = check_storage(settings)
        if problem is not None:
            message, code = problem
            print(f"docchain-api: {message}", file=sys.stderr)
            return code
        mismatch = asyncio.run(_preflight(settings))
        if mismatch:
            print(f"docchain-api: {mismatch}", file=sys.stderr)
            return 2
    url = f"http://{args.host}:{args.port}"
    if workers > 1 and args.fd is None:
        try:
            # a keystore's key goes to the workers over pipes: one decryption for them all
            key = settings.relayer_private_key() if settings.relayer_keystore is not None else None
            supervisor = Supervisor(workers, args.host, args.port, relayer_key=key)
        except OSError as exc:
            print(f"docchain-api: cannot listen on {url}: {exc.strerror or exc}", file=sys.stderr)
            return STARTUP_FAILURE
        print(f"docchain API on {url} (docs: /docs), {workers} worker processes", flush=True)
        return supervisor.run()
    from docchain.api.app import create_app  # the app's imports (~2 s): not for --help, nor the supervisor
    from docchain.api.httpserver import protocol

    app = create_app(settings)
    if args.fd is None:
        print(f"docchain API on {url} (docs: /docs)", flush=True)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http=protocol(settings.header_timeout_s),  # httptools, with a deadline and a bound on a request's head
        access_log=False,  # the edge middleware writes one structured line per request
        timeout_graceful_shutdown=GRACEFUL_S,
        log_level="warning",
    )

    def stopping() -> None:
        notifier = getattr(app.state, "notifier", None)  # set once the app has started
        if notifier is not None:
            notifier.close()

    return _serve(config, None if args.fd is None else [socket.socket(fileno=args.fd)], stopping)


if __name__ == "__main__":
    sys.exit(main())
