"""The local backend beyond the shared contract: its on-disk layout, what an interrupted write leaves, bounded
memory, an unusable root, and the helpers the download route still calls."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from docchain.api.storage.base import BackendUnavailable, NotStored, Placement
from docchain.api.storage.local import LocalStorage
from tests.storage import CutShort, Interrupted, MiB, PatternStream, document, full_scale, peak_rss_growth

MEMORY_BOUND = 32 * MiB


def test_layout_is_two_levels_of_the_hex_hash(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    data, doc_hash = document(10)
    placement = storage.put(doc_hash, io.BytesIO(data))
    name = doc_hash.hex()
    assert placement == Placement("local", name, 10)
    assert (tmp_path / name[:2] / name[2:4] / name).read_bytes() == data


def test_an_interrupted_upload_leaves_no_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    data, doc_hash = document(3 * MiB)
    with pytest.raises(Interrupted):
        storage.put(doc_hash, CutShort(data, 2 * MiB))  # type: ignore[arg-type]
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    assert not storage.exists(doc_hash)


def test_a_second_local_store_names_its_copies(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, name="archive")
    data, doc_hash = document(10)
    placement = storage.put(doc_hash, io.BytesIO(data))
    assert placement.backend == "archive"
    with pytest.raises(NotStored) as missing:
        LocalStorage(tmp_path / "other", name="archive").open(doc_hash, placement)
    assert missing.value.backend == "archive"


def test_missing_copy_is_not_stored_when_opened_not_when_read(tmp_path: Path) -> None:
    _, doc_hash = document(10)
    with pytest.raises(NotStored):
        LocalStorage(tmp_path).open(doc_hash)


def test_a_root_that_cannot_hold_files_is_unavailable(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "documents")
    (tmp_path / "documents").rmdir()
    (tmp_path / "documents").write_bytes(b"a file where the directory should be")
    with pytest.raises(BackendUnavailable) as down:
        storage.check()
    assert down.value.backend == "local" and str(tmp_path / "documents") in str(down.value)
    data, doc_hash = document(10)
    with pytest.raises(BackendUnavailable):
        storage.put(doc_hash, io.BytesIO(data))


@pytest.mark.parametrize(
    "size",
    [
        64 * MiB,
        pytest.param(1 << 30, marks=pytest.mark.skipif(not full_scale(), reason="1 GiB: RELIABILITY_SCALE=full")),
    ],
    ids=["64MiB", "1GiB"],
)
def test_store_and_fetch_grow_memory_by_at_most_32_mib(tmp_path: Path, size: int) -> None:
    storage = LocalStorage(tmp_path)
    doc_hash = PatternStream(size).sha256()
    with peak_rss_growth() as stored:
        placement = storage.put(doc_hash, PatternStream(size))  # type: ignore[arg-type]
    assert stored.bytes <= MEMORY_BOUND, f"storing {size} B grew the peak RSS by {stored.bytes / MiB:.1f} MiB"
    received = 0
    with peak_rss_growth() as fetched:
        for chunk in storage.open(doc_hash, placement):
            received += len(chunk)
    assert received == size
    assert fetched.bytes <= MEMORY_BOUND, f"fetching {size} B grew the peak RSS by {fetched.bytes / MiB:.1f} MiB"
