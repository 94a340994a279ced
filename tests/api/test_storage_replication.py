"""Replicated storage through the real API (``python -m docchain.api``): the first backend holds a document
before its 202, the copies to the others are made by the pipeline's copy worker from the database, survive a
backend outage and a restart, and reads fall back to another copy when one is gone or altered.

The S3 backend is moto's server in its own process (SigV4 over HTTP, as MinIO or AWS); the IPFS cases run a
real offline kubo node and skip where none is built (``make kubo``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import Api, Env, new_signer, poll

from tests.storage import S3_KEY_ID, S3_REGION, S3_SECRET, MotoServer, start_moto
from tests.storage.kubo import Kubo, kubo  # noqa: F401 (the session's kubo node; skipped where none is built)
from tests.support import free_port

COPY_TIMEOUT_S = 30  # the copy worker retries after 2, 4, 8 s ... once a backend is back


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: the copies' statements run on PostgreSQL in test_storage_copies.py; here the servers are
    what is under test, and every API start costs seconds."""
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'docchain.db'}"


@pytest.fixture
def ipfs_node(request: pytest.FixtureRequest) -> Kubo:
    return request.getfixturevalue("kubo")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """This module's own S3 server: its tests stop and restart it (on the same port)."""
    server = start_moto(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


def s3_env(moto: MotoServer, bucket: str) -> dict[str, str]:
    return {
        "DOCCHAIN_S3_ENDPOINT_URL": moto.url,
        "DOCCHAIN_S3_BUCKET": bucket,
        "DOCCHAIN_S3_REGION": S3_REGION,
        "DOCCHAIN_S3_ACCESS_KEY_ID": S3_KEY_ID,
        "DOCCHAIN_S3_SECRET_ACCESS_KEY": S3_SECRET,
        "DOCCHAIN_S3_ADDRESSING_STYLE": "path",
    }


def storage_api(env: Env, name: str, storage: str, **overrides: str) -> Api:
    """An API with its own data directory (its own local store and spool) on the module's database; its
    pipeline in its own process only when a test asks (a child costs seconds to start and stop)."""
    data_dir = env.tmp / name
    if not data_dir.exists():
        data_dir.mkdir()
        (data_dir / "deployments.json").write_bytes((env.data_dir / "deployments.json").read_bytes())
    settings = {"DOCCHAIN_PIPELINE": "inline", **overrides}
    return env.api(DOCCHAIN_STORAGE=storage, DOCCHAIN_DATA_DIR=str(data_dir), **settings)


def stop(api: Api) -> int:
    api.client.close()  # no keep-alive connection for the graceful stop to wait out
    return api.stop()


def submit_file(api: Api, env: Env, content: bytes, *, public: bool | None = None) -> tuple[bytes, httpx.Response]:
    doc = hashlib.sha256(content).digest()
    body: dict[str, Any] = {**new_signer().registration(env.domain, doc), "fileName": "report.pdf"}
    if public is not None:
        body["public"] = public
    r = api.post("/v1/documents", files={"submission": (None, json.dumps(body)), "file": ("report.pdf", content)})
    return doc, r


def copies(api: Api, doc: bytes) -> dict[str, dict[str, Any]]:
    storage = api.get(f"/v1/documents/0x{doc.hex()}").json()["storage"]
    return {c["backend"]: c for c in storage}


def wait_copy(api: Api, doc: bytes, backend: str, state: str = "stored") -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        copy = copies(api, doc).get(backend)
        return copy if copy is not None and copy["state"] == state else None

    return poll(reached, COPY_TIMEOUT_S, interval=0.1, what=f"the {backend} copy to be {state}")  # type: ignore[no-any-return]


def local_file(api: Api, doc: bytes) -> Path:
    root = Path(api.env["DOCCHAIN_DATA_DIR"]) / "documents"
    return root / doc.hex()[:2] / doc.hex()[2:4] / doc.hex()


# ------------------------------------------------------------------ local, then S3


def test_round_trip_and_fallback_local_then_s3(env: Env, moto: MotoServer) -> None:
    bucket = moto.new_bucket()
    api = storage_api(env, "local-s3", "local,s3", **s3_env(moto, bucket)).start()
    content = os.urandom(300_000)
    doc, r = submit_file(api, env, content)
    assert r.status_code == 202, r.text
    assert r.json()["storage"] == {
        "storedIn": "local",
        "backends": ["local", "s3"],
        "ipfs": None,
        "keyGivenEarlier": False,
    }
    # the first backend held it before the 202; the S3 copy follows from the outbox
    assert local_file(api, doc).read_bytes() == content
    s3_copy = wait_copy(api, doc, "s3")
    assert s3_copy["locator"] == doc.hex() and s3_copy["sealed"] is False and s3_copy["size"] == len(content)
    held = moto.client().get_object(Bucket=bucket, Key=doc.hex())["Body"].read()
    assert hashlib.sha256(held).digest() == doc

    read = api.get(f"/v1/documents/0x{doc.hex()}/content")
    assert read.status_code == 200 and read.content == content
    assert read.headers["x-docchain-storage-backend"] == "local"
    assert read.headers["x-docchain-sha256"] == "0x" + doc.hex()
    assert api.get(f"/v1/documents/0x{doc.hex()}/file").content == content  # the deprecated alias

    # an altered local copy is never served: S3's is, and the local copy is reported failed with the reason
    local_file(api, doc).write_bytes(content[:-1] + bytes([content[-1] ^ 1]))
    read = api.get(f"/v1/documents/0x{doc.hex()}/content")
    assert read.status_code == 200 and read.content == content
    assert read.headers["x-docchain-storage-backend"] == "s3"
    local = copies(api, doc)["local"]
    assert local["state"] == "failed" and "0x" + doc.hex() in local["error"]

    # gone from both: 500 when the remaining copy is altered, never its bytes
    moto.client().put_object(Bucket=bucket, Key=doc.hex(), Body=b"not the document")
    problem = api.get(f"/v1/documents/0x{doc.hex()}/content")
    assert problem.status_code == 500 and problem.headers["content-type"] == "application/problem+json"
    assert problem.json()["type"].endswith("storage-corrupted")
    stop(api)


def test_copies_wait_out_an_outage_and_a_restart(env: Env, moto: MotoServer, tmp_path: Path) -> None:
    """S3 down: documents are accepted (the local store is first), their S3 copies wait as pending with the
    reason; the API restarts meanwhile; once S3 is back, every copy is made."""
    server = start_moto(tmp_path, port=free_port())
    bucket = server.new_bucket()
    api = storage_api(env, "outage", "local,s3", **s3_env(server, bucket)).start()
    server.stop()
    docs = []
    for _ in range(3):
        doc, r = submit_file(api, env, os.urandom(10_000))
        assert r.status_code == 202, r.text
        docs.append(doc)

    def attempted() -> dict[str, Any] | None:
        copy = copies(api, docs[0])["s3"]
        return copy if copy["attempts"] > 0 else None

    pending = poll(attempted, COPY_TIMEOUT_S, what="a first attempt at the S3 copy")
    assert pending["state"] == "pending" and "s3" in pending["error"]
    assert stop(api) == 0

    server = start_moto(tmp_path, port=server.port)  # moto keeps nothing: the bucket is made again
    server.client().create_bucket(Bucket=bucket)
    try:
        # this time with the pipeline in its own process, as deployed: the child gets the S3 secret too
        api = storage_api(env, "outage", "local,s3", DOCCHAIN_PIPELINE="process", **s3_env(server, bucket)).start()
        for doc in docs:
            wait_copy(api, doc, "s3")
            held = server.client().get_object(Bucket=bucket, Key=doc.hex())["Body"].read()
            assert hashlib.sha256(held).digest() == doc
        stop(api)
    finally:
        server.stop()


def test_first_backend_down_is_503_and_nothing_recorded(env: Env, tmp_path: Path) -> None:
    server = start_moto(tmp_path, port=free_port())
    bucket = server.new_bucket()
    api = storage_api(env, "s3-first", "s3,local", **s3_env(server, bucket)).start()
    server.stop()
    doc, r = submit_file(api, env, os.urandom(5_000))
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] and r.json()["type"].endswith("storage-unavailable")
    assert "s3" in r.json()["detail"]
    # not accepted: no submission, no copy, nothing on the local disk
    assert api.get(f"/v1/documents/0x{doc.hex()}").status_code == 404
    assert not local_file(api, doc).exists()
    stop(api)


