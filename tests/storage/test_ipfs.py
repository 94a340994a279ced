"""The IPFS backend against a real kubo node (tests/storage/kubo.py): docchain's CIDs are kubo's, public and
sealed copies round-trip, nothing is pinned unless it matched, altered blocks and wrong keys are told apart, a
node that is down or missing a block answers at once; and a stranger's gateway fetch checks everything."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from docchain.api.storage.base import BackendUnavailable, HashMismatch, NotStored, Placement, StorageCorrupted
from docchain.api.storage.ipfs import (
    CidMismatch,
    IpfsConfig,
    IpfsStorage,
    SealedCopyNeedsKey,
    stage_sealed,
)
from docchain.chain.cid import ADD_OPTIONS, CHUNK_SIZE, MAX_LINKS, CidBuilder, cid_of_bytes
from docchain.chain.errors import InvalidInput, VerificationError
from docchain.chain.gateway import GatewayError, fetch_from_gateway
from docchain.chain.sealed import MAGIC, UnsealError, new_key, sealed_size
from tests.storage.kubo import Kubo
from tests.support import free_port

MiB = 1 << 20


def vector(size: int) -> bytes:
    """The bytes of tests/chain/test_cid.py's golden vectors: SHAKE-128 of the size, ``size`` bytes long."""
    return hashlib.shake_128(b"docchain cid vector %d" % size).digest(size)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@pytest.fixture(scope="module")
def ipfs(kubo: Kubo) -> Iterator[IpfsStorage]:
    storage = IpfsStorage(IpfsConfig(api_url=kubo.api_url, gateway_url=kubo.gateway_url, timeout=30))
    yield storage
    storage.close()


def pinned(kubo: Kubo, cid: str) -> bool:
    return cid in kubo.cli("pin", "ls", "--type=recursive", "--quiet")


def block_files(kubo: Kubo, content: bytes) -> list[Path]:
    """The datastore files holding a block whose bytes are ``content`` (flatfs: one file per block)."""
    return [path for path in (kubo.repo / "blocks").rglob("*.data") if path.read_bytes() == content]


# --- CIDs: docchain's computation equals kubo's -------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, MiB - 1, MiB, MiB + 1, 10 * MiB, MAX_LINKS * CHUNK_SIZE + 1],
    ids=lambda size: f"{size}B",
)
def test_cid_equals_kubo_add(kubo: Kubo, tmp_path: Path, size: int) -> None:
    """The last size needs a second tree level: one node more than a full root holds."""
    path = tmp_path / "doc"
    path.write_bytes(vector(size))
    flags = [f"--{name}={value}" for name, value in ADD_OPTIONS]
    printed = kubo.cli("add", "--quieter", "--only-hash", *flags, str(path)).strip()
    assert printed == cid_of_bytes(vector(size))


@pytest.mark.parametrize("size", [0, 1024, 1025, 3 * 1024, 3 * 1024 + 1, 9 * 1024 + 1, 27 * 1024 + 1, 100_000])
def test_deep_trees_equal_kubo_add(kubo: Kubo, size: int) -> None:
    """With 1 KiB chunks and 3 links a node, small files make trees four and five levels deep: the same layout
    rules as the defaults, cheaply."""
    data = vector(size)
    flags = [f"--{name}={value}" for name, value in ADD_OPTIONS if name not in ("chunker", "max-file-links")]
    printed = kubo.cli(
        "add", "--quieter", "--only-hash", "--chunker=size-1024", "--max-file-links=3", *flags, input=data
    ).strip()
    builder = CidBuilder(chunk_size=1024, max_links=3)
    builder.update(data)
    assert printed == builder.cid()


# --- public copies ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, MiB + 1], ids=lambda size: f"{size}B")
def test_public_round_trip(ipfs: IpfsStorage, kubo: Kubo, size: int) -> None:
    data = os.urandom(size)
    placement = ipfs.put(sha(data), io.BytesIO(data))
    assert placement == Placement("ipfs", cid_of_bytes(data), size, sealed=False)
    assert pinned(kubo, placement.locator) and ipfs.exists(sha(data), placement)
    assert b"".join(ipfs.open(sha(data), placement)) == data
    ipfs.put(sha(data), io.BytesIO(data))  # storing it again is not an error
    ipfs.remove(sha(data), placement)
    assert not pinned(kubo, placement.locator) and not ipfs.exists(sha(data), placement)
    ipfs.remove(sha(data), placement)  # nor is removing a copy that is gone


