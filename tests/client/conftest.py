from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An isolated config dir and data dir, with every DOCCHAIN_* variable of the caller cleared."""
    import os

    for name in list(os.environ):
        if name.startswith("DOCCHAIN_"):
            monkeypatch.delenv(name)
    config = tmp_path / "config"
    monkeypatch.setenv("DOCCHAIN_CONFIG_DIR", str(config))
    monkeypatch.setenv("DOCCHAIN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DOCCHAIN_KDF_ITERATIONS", "2")  # scrypt at test strength: ms instead of ~1 s
    yield config


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()
