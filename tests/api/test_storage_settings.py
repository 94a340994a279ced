"""Start-up with storage settings that cannot work: ``python -m docchain.api`` says so in one line naming the
setting and exits 2 for a bad setting, 3 for a backend it cannot reach, before anything starts (no port, no
database, no pipeline). The table runs the start-up check in-process; two cases run the real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from api_support import DEV_KEY

from docchain.api.__main__ import check_storage
from docchain.api.settings import Settings
from tests.storage.kubo import Kubo, kubo  # noqa: F401 (the session's kubo node; skipped where none is built)
from tests.support import free_port


def closed_url() -> str:
    """An address where nothing listens (connections are refused at once)."""
    return f"http://127.0.0.1:{free_port()}"


S3 = {"DOCCHAIN_S3_BUCKET": "b", "DOCCHAIN_S3_ACCESS_KEY_ID": "k", "DOCCHAIN_S3_SECRET_ACCESS_KEY": "s"}
EMPTY_SECRET = {"DOCCHAIN_S3_SECRET_ACCESS_KEY": ""}
CASES = [
    ({"DOCCHAIN_STORAGE": "local,dropbox"}, 2, "DOCCHAIN_STORAGE names an unknown backend 'dropbox'"),
    ({"DOCCHAIN_STORAGE": "local,LOCAL"}, 2, "DOCCHAIN_STORAGE names local more than once"),
    ({"DOCCHAIN_STORAGE": " , "}, 2, "DOCCHAIN_STORAGE is empty"),
    ({"DOCCHAIN_STORAGE": "s3"}, 2, "DOCCHAIN_S3_BUCKET"),
    ({"DOCCHAIN_STORAGE": "s3", "DOCCHAIN_S3_BUCKET": "b", "DOCCHAIN_S3_ACCESS_KEY_ID": "k"}, 2, "SECRET_ACCESS_KEY"),
    (
        {"DOCCHAIN_STORAGE": "s3", "DOCCHAIN_S3_BUCKET": "b", "DOCCHAIN_S3_ACCESS_KEY_ID": "k", **EMPTY_SECRET},
        2,
        "DOCCHAIN_S3_SECRET_ACCESS_KEY",
    ),
    ({"DOCCHAIN_STORAGE": "s3", **S3, "DOCCHAIN_S3_BUCKET": " "}, 2, "DOCCHAIN_S3_BUCKET"),
    ({"DOCCHAIN_STORAGE": "ipfs", "DOCCHAIN_IPFS_API_URL": "127.0.0.1:5001"}, 2, "DOCCHAIN_IPFS_API_URL"),
    ({"DOCCHAIN_STORAGE": "ipfs,local"}, 2, "put local or s3 first"),
    ({"DOCCHAIN_STORAGE": "ipfs,s3", **S3}, 2, "put local or s3 first"),
    ({"DOCCHAIN_STORAGE": "local,s3", **S3, "DOCCHAIN_S3_ENDPOINT_URL": "closed"}, 3, "DOCCHAIN_S3_ENDPOINT_URL"),
    ({"DOCCHAIN_STORAGE": "local,ipfs", "DOCCHAIN_IPFS_API_URL": "closed"}, 3, "DOCCHAIN_IPFS_API_URL"),
]
IDS = [
    "unknown",
    "twice",
    "empty",
    "no-bucket",
    "half-a-key",
    "empty-secret",
    "blank-bucket",
    "ipfs-url",
    "ipfs-first-then-local",
    "ipfs-first-then-s3",
    "s3-unreachable",
    "ipfs-unreachable",
]


def _settings(tmp_path: Path, storage: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in list(os.environ):
        if name.startswith(("DOCCHAIN_", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DOCCHAIN_DATA_DIR", str(tmp_path))
    for name, value in storage.items():
        monkeypatch.setenv(name, closed_url() if value == "closed" else value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize(("storage", "status", "named"), CASES, ids=IDS)
def test_start_up_check_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, storage: dict[str, str], status: int, named: str
) -> None:
    problem = check_storage(_settings(tmp_path, storage, monkeypatch))
    assert problem is not None
    message, code = problem
    assert (code, "\n" in message) == (status, False) and named in message, message


def test_good_storage_settings_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_storage(_settings(tmp_path, {"DOCCHAIN_STORAGE": "local"}, monkeypatch)) is None
    assert (tmp_path / "documents").is_dir() and (tmp_path / "spool").is_dir()


@pytest.mark.parametrize(("case", "status"), [(0, 2), (10, 3)], ids=["bad-setting", "unreachable"])
def test_the_process_exits_before_serving(tmp_path: Path, case: int, status: int) -> None:
    storage, _, named = CASES[case]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCCHAIN_")}
    env.update(DOCCHAIN_DATA_DIR=str(tmp_path), DOCCHAIN_RELAYER_KEY=DEV_KEY, DOCCHAIN_RPC_URL=closed_url())
    env.update({k: closed_url() if v == "closed" else v for k, v in storage.items()})
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "docchain.api", "--port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == status, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("docchain-api: ") and named in lines[0], done.stderr
    assert "docchain API on" not in done.stdout and not (tmp_path / "docchain.db").exists()  # nothing started


def test_an_ipfs_url_at_the_gateway_is_a_bad_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """A node that answers but is not kubo's RPC API (its gateway): exit 2 naming the setting, one line."""
    node: Kubo = request.getfixturevalue("kubo")
    storage = {"DOCCHAIN_STORAGE": "local,ipfs", "DOCCHAIN_IPFS_API_URL": node.gateway_url}
    problem = check_storage(_settings(tmp_path, storage, monkeypatch))
    assert problem is not None
    message, code = problem
    assert code == 2 and "\n" not in message and "DOCCHAIN_IPFS_API_URL" in message, message
    assert "not kubo's RPC API" in message, message
