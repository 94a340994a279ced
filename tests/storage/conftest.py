"""Storage fixtures: real servers on loopback, started and stopped by these fixtures by their own pid.

S3: moto's server (``python -m moto.server``) in a subprocess, a separate process speaking S3 over HTTP with
SigV4, exercised through the same S3Storage code users run against AWS or MinIO; each test gets its own
bucket. IPFS: a kubo node (tests/storage/kubo.py, imported in the marked spot below).

``backend_case`` runs a test once per backend (the contract suite, test_backend_contract.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from docchain.api.storage.base import Placement
from docchain.api.storage.local import LocalStorage
from docchain.api.storage.s3 import S3Config, S3Storage
from tests.storage import BackendCase, MotoServer, start_moto


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_config(moto: MotoServer) -> S3Config:
    """A fresh bucket on the session's moto server."""
    return moto.config(moto.new_bucket())


@pytest.fixture
def s3_storage(s3_config: S3Config) -> S3Storage:
    return S3Storage(s3_config)


# ------------------------------------------------------------ the contract suite's backends


@pytest.fixture
def local_case(tmp_path: Path) -> BackendCase:
    storage = LocalStorage(tmp_path / "documents")

    def corrupt(doc_hash: bytes, placement: Placement) -> Placement:
        path = storage.root / placement.locator[:2] / placement.locator[2:4] / placement.locator
        path.write_bytes(_flip_last(path.read_bytes()))
        return placement

    def leftovers() -> list[str]:
        return sorted(str(p.relative_to(storage.root)) for p in storage.root.rglob("*") if p.is_file())

    return BackendCase(storage, corrupt, leftovers)


@pytest.fixture
def s3_case(moto: MotoServer, s3_config: S3Config, s3_storage: S3Storage) -> BackendCase:
    client, bucket = moto.client(), s3_config.bucket

    def corrupt(doc_hash: bytes, placement: Placement) -> Placement:
        data = client.get_object(Bucket=bucket, Key=placement.locator)["Body"].read()
        client.put_object(Bucket=bucket, Key=placement.locator, Body=_flip_last(data))
        return placement

    def leftovers() -> list[str]:
        objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return sorted([o["Key"] for o in objects] + [f"upload {u['Key']} {u['UploadId']}" for u in uploads])

    return BackendCase(s3_storage, corrupt, leftovers)


def _flip_last(data: bytes) -> bytes:
    """Other bytes of the same length (one bit of the last byte flipped); an empty copy gains a byte."""
    return data[:-1] + bytes([data[-1] ^ 1]) if data else b"\0"


CONTRACT_CASES = ["local_case", "s3_case"]

# ------------------------------------------------------------ IPFS (helper B's spot) ------------------------
# tests/storage/kubo.py: the kubo fixtures, and an ``ipfs_case`` fixture (a BackendCase) for the contract suite.
from tests.storage.kubo import ipfs_case, kubo  # noqa: E402, F401 (fixtures)

CONTRACT_CASES.append("ipfs_case")
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture(params=CONTRACT_CASES)
def backend_case(request: pytest.FixtureRequest) -> BackendCase:
    case: BackendCase = request.getfixturevalue(request.param)
    return case
