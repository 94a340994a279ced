"""``docchain submit`` and ``docchain revoke``: sign locally, then register or revoke through the API
(or, for ``submit --direct``, send the transaction yourself)."""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from docchain.chain.errors import InvalidInput
from docchain.chain.receipt import Private
from docchain.chain.values import ZERO32, parse_address, to_hex
from docchain.client import documents, receipts
from docchain.client.api_client import ApiClient
from docchain.client.context import CliContext
from docchain.client.errors import ApiError, CliError, ExitCode, UsageError
from docchain.client.options import (
    Anchoring,
    AnchoringOpt,
    ForceOpt,
    KeyOpt,
    PasswordFileOpt,
    RegistryOpt,
    WaitTimeoutOpt,
    command,
    new_app,
)
from docchain.client.output import short

T = TypeVar("T")
app = new_app("Sign and register documents, or revoke a signature.")


def _in_parallel(call: Callable[[int], T], count: int, one_done: Callable[[], None] = lambda: None) -> list[T]:
    """``call(0..count-1)`` on up to 8 threads, in order; ``one_done`` after each finishes.

    Daemon threads, not a ThreadPoolExecutor: on Ctrl-C the main thread leaves at once, while an executor
    (and the interpreter's exit, which joins its threads) would wait for every long-poll in flight, up to
    a minute, before the command could end with 130.
    """
    results: list[T | None] = [None] * count
    done: queue.Queue[tuple[int, BaseException | None]] = queue.Queue()
    pending = iter(range(count))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                index = next(pending, None)
            if index is None:
                return
            try:
                results[index] = call(index)
            except BaseException as exc:  # handed to the main thread, which raises it
                done.put((index, exc))
                return
            done.put((index, None))

    for _ in range(min(8, count)):
        threading.Thread(target=work, daemon=True).start()
    for _ in range(count):
        _, exc = done.get()
        if exc is not None:
            raise exc
        one_done()
    return results  # type: ignore[return-value]  # every slot is filled once all are done


def _submit_direct(
    c: CliContext,
    hashed: list[documents.HashedFile],
    key: Any,
    registry: str | None,
    metadata: dict[str, Any],
    wait_timeout: float,
    force: bool,
    openings: list[Private | None],
    supersedes: bytes,
) -> list[dict[str, Any]]:
    from docchain.chain.receipt import receipt_path
    from docchain.chain.registry import Registry
    from docchain.client import rpc as rpc_mod

    reg_addr = parse_address(registry, "--registry") if registry else None
    w3 = rpc_mod.connect(c.rpc_url(), c.timeout_s())  # the node answers before a password is asked
    address = rpc_mod.registry_address(w3, reg_addr, c.data_path)
    if supersedes != ZERO32 and not Registry(w3, address).record(supersedes, key.address).exists:
        _warn_supersede_ignored(c, key.address, supersedes)
    private = key.unlock()
    domain = Registry(w3, address).domain
    results = []
    for item, opening in zip(hashed, openings, strict=True):
        registration, signature = documents.sign_registration(
            domain, _signed_hash(item, opening), private, key.address, metadata=metadata, supersedes=supersedes
        )
        receipt = rpc_mod.submit_direct(
            w3,
            address,
            private,
            registration,
            signature,
            file_name=item.path.name,
            file_size=item.size,
            timeout=wait_timeout,
        )
        if opening is not None:
            receipt = receipts.with_private(receipt, opening)
        target = receipts.save(receipt, receipt_path(item.path), force)
        if opening is not None:
            receipts.settle_private(item.path, receipt)
        results.append(
            {
                **_row(item, opening, key.address),
                "state": "anchored",
                "txHash": to_hex(receipt.tx_hash),
                "blockNumber": receipt.block_number,
                "anchoring": "direct",
                "merkleRoot": None,
                "receipt": str(target),
            }
        )
    return results


def _has_registration(client: ApiClient, doc_hash: bytes, signer: str) -> bool:
    """Whether the API knows a registration of ``doc_hash`` by ``signer`` that has not failed (on chain or on its
    way there)."""
    try:
        document = client.document(to_hex(doc_hash))
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    return any(s.get("signer") == signer and s.get("state") != "failed" for s in document.get("signers", ()))


def _warn_supersede_ignored(c: CliContext, signer: str, old: bytes) -> None:
    """Verifiers count a supersede only from a signer of the old document (docs/protocol.md §13): the
    registration is still made, as the user asked, but they are told it will not say "superseded"."""
    c.out.warn(
        f"{signer} has no registration of {to_hex(old)}: verifiers ignore this supersede (only a signer of the "
        "old version can supersede it); submitting anyway"
    )