# ------------------------------------------------------------------ IPFS (a real kubo node)


def test_sealed_ipfs_copy_key_for_the_submitter_only(env: Env, ipfs_node: Kubo) -> None:
    from docchain.chain.cid import cid_of_bytes

    api = storage_api(env, "local-ipfs", "local,ipfs", DOCCHAIN_IPFS_API_URL=ipfs_node.api_url).start()
    content = os.urandom(400_000)
    doc, r = submit_file(api, env, content)
    assert r.status_code == 202, r.text
    ipfs = r.json()["storage"]["ipfs"]
    assert ipfs["sealed"] is True and len(ipfs["key"]) == 43 and r.headers["cache-control"] == "no-store"
    copy = wait_copy(api, doc, "ipfs")
    assert copy["locator"] == ipfs["cid"] and copy["sealed"] is True
    # IPFS holds ciphertext: not the document's CID, nor its bytes
    held = httpx.get(f"{ipfs_node.gateway_url}/ipfs/{ipfs['cid']}", timeout=30).content
    assert ipfs["cid"] != cid_of_bytes(content) and content not in held
    # the key is nowhere on the server's side: not in the database's answers, not in its logs
    assert ipfs["key"] not in json.dumps(copies(api, doc))
    assert ipfs["key"] not in (env.tmp / "api.log.jsonl").read_text()
    assert not list((Path(api.env["DOCCHAIN_DATA_DIR"]) / "spool").glob("*.sealed"))  # staged copy removed

    local_file(api, doc).unlink()
    assert api.get(f"/v1/documents/0x{doc.hex()}/content").status_code == 403  # sealed only, and no key
    read = api.get(f"/v1/documents/0x{doc.hex()}/content", headers={"X-Docchain-Key": ipfs["key"]})
    assert read.status_code == 200 and read.content == content
    assert read.headers["x-docchain-storage-backend"] == "ipfs"
    other = "A" * 43
    assert api.get(f"/v1/documents/0x{doc.hex()}/content", headers={"X-Docchain-Key": other}).status_code == 422
    stop(api)


