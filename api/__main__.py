"""``python -m docchain.api --host H --port P``: the API on uvicorn (uvloop + httptools).

Other settings come from ``DOCCHAIN_*`` environment variables (see api/settings.py). SIGTERM / SIGINT
stop accepting connections, let the anchoring cycle in progress finish and close the node and database
connections.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn
from docchain.api.app import create_app
from docchain.api.settings import Settings
from docchain.chain.errors import DocchainError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docchain.api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (SQLite: keep 1)")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
        settings.relayer_private_key()  # fail before binding the port when no key is configured
    except (DocchainError, ValueError) as exc:
        print(f"docchain-api: {exc}", file=sys.stderr)
        return 2
    app = create_app(settings)
    print(f"docchain API on http://{args.host}:{args.port} (docs: /docs)", flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,  # the edge middleware writes one structured line per request
        timeout_graceful_shutdown=10,
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