def _signed_hash(item: documents.HashedFile, opening: Private | None) -> bytes:
    """The docHash to sign: the file's SHA-256, or a private submission's commitment to it."""
    return item.doc_hash if opening is None else opening.commitment


def _row(item: documents.HashedFile, opening: Private | None, signer: str) -> dict[str, Any]:
    """A submitted file's row: a private one's docHash is its commitment, shown beside the file's SHA-256."""
    row: dict[str, Any] = {"file": str(item.path), "docHash": to_hex(_signed_hash(item, opening)), "signer": signer}
    if opening is not None:
        row.update(sha256=item.hex, private=True)
    return row


def _submit_via_api(
    c: CliContext,
    client: ApiClient,
    hashed: list[documents.HashedFile],
    key: Any,
    metadata: dict[str, Any],
    store: bool,
    public: bool,
    anchoring: Anchoring | None,
    wait: bool,
    wait_timeout: float,
    force: bool,
    openings: list[Private | None],
    supersedes: bytes,
) -> list[dict[str, Any]]:
    from docchain.chain.receipt import receipt_path

    domain = documents.domain_from_api(client.chain())  # the API answers before a password is asked
    if supersedes != ZERO32 and not _has_registration(client, supersedes, key.address):
        _warn_supersede_ignored(c, key.address, supersedes)
    private = key.unlock()
    signer = key.address
    signed = [
        documents.sign_registration(
            domain, _signed_hash(h, o), private, signer, metadata=metadata, supersedes=supersedes
        )
        for h, o in zip(hashed, openings, strict=True)
    ]

    def send(index: int) -> dict[str, Any]:
        registration, signature = signed[index]
        body: dict[str, Any] = {"registration": registration.to_json(), "signature": to_hex(signature)}
        if openings[index] is None:
            # a private submission tells the service nothing of the file: the receipt gets its name and size here
            body.update(fileName=hashed[index].path.name, fileSize=hashed[index].size)
        else:
            body["private"] = True
        if metadata:
            body["metadata"] = metadata
        if public:
            body["public"] = True
        if anchoring is not None:
            body["anchoring"] = anchoring.value
        return client.submit(body, hashed[index].path if store else None)

    accepted = _in_parallel(send, len(hashed))
    results = [
        {**_row(h, o, signer), "id": a.get("id"), "state": a.get("state")}
        for h, o, a in zip(hashed, openings, accepted, strict=True)
    ]
    storage = [receipts.storage_section(a.get("storage")) for a in accepted]
    # a sealed copy made by an earlier submission of the document: its key is in that one's receipt or output
    earlier = [bool((a.get("storage") or {}).get("keyGivenEarlier")) for a in accepted]
    for row, where, before in zip(results, storage, earlier, strict=True):
        if where is not None:
            row["storage"] = where.to_json()
        if before:
            row["keyGivenEarlier"] = True
    if not wait:
        # A document submitted before answers with its submission as it is now: show where it is on chain, and
        # with --anchoring, the mode it has (the first submission's, which a repeat does not change).
        asked = [r for r in results if r["id"] and (anchoring is not None or r["state"] in receipts.ANCHORED)]

        def status_of(index: int) -> dict[str, Any]:
            return client.submission(str(asked[index]["id"]))

        for row, state in zip(asked, _in_parallel(status_of, len(asked)), strict=True):
            row.update(
                txHash=state.get("txHash"),
                blockNumber=state.get("blockNumber"),
                anchoring=state.get("anchoring"),
                merkleRoot=state.get("merkleRoot"),
            )
        return results
    deadline = time.monotonic() + wait_timeout

    def finish(index: int) -> dict[str, Any]:
        row, item, opening = results[index], hashed[index], openings[index]
        state = client.wait_for(str(row["id"]), until=deadline)
        row.update(
            state=state.get("state"),
            txHash=state.get("txHash"),
            blockNumber=state.get("blockNumber"),
            error=state.get("error"),
            anchoring=state.get("anchoring"),
            merkleRoot=state.get("merkleRoot"),
        )
        if state.get("state") in receipts.ANCHORED:
            # The API answers a (document, signer) it has seen with the first submission, so after an
            # interrupted --wait the receipt carries that earlier signature: any of this key's is right.
            receipt = receipts.fetch(
                client,
                _signed_hash(item, opening),
                signer,
                file_name=item.path.name,
                file_size=item.size,
                private=opening,
            )
            # where the API stored the file, with the sealed copy's key it gave this run only
            receipt = dataclasses.replace(receipt, storage=storage[index])
            if earlier[index]:  # this answer has no key: a receipt saved before keeps the one it holds
                receipt = receipts.keep_storage(dataclasses.replace(receipt, storage=None), receipt_path(item.path))
                if receipt.storage is None:
                    receipt = dataclasses.replace(receipt, storage=storage[index])
            row["receipt"] = str(receipts.save(receipt, receipt_path(item.path), force))
            if opening is not None:
                receipts.settle_private(item.path, receipt)
        return row

    with c.out.waiting("waiting for the anchor", total=len(hashed)) as one_done:
        _in_parallel(finish, len(hashed), one_done)
    return results


