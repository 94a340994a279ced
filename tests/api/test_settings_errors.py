"""``python -m docchain.api`` refuses a bad setting in one line per setting, naming the environment variable,
the value and what is allowed (exit 2), and a database migrated by a newer docchain in one line naming both
revisions, before it binds its port."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from docchain.api.db import Database

RELAYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil's account #0


def _start(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
    env.update(
        DOCCHAIN_RELAYER_KEY=RELAYER_KEY,
        DOCCHAIN_RPC_URL="http://127.0.0.1:9",  # never reached: the settings are refused first
        DOCCHAIN_DATA_DIR=str(tmp_path / "data"),
        **settings,
    )
    return subprocess.run(
        [sys.executable, "-m", "docchain.api", "--port", "9"],
        cwd=tmp_path,  # no .env of the working tree
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("settings", "lines"),
    [
        (
            {"DOCCHAIN_ANCHORING": "bogus"},
            ["DOCCHAIN_ANCHORING='bogus' is not allowed: it must be 'direct' or 'merkle'"],
        ),
        (
            {"DOCCHAIN_MERKLE_MAX_LEAVES": "0", "DOCCHAIN_MERKLE_MAX_WAIT_MS": "-5"},
            [
                "DOCCHAIN_MERKLE_MAX_LEAVES='0' is not allowed: it must be greater than or equal to 1",
                "DOCCHAIN_MERKLE_MAX_WAIT_MS='-5' is not allowed: it must be greater than or equal to 1",
            ],
        ),
        (
            {"DOCCHAIN_CONFIRMATIONS": "two"},
            [
                "DOCCHAIN_CONFIRMATIONS='two' is not allowed: "
                "it must be a valid integer, unable to parse string as an integer"
            ],
        ),
    ],
    ids=["anchoring", "merkle bounds", "confirmations"],
)
def test_a_bad_setting_is_one_line_naming_its_variable(
    tmp_path: Path, settings: dict[str, str], lines: list[str]
) -> None:
    started = _start(tmp_path, **settings)
    assert started.returncode == 2
    assert started.stderr.splitlines() == [f"docchain-api: {line}" for line in lines]


def test_a_database_migrated_by_a_newer_docchain_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'newer.db'}"

    async def migrate_then_newer() -> str:
        db = Database(url)
        try:
            await db.migrate()
            async with db.engine.begin() as conn:
                ours = str(await conn.scalar(text("SELECT version_num FROM alembic_version")))
                await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        finally:
            await db.close()
        return ours

    ours = asyncio.run(migrate_then_newer())
    started = _start(tmp_path, DOCCHAIN_DATABASE_URL=url)
    assert started.returncode == 2
    assert started.stderr.splitlines() == [
        f"docchain-api: the database is at revision 9999, newer than this docchain knows ({ours}): upgrade docchain"
    ]