def test_wrong_hash_is_refused_and_nothing_pinned(ipfs: IpfsStorage, kubo: Kubo) -> None:
    data = os.urandom(3 * MiB)
    wrong = sha(b"another document")
    with pytest.raises(HashMismatch) as refused:
        ipfs.put(wrong, io.BytesIO(data))
    assert (refused.value.expected, refused.value.actual) == (wrong, sha(data))
    assert not pinned(kubo, cid_of_bytes(data))


def test_refused_put_never_unpins_an_existing_copy(ipfs: IpfsStorage, kubo: Kubo) -> None:
    data = os.urandom(1000)
    placement = ipfs.put(sha(data), io.BytesIO(data))
    with pytest.raises(HashMismatch):
        ipfs.put(sha(b"not these bytes"), io.BytesIO(data))
    assert pinned(kubo, placement.locator)


def test_node_with_other_import_settings_is_refused(kubo: Kubo) -> None:
    """The request reaches the real node with another chunker (as a node forcing its own settings would
    answer): its CID differs from docchain's, and the copy is not pinned."""

    def other_chunker(request: httpx.Request) -> None:
        if request.url.path.endswith("/add"):
            request.url = request.url.copy_set_param("chunker", "size-1024")

    client = httpx.Client(event_hooks={"request": [other_chunker]}, trust_env=False)
    storage = IpfsStorage(IpfsConfig(api_url=kubo.api_url), client=client)
    data = os.urandom(5000)
    with pytest.raises(CidMismatch) as refused:
        storage.put(sha(data), io.BytesIO(data))
    assert refused.value.expected == cid_of_bytes(data) and refused.value.actual != cid_of_bytes(data)
    assert "ipfs" in str(refused.value)
    assert not pinned(kubo, refused.value.actual) and not pinned(kubo, cid_of_bytes(data))
    client.close()


def test_altered_block_is_detected_on_read(ipfs: IpfsStorage, kubo: Kubo) -> None:
    data = os.urandom(5000)
    placement = ipfs.put(sha(data), io.BytesIO(data))
    (block,) = block_files(kubo, data)
    altered = b"X" + data[1:]
    block.write_bytes(altered)
    with pytest.raises(StorageCorrupted) as corrupted:
        b"".join(ipfs.open(sha(data), placement))
    assert corrupted.value.backend == "ipfs"
    assert (corrupted.value.expected, corrupted.value.actual) == (sha(data), sha(altered))


def test_missing_copy_is_not_stored_at_once(ipfs: IpfsStorage) -> None:
    data = os.urandom(100)
    placement = Placement("ipfs", cid_of_bytes(data), 100)
    with pytest.raises(NotStored):
        ipfs.open(sha(data), placement)
    assert not ipfs.exists(sha(data), placement)


def test_node_down_is_unavailable() -> None:
    storage = IpfsStorage(IpfsConfig(api_url=f"http://127.0.0.1:{free_port()}", timeout=5))
    data = b"doc"
    placement = Placement("ipfs", cid_of_bytes(data), 3)
    with pytest.raises(BackendUnavailable, match="ipfs: cannot reach"):
        storage.check()
    with pytest.raises(BackendUnavailable):
        storage.put(sha(data), io.BytesIO(data))
    with pytest.raises(BackendUnavailable):
        storage.open(sha(data), placement)
    with pytest.raises(BackendUnavailable):
        storage.exists(sha(data), placement)


def test_check_reaches_the_node(ipfs: IpfsStorage) -> None:
    ipfs.check()


# --- sealed copies ------------------------------------------------------------------------------------------


def test_sealed_round_trip(ipfs: IpfsStorage, kubo: Kubo, tmp_path: Path) -> None:
    data = os.urandom(MiB + 7)
    key = new_key()
    staged = stage_sealed(io.BytesIO(data), key, tmp_path / "spool", expected_hash=sha(data))
    assert staged.path == tmp_path / "spool" / f"{staged.cid}.sealed"
    assert (staged.doc_hash, staged.size, staged.sealed_size) == (sha(data), len(data), sealed_size(len(data)))
    assert os.listdir(tmp_path / "spool") == [staged.path.name]
    with open(staged.path, "rb") as stream:
        placement = ipfs.add_sealed(sha(data), stream, staged.cid)
    assert placement == Placement("ipfs", staged.cid, sealed_size(len(data)), sealed=True)
    assert pinned(kubo, staged.cid)
    on_ipfs = httpx.post(f"{kubo.api_url}/api/v0/cat", params={"arg": staged.cid}).content
    assert on_ipfs == staged.path.read_bytes()
    assert on_ipfs.startswith(MAGIC) and data[:64] not in on_ipfs
    assert b"".join(ipfs.open(sha(data), placement, key=key)) == data
    with pytest.raises(SealedCopyNeedsKey):
        ipfs.open(sha(data), placement)
    with pytest.raises(UnsealError):
        b"".join(ipfs.open(sha(data), placement, key=new_key()))


