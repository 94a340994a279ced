"""Alembic migrations, configured in code (no alembic.ini needed at run time).

``python -m docchain.api.migrations revision -m "..." --autogenerate`` works for developers through
:func:`main`; the service itself calls :func:`upgrade` on start.
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

HERE = Path(__file__).parent


def config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")  # a data path holding a space or comma stays one path
    cfg.set_main_option("version_locations", str(HERE / "versions"))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(connection: Connection, revision: str = "head") -> None:
    cfg = config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def main(argv: list[str] | None = None) -> None:
    """Developer entry: ``python -m docchain.api.migrations <alembic args>`` against DOCCHAIN_DATABASE_URL."""
    from alembic.config import CommandLine

    from docchain.api.settings import Settings

    cli = CommandLine()
    options = cli.parser.parse_args(argv if argv is not None else sys.argv[1:])
    cfg = config(Settings().resolved_database_url)
    cfg.cmd_opts = options
    cli.run_cmd(cfg, options)