@command(
    app,
    "submit",
    globals_used=("api", "rpc", "data_dir", "timeout", "retries"),
    examples_=[
        "docchain submit contract.pdf --wait",
        'docchain submit *.pdf --key alice --note "Q3" --store --wait --json',
        "docchain submit brochure.pdf --store --public --wait   # IPFS copy readable by anyone",
        "docchain submit *.pdf --anchoring merkle --wait   # one root for them all",
        "docchain submit offer.pdf --private --wait   # only a salted commitment on chain",
        "docchain submit report.pdf --direct --rpc http://127.0.0.1:8545",
        "docchain submit contract-v2.pdf --supersedes contract-v1.pdf --wait",
    ],
)
def submit(
    ctx: typer.Context,
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE...", help="Files to sign and register.", show_default=False)
    ],
    key: KeyOpt = None,
    password_file: PasswordFileOpt = None,
    store: Annotated[
        bool,
        typer.Option(
            "--store",
            envvar="DOCCHAIN_STORE",
            help="Upload the file so the API keeps it (in the backends the server's DOCCHAIN_STORAGE names; "
            "docchain get reads it back).",
        ),
    ] = False,
    public: Annotated[
        bool,
        typer.Option(
            "--public",
            envvar="DOCCHAIN_PUBLIC",
            help="With --store: keep the IPFS copy unencrypted, readable by anyone with its CID "
            "(default: sealed; its key goes into the receipt with --wait, else is printed once).",
        ),
    ] = False,
    note: Annotated[
        str | None,
        typer.Option(
            "--note", envvar="DOCCHAIN_NOTE", help="A note signed with the document (its hash goes on chain)."
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            "-w",
            envvar="DOCCHAIN_WAIT",
            help="Wait until anchored on chain and write FILE.docchain.json.",
        ),
    ] = False,
    wait_timeout: WaitTimeoutOpt = 120.0,
    direct: Annotated[
        bool,
        typer.Option(
            "--direct",
            envvar="DOCCHAIN_DIRECT",
            help="Send the transaction yourself via --rpc (you pay gas); no API.",
        ),
    ] = False,
    anchoring: AnchoringOpt = None,
    private_: Annotated[
        bool,
        typer.Option(
            "--private",
            envvar="DOCCHAIN_PRIVATE",
            help="Register a salted commitment, keccak256(sha256 || salt), in place of the file's SHA-256: the "
            "chain shows nothing a known file leads to, and verifying needs the receipt, which alone keeps the "
            "salt (in FILE.docchain.salt until the receipt is written).",
        ),
    ] = False,
    supersedes_opt: Annotated[
        str | None,
        typer.Option(
            "--supersedes",
            envvar="DOCCHAIN_SUPERSEDES",
            metavar="OLD",
            help="The document FILE replaces (a file, or its 0x SHA-256), signed with it: `docchain verify OLD` "
            "then says it is superseded, when you signed OLD too.",
        ),
    ] = None,
    registry: RegistryOpt = None,
    force: ForceOpt = False,
) -> None:
    """Hash FILE(s) locally, sign them with your key and register them on chain.

    The private key never leaves this machine: only the hash and the EIP-712 signature are sent.
    Several files are submitted concurrently. With --wait (or --direct), the receipt is written
    next to each file as FILE.docchain.json (never replacing one unless --force).

    Submitting a document again with the same key is safe: the API answers with the first
    submission, and --wait writes its receipt (as `docchain receipt FILE` does).

    With --supersedes OLD, the registration names OLD as the document FILE replaces. Verifiers say so
    only for a signer of OLD whose registration of FILE is not revoked: anyone can name any document,
    so a supersede by someone who never signed OLD is not shown.
    """
    c: CliContext = ctx.obj
    paths = documents.check_files(files)
    if wait or direct:
        receipts.check_targets(paths, force)
    if direct and store:
        raise UsageError("--store needs the API; it cannot be combined with --direct")
    if public and not store:
        raise UsageError("--public is about the stored copy: it needs --store")
    if private_ and store:
        raise UsageError("--private keeps the document from the service: it cannot be combined with --store")
    if direct and anchoring is Anchoring.MERKLE:
        raise UsageError(
            "--anchoring merkle needs the API, which puts many submissions in one tree; "
            "--direct registers a record of its own"
        )
    supersedes = ZERO32
    if supersedes_opt is not None:
        if len(paths) != 1:
            raise UsageError("--supersedes names the one document a single FILE replaces: give one FILE")
        try:
            supersedes, _ = documents.hash_or_file(supersedes_opt)
        except (UsageError, InvalidInput) as exc:
            raise UsageError(f"--supersedes: {exc}") from None
        if supersedes == ZERO32:
            raise UsageError("--supersedes: the zero hash names no document")
    metadata = documents.metadata_for(note)
    client = None if direct else c.api_client()
    signing = c.signing_key(key, password_file)
    hashed = documents.hash_files(paths, progress=None if c.json else c.out.err)
    if supersedes_opt is not None and hashed[0].doc_hash == supersedes:
        raise UsageError(f"{paths[0]} cannot supersede itself: --supersedes names the document it replaces")
    # the salts are on disk before anything is sent: an interrupted run can still complete its receipts
    openings = [receipts.open_private(h.path, h.doc_hash, force=force) if private_ else None for h in hashed]
    if client is None:
        results = _submit_direct(c, hashed, signing, registry, metadata, wait_timeout, force, openings, supersedes)
    else:
        with client:
            results = _submit_via_api(
                c,
                client,
                hashed,
                signing,
                metadata,
                store,
                public,
                anchoring,
                wait,
                wait_timeout,
                force,
                openings,
                supersedes,
            )

    failed = [r for r in results if r["state"] == "failed"]
    error = None
    if failed:
        error = CliError(
            f"{len(failed)} submission(s) failed: {failed[0].get('error') or 'see docchain status'}",
            ExitCode.UNAVAILABLE,
            details=results,
        )
    elif wait and any(r["state"] not in receipts.ANCHORED for r in results):
        error = CliError(
            f"not anchored within {wait_timeout:g}s; fetch the receipt later with `docchain receipt FILE --wait`",
            ExitCode.UNAVAILABLE,
            details=results,
        )
    if error is None:  # with --json, the rows of a failed run travel in the error object (stdout holds one)
        c.out.emit(results)
    c.out.table(
        f"signed by {signing.address}",
        ["file", "sha256", "state", "block", "tx"],
        [
            (
                Path(r["file"]).name,
                short(r.get("sha256", r["docHash"]), 4),
                r["state"],
                r.get("blockNumber"),
                short(r.get("txHash"), 4),
            )
            for r in results
        ],
    )
    for line in _anchoring_lines(results):
        c.out.say(line)
    for row in results:
        if anchoring is not None and row.get("anchoring") not in (None, anchoring.value):
            c.out.say(
                f"{Path(row['file']).name}: submitted before with {row['anchoring']} anchoring; "
                f"the first submission's mode is kept"
            )
    for row in results:
        if row.get("keyGivenEarlier"):
            cid = (row["storage"].get("ipfs") or {}).get("cid")
            c.out.say(
                f"{Path(row['file']).name}: already sealed on IPFS as {cid}; no new copy was made. Its key was "
                "given with the document's first submission: see that receipt (storage.ipfs.key) or that run's output"
            )
    sealed = [r for r in results if (r.get("storage", {}).get("ipfs") or {}).get("key")]
    if sealed and not wait:  # with --wait each receipt holds its key; otherwise this output is the only copy
        for row in sealed:
            ipfs = row["storage"]["ipfs"]
            c.out.say(f"{Path(row['file']).name}: sealed on IPFS as {ipfs['cid']}, key {ipfs['key']}")
        c.out.warn("the service keeps no IPFS key: keep these (or submit with --wait: the receipts hold them)")
    pending = [r for r in results if r.get("private") and not r.get("receipt")]
    for row in pending:
        c.out.say(
            f"{Path(row['file']).name}: private, registered as commitment {row['docHash']}; its salt is in "
            f"{receipts.salt_path(Path(row['file']))} until `docchain receipt {row['file']}` writes the receipt"
        )
    if any(r.get("private") for r in results):
        c.out.say("private: the chain holds a salted commitment; verifying needs the receipt (keep it)")
    written = [r["receipt"] for r in results if r.get("receipt")]
    if len(written) == 1:
        c.out.say(f"receipt written: {written[0]}")
    elif written:
        c.out.say(f"receipts written beside the {len(written)} files (FILE.docchain.json)")
    if error is not None:
        raise error