def test_staging_refuses_a_wrong_hash_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(HashMismatch):
        stage_sealed(io.BytesIO(b"the document"), new_key(), tmp_path, expected_hash=sha(b"another"))
    assert os.listdir(tmp_path) == []


def test_altered_staging_file_is_refused(ipfs: IpfsStorage, kubo: Kubo, tmp_path: Path) -> None:
    data = os.urandom(2000)
    staged = stage_sealed(io.BytesIO(data), new_key(), tmp_path)
    sealed = bytearray(staged.path.read_bytes())
    sealed[100] ^= 1
    with pytest.raises(CidMismatch, match=f"CID {cid_of_bytes(bytes(sealed))}, expected {staged.cid}"):
        ipfs.add_sealed(sha(data), io.BytesIO(bytes(sealed)), staged.cid)
    assert not pinned(kubo, staged.cid) and not pinned(kubo, cid_of_bytes(bytes(sealed)))


def test_altered_sealed_block_is_corruption_not_a_wrong_key(ipfs: IpfsStorage, kubo: Kubo, tmp_path: Path) -> None:
    data = os.urandom(3000)
    key = new_key()
    staged = stage_sealed(io.BytesIO(data), key, tmp_path)
    with open(staged.path, "rb") as stream:
        placement = ipfs.add_sealed(sha(data), stream, staged.cid)
    (block,) = block_files(kubo, staged.path.read_bytes())
    altered = bytearray(block.read_bytes())
    altered[50] ^= 1
    block.write_bytes(bytes(altered))
    with pytest.raises(StorageCorrupted) as corrupted:
        b"".join(ipfs.open(sha(data), placement, key=key))
    assert corrupted.value.backend == "ipfs" and corrupted.value.expected == sha(data)


# --- gateway fetch ------------------------------------------------------------------------------------------


def test_gateway_fetch_public_and_sealed(ipfs: IpfsStorage, kubo: Kubo, tmp_path: Path) -> None:
    data = os.urandom(2 * MiB + 3)
    public = ipfs.put(sha(data), io.BytesIO(data))
    fetched = fetch_from_gateway(kubo.gateway_url, public.locator, sha(data), None, tmp_path / "public.bin")
    assert (tmp_path / "public.bin").read_bytes() == data
    assert (fetched.size, fetched.cid, fetched.sealed) == (len(data), public.locator, False)

    key = new_key()
    staged = stage_sealed(io.BytesIO(data), key, tmp_path / "spool")
    with open(staged.path, "rb") as stream:
        ipfs.add_sealed(sha(data), stream, staged.cid)
    fetched = fetch_from_gateway(kubo.gateway_url, staged.cid, sha(data), key, tmp_path / "sealed.bin")
    assert (tmp_path / "sealed.bin").read_bytes() == data and fetched.sealed


def test_gateway_fetch_refusals_leave_no_file(ipfs: IpfsStorage, kubo: Kubo, tmp_path: Path) -> None:
    data = os.urandom(5000)
    key = new_key()
    staged = stage_sealed(io.BytesIO(data), key, tmp_path / "spool")
    with open(staged.path, "rb") as stream:
        ipfs.add_sealed(sha(data), stream, staged.cid)
    out = tmp_path / "out" / "doc.pdf"
    out.parent.mkdir()
    with pytest.raises(UnsealError):
        fetch_from_gateway(kubo.gateway_url, staged.cid, sha(data), new_key(), out)
    with pytest.raises(VerificationError, match="hashes to"):
        fetch_from_gateway(kubo.gateway_url, staged.cid, sha(b"another document"), key, out)
    with pytest.raises(UnsealError, match="sealed copy: opening it needs the document's key"):
        fetch_from_gateway(kubo.gateway_url, staged.cid, sha(data), None, out)
    with pytest.raises(GatewayError):
        fetch_from_gateway(f"http://127.0.0.1:{free_port()}", staged.cid, sha(data), key, out)
    with pytest.raises(InvalidInput, match="not a CID"):
        fetch_from_gateway(kubo.gateway_url, "not-a-cid", sha(data), key, out)
    assert os.listdir(out.parent) == []
    out.write_bytes(b"mine")
    with pytest.raises(InvalidInput, match="exists"):
        fetch_from_gateway(kubo.gateway_url, staged.cid, sha(data), key, out)
    assert out.read_bytes() == b"mine"


