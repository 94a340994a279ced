"""The S3 backend against a real S3 server (moto's, in its own process, over HTTP with SigV4): bounded memory,
multipart boundaries, where objects go, and how outages and bad settings surface."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pydantic import SecretStr

from docchain.api.storage.base import (
    BackendUnavailable,
    NotStored,
    Placement,
    StorageError,
    StorageMisconfigured,
)
from docchain.api.storage.s3 import PART_SIZE, S3Config, S3Storage
from tests.storage import (
    BackendCase,
    CutShort,
    Interrupted,
    MiB,
    MotoServer,
    PatternStream,
    document,
    full_scale,
    peak_rss_growth,
    start_moto,
)
from tests.support import free_port

MEMORY_BOUND = 32 * MiB


@pytest.mark.parametrize(
    "size",
    [
        64 * MiB,
        pytest.param(1 << 30, marks=pytest.mark.skipif(not full_scale(), reason="1 GiB: RELIABILITY_SCALE=full")),
    ],
    ids=["64MiB", "1GiB"],
)
def test_store_and_fetch_grow_memory_by_at_most_32_mib(s3_storage: S3Storage, size: int) -> None:
    warm, warm_hash = document(2 * PART_SIZE + 1)  # modules, connection pool, transfer threads: before measuring
    b"".join(s3_storage.open(warm_hash, s3_storage.put(warm_hash, io.BytesIO(warm))))
    doc_hash = PatternStream(size).sha256()

    with peak_rss_growth() as stored:
        placement = s3_storage.put(doc_hash, PatternStream(size))  # type: ignore[arg-type]
    assert placement.size == size
    assert stored.bytes <= MEMORY_BOUND, f"storing {size} B grew the peak RSS by {stored.bytes / MiB:.1f} MiB"

    received = 0
    with peak_rss_growth() as fetched:
        for chunk in s3_storage.open(doc_hash, placement):
            received += len(chunk)
    assert received == size
    assert fetched.bytes <= MEMORY_BOUND, f"fetching {size} B grew the peak RSS by {fetched.bytes / MiB:.1f} MiB"


@pytest.mark.parametrize(
    ("size", "parts"), [(PART_SIZE - 1, 0), (PART_SIZE, 0), (PART_SIZE + 1, 2), (2 * PART_SIZE, 2), (7 * PART_SIZE, 7)]
)
def test_part_boundaries_round_trip(moto: MotoServer, s3_config: S3Config, size: int, parts: int) -> None:
    storage = S3Storage(s3_config)
    data, doc_hash = document(size, seed=size)
    placement = storage.put(doc_hash, io.BytesIO(data))
    assert b"".join(storage.open(doc_hash, placement)) == data
    etag = moto.client().head_object(Bucket=s3_config.bucket, Key=placement.locator)["ETag"].strip('"')
    assert etag.endswith(f"-{parts}") if parts else "-" not in etag  # a multipart object's ETag counts its parts


def test_multipart_without_botocore_checksums(
    moto: MotoServer, s3_config: S3Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")  # what some S3-compatible services need
    storage = S3Storage(s3_config)
    data, doc_hash = document(2 * PART_SIZE + 1)
    assert b"".join(storage.open(doc_hash, storage.put(doc_hash, io.BytesIO(data)))) == data


def test_an_upload_cut_short_leaves_nothing(s3_case: BackendCase) -> None:
    data, doc_hash = document(4 * PART_SIZE)
    with pytest.raises(Interrupted):
        s3_case.backend.put(doc_hash, CutShort(data, 3 * PART_SIZE + 10))  # type: ignore[arg-type]
    assert s3_case.leftovers() == []  # the multipart upload was aborted


def test_objects_are_named_by_prefix_and_hash_and_carry_it(moto: MotoServer) -> None:
    bucket = moto.new_bucket()
    storage = S3Storage(moto.config(bucket, prefix="docs/"))
    data, doc_hash = document(1000)
    placement = storage.put(doc_hash, io.BytesIO(data))
    assert placement == Placement("s3", f"docs/{doc_hash.hex()}", 1000)
    head = moto.client().head_object(Bucket=bucket, Key=placement.locator)
    assert head["ContentLength"] == 1000
    assert head["Metadata"] == {"sha256": doc_hash.hex()}


def test_credentials_come_from_the_standard_aws_variables(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-the-environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-environment")
    storage = S3Storage(moto.config(moto.new_bucket(), access_key_id=None, secret_access_key=None))
    storage.check()
    data, doc_hash = document(10)
    assert b"".join(storage.open(doc_hash, storage.put(doc_hash, io.BytesIO(data)))) == data


@dataclass
class Outage:
    """A server stopped after storing a small and a large document, while the large one was being read."""

    url: str
    storage: S3Storage
    small: tuple[bytes, bytes, Placement]  # data, hash, placement
    reading: Iterator[bytes]  # the large document's open stream, one chunk consumed
    received: int
    size: int


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Outage:
    server = start_moto(tmp_path_factory.mktemp("outage"))
    size = 32 * MiB  # more than the loopback socket buffers hold: most of it is still on the server's side
    try:
        server.client().create_bucket(Bucket="outage")
        storage = S3Storage(server.config("outage"))
        data, doc_hash = document(1000)
        small = (data, doc_hash, storage.put(doc_hash, io.BytesIO(data)))
        large_hash = PatternStream(size).sha256()
        reading = storage.open(large_hash, storage.put(large_hash, PatternStream(size)))  # type: ignore[arg-type]
        received = len(next(reading))
    finally:
        server.stop()
    return Outage(server.url, storage, small, reading, received, size)


def test_server_down_is_unavailable_within_seconds(outage: Outage) -> None:
    storage, (data, doc_hash, placement) = outage.storage, outage.small
    for name, call in [
        ("check", storage.check),
        ("put", lambda: storage.put(doc_hash, io.BytesIO(data))),
        ("open", lambda: storage.open(doc_hash, placement)),
        ("exists", lambda: storage.exists(doc_hash, placement)),
        ("remove", lambda: storage.remove(doc_hash, placement)),
    ]:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable) as down:
            call()
        # botocore's defaults (60 s connect timeout, up to 5 attempts) would hold a request for minutes
        assert time.monotonic() - started < 15, name
        assert down.value.backend == "s3" and outage.url in str(down.value), name


def test_server_lost_mid_read_is_unavailable_not_a_library_error(outage: Outage) -> None:
    received = outage.received
    with pytest.raises(BackendUnavailable) as lost:
        for chunk in outage.reading:
            received += len(chunk)
    assert lost.value.backend == "s3"
    assert received < outage.size


def test_missing_object_is_not_stored(s3_storage: S3Storage) -> None:
    doc_hash = hashlib.sha256(b"never stored").digest()
    placement = Placement("s3", s3_storage.key(doc_hash), 12)
    assert not s3_storage.exists(doc_hash, placement)
    with pytest.raises(NotStored) as missing:
        s3_storage.open(doc_hash, placement)
    assert placement.locator in str(missing.value)


# ------------------------------------------------------------ bad settings


def test_unknown_bucket_names_the_bucket_setting(moto: MotoServer) -> None:
    storage = S3Storage(moto.config("no-such-bucket"))
    with pytest.raises(StorageMisconfigured) as bad:
        storage.check()
    assert bad.value.setting == "DOCCHAIN_S3_BUCKET" and "no-such-bucket" in str(bad.value)


def test_unreachable_endpoint_at_check_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    storage = S3Storage(S3Config(bucket="b", endpoint_url=url, access_key_id="k", secret_access_key=SecretStr("s")))
    with pytest.raises(BackendUnavailable) as down:
        storage.check()
    assert url in str(down.value)


@pytest.mark.parametrize(
    ("fields", "setting"),
    [
        ({"bucket": ""}, "DOCCHAIN_S3_BUCKET"),
        ({"access_key_id": "only-the-id"}, "DOCCHAIN_S3_SECRET_ACCESS_KEY"),
        ({"secret_access_key": "only-the-secret"}, "DOCCHAIN_S3_ACCESS_KEY_ID"),
        ({"endpoint_url": "not a url"}, "DOCCHAIN_S3_ENDPOINT_URL"),
    ],
    ids=["no bucket", "id without secret", "secret without id", "malformed endpoint"],
)
def test_malformed_settings_name_the_setting(fields: dict[str, Any], setting: str) -> None:
    config: dict[str, Any] = {"bucket": "documents"} | fields
    if "secret_access_key" in config:
        config["secret_access_key"] = SecretStr(config["secret_access_key"])
    with pytest.raises(StorageMisconfigured) as bad:
        S3Storage(S3Config(**config))
    assert bad.value.setting == setting and setting in str(bad.value)


def test_no_credentials_anywhere_names_the_credentials_setting(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role lookup: nothing leaves the host
    storage = S3Storage(moto.config("documents", access_key_id=None, secret_access_key=None))
    with pytest.raises(StorageMisconfigured) as bad:
        storage.check()
    assert bad.value.setting == "DOCCHAIN_S3_ACCESS_KEY_ID" and "AWS_ACCESS_KEY_ID" in str(bad.value)


@pytest.fixture(scope="module")
def offline() -> S3Storage:
    """A backend whose requests are never sent (the mapping of errors is checked on errors made up here)."""
    return S3Storage(
        S3Config(bucket="b", endpoint_url="http://127.0.0.1:9", access_key_id="k", secret_access_key=SecretStr("s"))
    )


@pytest.mark.parametrize(
    ("code", "status", "key", "error", "setting"),
    [
        ("NoSuchBucket", 404, "k", StorageMisconfigured, "DOCCHAIN_S3_BUCKET"),
        ("404", 404, None, StorageMisconfigured, "DOCCHAIN_S3_BUCKET"),  # HeadBucket: a bare status
        ("NoSuchKey", 404, "k", NotStored, None),
        ("404", 404, "k", NotStored, None),  # HeadObject: a bare status
        ("InvalidAccessKeyId", 403, "k", StorageMisconfigured, "DOCCHAIN_S3_ACCESS_KEY_ID"),
        ("SignatureDoesNotMatch", 403, "k", StorageMisconfigured, "DOCCHAIN_S3_ACCESS_KEY_ID"),
        ("AccessDenied", 403, None, StorageMisconfigured, "DOCCHAIN_S3_ACCESS_KEY_ID"),
        ("AuthorizationHeaderMalformed", 400, None, StorageMisconfigured, "DOCCHAIN_S3_REGION"),
        ("SlowDown", 503, "k", BackendUnavailable, None),
        ("InternalError", 500, "k", BackendUnavailable, None),
        ("InvalidArgument", 400, "k", StorageError, None),
    ],
)
def test_server_errors_map_to_storage_errors(
    offline: S3Storage, code: str, status: int, key: str | None, error: type[StorageError], setting: str | None
) -> None:
    response: Any = {
        "Error": {"Code": code, "Message": "said the server"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }

    def fail() -> None:
        raise ClientError(response, "HeadObject" if key else "HeadBucket")

    with pytest.raises(StorageError) as raised:
        offline._call(fail, "reach", key=key)
    assert type(raised.value) is error
    assert getattr(raised.value, "setting", None) == setting