def _anchoring_lines(results: list[dict[str, Any]]) -> list[str]:
    """How the submitted files went on chain, one line per mode and Merkle root, below the table (a column of
    their own would not fit the table in 80 columns). Rows whose mode the API has not said are left out."""
    groups: dict[tuple[str, str | None], int] = {}
    for row in results:
        if row.get("anchoring"):
            key = (str(row["anchoring"]), row.get("merkleRoot"))
            groups[key] = groups.get(key, 0) + 1
    lines = []
    for (mode, root), count in groups.items():
        files = f"{count} file{'s' if count > 1 else ''}"
        if mode == "merkle":
            under = f"under root {root}" if root else "its tree not closed yet"
            lines.append(f"anchoring: merkle, {under} ({files})")
        else:
            lines.append(f"anchoring: {mode}, a record of its own on chain ({files})")
    return lines


@command(
    app,
    "revoke",
    globals_used=("api", "timeout", "retries"),
    examples_=["docchain revoke contract.pdf --key alice --wait", "docchain revoke 0x3a7b…e1 --json"],
)
def revoke(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="FILE|HASH", help="The document you signed, or its 0x SHA-256.")],
    key: KeyOpt = None,
    password_file: PasswordFileOpt = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            "-w",
            envvar="DOCCHAIN_WAIT",
            help="Wait until the revocation is on chain (exit 3 with the reason if the chain refuses it).",
        ),
    ] = False,
    wait_timeout: WaitTimeoutOpt = 120.0,
) -> None:
    """Revoke your signature of a document (a signed EIP-712 Revocation, relayed by the API)."""
    c: CliContext = ctx.obj
    doc_hash, _ = documents.hash_or_file(target)
    client = c.api_client()
    signing = c.signing_key(key, password_file)
    signer = signing.address
    with client:
        domain = documents.domain_from_api(client.chain())
        nonce = client.nonce(signer)
        revocation, signature = documents.sign_revocation(domain, doc_hash, signing.unlock(), signer, nonce)
        answer = client.revoke(revocation.to_json(), to_hex(signature))
        if wait:
            answer = _wait_revoked(client, answer, to_hex(doc_hash), signer, revocation.nonce, wait_timeout)
    c.out.emit(answer)
    c.out.say(f"revocation of {to_hex(doc_hash)} by {signer}: {answer.get('state')}")