def test_gateway_serving_other_bytes_is_caught(ipfs: IpfsStorage, kubo: Kubo, tmp_path: Path) -> None:
    data = os.urandom(4000)
    placement = ipfs.put(sha(data), io.BytesIO(data))
    (block,) = block_files(kubo, data)
    block.write_bytes(b"Y" + data[1:])
    with pytest.raises(VerificationError, match=f"not {placement.locator}"):
        fetch_from_gateway(kubo.gateway_url, placement.locator, sha(data), None, tmp_path / "doc")
    assert not (tmp_path / "doc").exists()


# --- memory -------------------------------------------------------------------------------------------------


def _peak_rss_growth(action: Callable[[], None]) -> int:
    """Bytes the process's peak RSS grows by while ``action()`` runs (Linux: the peak is reset first)."""
    Path("/proc/self/clear_refs").write_text("5")
    before = _status("VmRSS")
    action()
    return _status("VmHWM") - before


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/self/status")


@pytest.mark.parametrize(
    "size",
    [
        64 * MiB,
        pytest.param(
            1024 * MiB,
            marks=pytest.mark.skipif(
                os.environ.get("RELIABILITY_SCALE") != "full", reason="1 GiB: RELIABILITY_SCALE=full"
            ),
        ),
    ],
    ids=lambda size: f"{size // MiB}MiB",
)
def test_store_and_fetch_in_bounded_memory(ipfs: IpfsStorage, tmp_path: Path, size: int) -> None:
    """Storing and fetching grow the peak RSS by at most 32 MiB whatever the size (issue 21)."""
    path = tmp_path / "big"
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for _ in range(size // MiB):
            block = os.urandom(MiB)
            digest.update(block)
            out.write(block)
    doc_hash = digest.digest()
    placements: list[Placement] = []

    def store() -> None:
        with open(path, "rb") as stream:
            placements.append(ipfs.put(doc_hash, stream))

    def fetch() -> None:
        fetched = hashlib.sha256()
        for chunk in ipfs.open(doc_hash, placements[0]):
            fetched.update(chunk)
        assert fetched.digest() == doc_hash

    assert _peak_rss_growth(store) <= 32 * MiB
    assert _peak_rss_growth(fetch) <= 32 * MiB
    ipfs.remove(doc_hash, placements[0])


# --- the node stays on this machine ---------------------------------------------------------------------------


def _socket_addresses(pid: int) -> list[tuple[str, str, str]]:
    """(protocol, local, remote) of every TCP/UDP socket process ``pid`` holds, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        lines = Path(f"/proc/{pid}/net/{protocol}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            if fields[9] in inodes:
                found.append((protocol, _address(fields[1]), _address(fields[2])))
    return found


def _address(hex_address: str) -> str:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return f"{'.'.join(str(b) for b in raw[::-1])}:{int(port, 16)}"
    words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]  # /proc prints IPv6 as four host-order words
    return f"[{ipaddress.IPv6Address(b''.join(words))}]:{int(port, 16)}"


def test_node_uses_loopback_only(ipfs: IpfsStorage, kubo: Kubo) -> None:
    """Whatever the tests did, the node holds no socket bound to or connected with another host."""
    data = os.urandom(1000)
    ipfs.put(sha(data), io.BytesIO(data))
    sockets = _socket_addresses(kubo.pid)
    assert sockets, "the node holds no socket at all: /proc was read wrong"
    for protocol, local, remote in sockets:
        local_host = ipaddress.ip_address(local.rsplit(":", 1)[0].strip("[]"))
        remote_host = ipaddress.ip_address(remote.rsplit(":", 1)[0].strip("[]"))
        assert local_host.is_loopback, (protocol, local, remote)
        assert remote_host.is_loopback or remote_host.is_unspecified, (protocol, local, remote)
