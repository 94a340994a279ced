"""docchain's CIDs are the ones kubo v0.43.1 printed for the same bytes (`ipfs add` with chain/cid.py's
ADD_OPTIONS), whatever pieces the bytes arrive in; tests/storage/test_ipfs.py checks the same sizes against a
running node, and deeper trees too. The vectors are also docs/protocol.md's, section 5."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docchain.chain.cid import ADD_OPTIONS, CHUNK_SIZE, MAX_LINKS, CidBuilder, cid_of_bytes, cid_of_stream, parse_cid
from docchain.chain.errors import InvalidInput

MiB = 1 << 20


def vector(size: int) -> bytes:
    """The document of ``size`` bytes the vectors are made of: SHAKE-128("docchain cid vector <size>")."""
    return hashlib.shake_128(b"docchain cid vector %d" % size).digest(size)


# (size, the CID `ipfs add --cid-version=1 --raw-leaves=true --chunker=size-262144 --hash=sha2-256
#  --trickle=false --inline=false --max-file-links=174` printed for vector(size))
KUBO_VECTORS = [
    (0, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
    (1, "bafkreifdddbeefw67yqg73vxh3234aadh6u4jj2nbolh6zjsujwklednhm"),
    (CHUNK_SIZE - 1, "bafkreiaqizmorjw2ljinhufrrroych6373zdmradk2wxugj7idul43erti"),
    (CHUNK_SIZE, "bafkreicv4bgogtejx7r6ylvrxfebg4lpgudp3twq2umoqrdiiyqbze3lua"),
    (CHUNK_SIZE + 1, "bafybeieyx2zx732xjzgogafrqpf5fza2glb7rnyyfkumsb2xbttaic7zgu"),
    (MiB - 1, "bafybeicmvv2tu4zfk7i477mc2uae2zrwbxl34gfr25ckd3sepfgaqzuwj4"),
    (MiB, "bafybeidrewh2seqncfuutuw7o3iqtj5ph3n3iw6lr7apu4pdv5rpm7bipm"),
    (MiB + 1, "bafybeih5klgswqehdgmscs5fxh4g4hnofpjnbo7svb5qaydp4n7fiflku4"),
    (10 * MiB, "bafybeigvqsj5chkcfpyqyzeytqavjqwk4cs4desbbvjg3zgvomsyxjfpkq"),
    (MAX_LINKS * CHUNK_SIZE, "bafybeicr5e43qy2ebvqn5sca7mxu6mk3gj77ygjfogdbky6jni7vtpjveq"),  # one full node
    (MAX_LINKS * CHUNK_SIZE + 1, "bafybeicy6qpyt67a7e2ilplxkabfvhw4roco34lkdkvplu4o6qrwu6qocu"),  # two levels
]

# The same with --chunker=size-1024 --max-file-links=3: trees up to five levels deep from 100 kB.
KUBO_DEEP_VECTORS = [
    (1024, "bafkreigzmitrdatzkw5ksijborz44s4a3j4vddg42y7hovdpnue6edrqj4"),
    (1025, "bafybeicsrytcoux37lwtinowlqdqlfdldzfweupw5hemmxzd6376gx7cpm"),
    (3 * 1024, "bafybeiaiuaakrhgf2aythr6edqukmkc6opg2m3dhoh6akqvqwqtgmg3bz4"),
    (3 * 1024 + 1, "bafybeigrkkdgr3kb7ouyu646isbhxkodahkppe7b5meerv5ky75dgat5um"),
    (9 * 1024 + 1, "bafybeiedfl4cicaihiyqfhz5tzbf26rzzgj4n2zvpf35ec3hod7kxcmwfe"),
    (27 * 1024 + 1, "bafybeihlvwdidpgctjf4lh3h6jqwsm22rce4gu7hyfqfctdoymfr3yngqq"),
    (100_000, "bafybeicjuhss4viz25exl3agg4k47kxvj744lnqvfgagr4r7pegtonanji"),
]


@pytest.mark.parametrize(("size", "cid"), KUBO_VECTORS, ids=[f"{size}B" for size, _ in KUBO_VECTORS])
def test_kubo_vectors(size: int, cid: str) -> None:
    assert cid_of_bytes(vector(size)) == cid
    assert cid_of_stream(io.BytesIO(vector(size))) == cid


@pytest.mark.parametrize(("size", "cid"), KUBO_DEEP_VECTORS, ids=[f"{size}B" for size, _ in KUBO_DEEP_VECTORS])
def test_kubo_deep_tree_vectors(size: int, cid: str) -> None:
    builder = CidBuilder(chunk_size=1024, max_links=3)
    builder.update(vector(size))
    assert builder.cid() == cid


def test_add_options_pin_every_parameter_of_the_cid() -> None:
    assert dict(ADD_OPTIONS) == {
        "cid-version": "1",
        "raw-leaves": "true",
        "chunker": "size-262144",
        "hash": "sha2-256",
        "trickle": "false",
        "inline": "false",
        "max-file-links": "174",
    }


@settings(max_examples=60, deadline=None)
@given(size=st.integers(min_value=0, max_value=40_000), cuts=st.lists(st.integers(min_value=0, max_value=40_000)))
def test_pieces_do_not_matter(size: int, cuts: list[int]) -> None:
    data = vector(size)
    whole = CidBuilder(chunk_size=1000, max_links=3)
    whole.update(data)
    pieces = CidBuilder(chunk_size=1000, max_links=3)
    edges = sorted({0, size, *(cut for cut in cuts if cut < size)})
    for start, end in zip(edges, edges[1:], strict=False):
        pieces.update(memoryview(data)[start:end])
    assert pieces.size == size
    assert pieces.cid() == whole.cid()


def test_builder_takes_no_bytes_after_the_cid() -> None:
    builder = CidBuilder()
    builder.update(b"doc")
    assert builder.cid() == builder.cid() == cid_of_bytes(b"doc")
    with pytest.raises(ValueError, match="after cid"):
        builder.update(b"more")


def test_parse_cid_normalises_to_base32() -> None:
    cid = cid_of_bytes(b"doc")
    assert parse_cid(f" {cid}\n") == cid
    assert parse_cid("zb2rhmy65F3REf8SZp7De11gxtECBGgUKaLdiDj7MCGCHxbDW") == KUBO_VECTORS[0][1]  # base58btc


SHA512_CID = (
    "bafkrgqgpqpqtk7xpxc67cvbikdlg3aah2yqoibilk4k5za7uveq5g3hjzzd5buj4lwc7fmh7qmmnfb365qxwhojrxvduc6ubuu4de6xze7nd4"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a CID"),
        ("bafy", "not a CID"),
        ("hello", "not a CID"),
        ("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH", "not a CIDv1"),  # CIDv0
        ("bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "not a CIDv1"),  # dag-cbor
        (SHA512_CID, "not a CIDv1"),
    ],
)
def test_parse_cid_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_cid(text)


def test_protocol_lists_these_vectors() -> None:
    """docs/protocol.md section 5 shows the same table, so a stranger checks against what this test checks."""
    protocol = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    section = protocol[protocol.index("### The CID (`chain/cid.py`)") : protocol.index("### The sealed format")]
    shown = re.findall(r"^\| ([\d,]+) \| `(\w+)` \|$", section, re.M)
    assert [(int(size.replace(",", "")), cid) for size, cid in shown] == KUBO_VECTORS
    command = " ".join(section.replace("\\\n", " ").split())  # the shell command, its continuation joined
    assert " ".join(f"--{name}={value}" for name, value in ADD_OPTIONS) in command


# multiformats registers an encoding the first time a process uses it, checking and then registering: two threads
# that both pass the check collide ("Raw encoding with name 'base32' already exists"). The API stages sealed copies
# in threads, and two submissions at once right after a start failed with a 500 (tests/reliability/test_storage.py).
# Here the registration is made slow, so that the threads always overlap in it.
RACE = """
import threading, time
from multiformats.multibase import raw
register = raw.register
raw.register = lambda *args, **kwargs: (time.sleep(0.05), register(*args, **kwargs))[1]
from docchain.chain.cid import cid_of_bytes
errors = []
def work(i):
    try:
        cid_of_bytes(bytes([i]))
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(errors)
"""


def test_first_cids_of_a_process_in_threads_at_once() -> None:
    done = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"CIDs failed in threads: {done.stdout}"
