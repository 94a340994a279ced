"""``docchain get``: a stored document back, through the API (from whichever backend holds an intact copy)
or, with ``--ipfs-gateway``, from any IPFS gateway by the receipt's CID with no docchain service at all.

Whatever the source, the bytes are written under a temporary name beside the target and renamed into place
only once they hash to the document's SHA-256: a wrong or partial download leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from docchain.chain.receipt import Receipt, read_receipt
from docchain.chain.values import parse_hash32, to_hex
from docchain.client.context import CliContext
from docchain.client.errors import UsageError, VerificationFailed
from docchain.client.options import ForceOpt, command, new_app

app = new_app("Get a stored document back.")


@dataclass(frozen=True)
class Wanted:
    """What ``get`` was asked for: a document hash, and the receipt it came from (if one did)."""

    doc_hash: bytes
    receipt: Receipt | None

    @property
    def key(self) -> str | None:
        storage = None if self.receipt is None else self.receipt.storage
        return None if storage is None or storage.ipfs is None else storage.ipfs.key


def _wanted(target: str) -> Wanted:
    if target.startswith(("0x", "0X")) and not Path(target).exists():
        return Wanted(parse_hash32(target, "document hash"), None)
    path = Path(target)
    if not path.is_file():
        raise UsageError(f"{target} is neither a 0x SHA-256 nor a receipt file")
    receipt = read_receipt(path)
    return Wanted(receipt.doc_hash, receipt)


def _output(wanted: Wanted, output: Path | None, force: bool) -> Path:
    if output is None:
        name = None if wanted.receipt is None else wanted.receipt.file_name
        if not name or Path(name).name != name:
            raise UsageError("say where to write the document: -o FILE")
        output = Path(name)
    if output.exists() and not force:
        raise UsageError(f"{output} already exists; pass --force to replace it")
    if not output.resolve().parent.is_dir():
        raise UsageError(f"no such directory: {output.resolve().parent}")
    return output


@command(
    app,
    "get",
    globals_used=("api", "timeout", "retries"),
    examples_=[
        "docchain get 0x3a7b…e1 -o contract.pdf",
        "docchain get contract.pdf.docchain.json            # the receipt's file name, its IPFS key if sealed",
        "docchain get contract.pdf.docchain.json --ipfs-gateway https://ipfs.io -o copy.pdf",
        "docchain get 0x3a7b…e1 -o contract.pdf --json",
    ],
)
def get(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Argument(metavar="HASH|RECEIPT", help="The document's 0x SHA-256, or a receipt file of it.")
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            envvar="DOCCHAIN_OUTPUT",
            metavar="FILE",
            help="Where to write it [default with a RECEIPT: the document name it records].",
        ),
    ] = None,
    ipfs_gateway: Annotated[
        str | None,
        typer.Option(
            "--ipfs-gateway",
            envvar="DOCCHAIN_IPFS_GATEWAY",
            metavar="URL",
            help="Fetch by the receipt's CID from this IPFS gateway instead of the API (no docchain service).",
        ),
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Download a stored document and check that its SHA-256 is the document's.

    Through the API, the service reads it from the first backend holding an intact copy (local, S3,
    IPFS) and says which one served it; a RECEIPT brings the key of a sealed IPFS copy. With
    --ipfs-gateway the document comes from any IPFS gateway by the receipt's CID, opened with the
    receipt's key when sealed: a proof and its document then outlive the service.
    """
    c: CliContext = ctx.obj
    wanted = _wanted(target)
    target_path = _output(wanted, output, force)
    if ipfs_gateway is not None:
        size, source = _from_gateway(wanted, ipfs_gateway, target_path, force, c.timeout_s()), f"ipfs ({ipfs_gateway})"
    else:
        size, source = _from_api(c, wanted, target_path)
    doc = to_hex(wanted.doc_hash)
    c.out.emit({"docHash": doc, "path": str(target_path), "size": size, "source": source})
    c.out.say(f"wrote {target_path} ({size} bytes, SHA-256 checked), served by {source}")


def _from_api(c: CliContext, wanted: Wanted, output: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=output.resolve().parent, prefix=f".{output.name}.")
    source = "?"
    try:
        with (
            c.api_client() as client,
            os.fdopen(fd, "wb") as out,
            client.download(to_hex(wanted.doc_hash), wanted.key) as response,
        ):
            source = response.headers.get("x-docchain-storage-backend", "the API")
            for chunk in response.iter_bytes():
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if digest.digest() != wanted.doc_hash:
            raise VerificationFailed(
                f"the bytes {source} served hash to {to_hex(digest.digest())}, not {to_hex(wanted.doc_hash)}; "
                "nothing written"
            )
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return size, source


def _from_gateway(wanted: Wanted, gateway: str, output: Path, force: bool, timeout: float) -> int:
    from docchain.chain.gateway import fetch_from_gateway
    from docchain.chain.sealed import key_from_text

    storage = None if wanted.receipt is None else wanted.receipt.storage
    if storage is None or storage.ipfs is None:
        raise UsageError("--ipfs-gateway needs a receipt whose storage section names an IPFS copy (its CID)")
    copy = storage.ipfs
    if copy.sealed and copy.key is None:
        raise UsageError("the receipt's IPFS copy is sealed and the receipt holds no key to open it")
    key = None if copy.key is None else key_from_text(copy.key)
    fetched = fetch_from_gateway(gateway, copy.cid, wanted.doc_hash, key, output, overwrite=force, timeout=timeout)
    return fetched.size