def _wait_revoked(
    client: ApiClient, answer: dict[str, Any], doc: str, signer: str, nonce: int, wait_timeout: float
) -> dict[str, Any]:
    """Follow the revocation request (GET .../revocations/{signer}) until it is mined and indexed. One the
    relayer gave up on (the chain refused it) ends the wait with its error: exit 3."""
    deadline = time.monotonic() + wait_timeout
    while True:
        requests = client.revocations(doc, signer).get("revocations", [])
        mine: dict[str, Any] = next((r for r in requests if r.get("nonce") == nonce), {})
        if mine.get("state") == "failed":
            reason = mine.get("error") or "no reason given"
            raise CliError(f"the revocation of {doc} by {signer} failed: {reason}", ExitCode.UNAVAILABLE)
        if mine.get("state") == "revoked":  # mined; wait for the index too, so `docchain status` agrees at once
            signers = client.document(doc).get("signers", [])
            entry: dict[str, Any] = next((s for s in signers if s.get("signer") == signer), {})
            if entry.get("revokedAt"):
                return {**answer, "state": "revoked", "txHash": mine.get("txHash"), "revokedAt": entry["revokedAt"]}
        if time.monotonic() > deadline:
            raise CliError(f"the revocation was not on chain within {wait_timeout:g}s", ExitCode.UNAVAILABLE)
        time.sleep(0.25)  # no notification stream for revocations; a gentle poll