def test_public_ipfs_copy_has_the_documents_cid(env: Env, ipfs_node: Kubo) -> None:
    from docchain.chain.cid import cid_of_bytes

    api = storage_api(env, "ipfs-public", "ipfs", DOCCHAIN_IPFS_API_URL=ipfs_node.api_url).start()
    content = os.urandom(700_000)
    doc, r = submit_file(api, env, content, public=True)
    assert r.status_code == 202, r.text
    assert r.json()["storage"]["ipfs"] == {"cid": cid_of_bytes(content), "sealed": False, "key": None}
    assert copies(api, doc)["ipfs"]["state"] == "stored"  # the first backend: before the 202
    read = api.get(f"/v1/documents/0x{doc.hex()}/content")
    assert read.status_code == 200 and read.content == content
    assert read.headers["x-docchain-storage-backend"] == "ipfs"
    stop(api)


def test_a_duplicate_reuses_the_sealed_copy(env: Env, ipfs_node: Kubo) -> None:
    """The same submission again (a retried request, a second --store): 200 with the existing submission, and
    no second sealed copy with a key of its own; the answer says the key went to the first one's answer."""
    api = storage_api(env, "ipfs-duplicate", "local,ipfs", DOCCHAIN_IPFS_API_URL=ipfs_node.api_url).start()
    content = os.urandom(50_000)
    doc = hashlib.sha256(content).digest()
    body = json.dumps({**new_signer().registration(env.domain, doc), "fileName": "twice.pdf"})

    def send() -> httpx.Response:
        return api.post("/v1/documents", files={"submission": (None, body), "file": ("twice.pdf", content)})

    first = send()
    assert first.status_code == 202, first.text
    cid = first.json()["storage"]["ipfs"]["cid"]
    for _ in range(2):
        again = send()
        assert again.status_code == 200, again.text
        storage = again.json()["storage"]
        assert storage["ipfs"] == {"cid": cid, "sealed": True, "key": None} and storage["keyGivenEarlier"] is True
    rows = api.get(f"/v1/documents/0x{doc.hex()}").json()["storage"]
    assert sorted(c["backend"] for c in rows) == ["ipfs", "local"], rows
    wait_copy(api, doc, "ipfs")
    read = api.get(
        f"/v1/documents/0x{doc.hex()}/content", headers={"X-Docchain-Key": first.json()["storage"]["ipfs"]["key"]}
    )
    assert read.status_code == 200 and read.content == content
    stop(api)


def test_readiness_follows_the_first_backend(env: Env, ipfs_node: Kubo) -> None:
    """kubo frozen while it is the first backend: /readyz turns 503 naming it (uploads would hang), then ready
    again once it answers; each backend's state is reported."""
    import signal

    api = storage_api(env, "ipfs-ready", "ipfs", DOCCHAIN_IPFS_API_URL=ipfs_node.api_url).start()
    assert api.get("/readyz").json()["storage"] == {"ipfs": "ok"}
    os.kill(ipfs_node.pid, signal.SIGSTOP)
    try:
        refused = poll(
            lambda: (r := api.get("/readyz")).status_code == 503 and r, 15, interval=0.5, what="/readyz to say 503"
        )
    finally:
        os.kill(ipfs_node.pid, signal.SIGCONT)
    problem = refused.json()
    assert problem["checks"]["storage"] == {"ipfs": "no answer within 2 s"} and "storage ipfs" in problem["detail"]
    poll(lambda: api.get("/readyz").status_code == 200, 15, interval=0.5, what="/readyz ready again")
    stop(api)
