"""``docchain certificate`` and ``docchain verify --certificate`` against a real anvil, the envelopes deployed
beside the registry as ``docchain up`` deploys them.

One two-signer ordered envelope (alice requests, bob then carol sign) is completed from the CLI and its
certificate written once; the checks then read that PDF: its text lines equal the chain's data (read here with
web3 and ``envelope status``, formatted independently of chain/certificate.py), its QR code is the verify URL's,
it renders to PNG, and every line edited in turn (the PDF drawn again with that one line changed) fails
``verify --certificate`` naming that line, the two lines that are the issuer's aside. An envelope still open has no
certificate.

Then mallory requests an envelope of the same document naming bob and carol and counts their registrations: the
document has two completed envelopes, so ``docchain certificate`` asks which; mallory's certificate says both
registrations came before her envelope was created, a line ``verify --certificate`` checks as every other; and a
pinned registry or envelopes contract that is not the certificate's fails it at that line.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from docchain.chain import deploy
from docchain.chain.certificate_pdf import QR_BORDER, QR_ERROR, render
from docchain.client.certificate_commands import read_text
from docchain.client.errors import ExitCode
from tests.client.cli_stack import FundedCli, funded_cli

PASSWORD = "certificate password"
PAGE = "https://docchain.example"
LINES = 22  # the title, the note, 11 lines of the envelope, 3 per signer, 3 of its completion and page


@dataclass(frozen=True)
class Completed:
    """The completed envelope, as the CLI reported it, and its certificate."""

    doc: str
    created: dict[str, Any]
    status: dict[str, Any]
    pdf: Path
    lines: tuple[str, ...]


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FundedCli]:
    with funded_cli(tmp_path_factory.mktemp("certificate"), PASSWORD, ("alice", "bob", "carol", "mallory")) as c:
        yield c


@pytest.fixture(scope="module")
def completed(cli: FundedCli) -> Completed:
    doc = cli.doc("deal.txt")
    signers = ("--signer", cli.addresses["bob"], "--signer", cli.addresses["carol"])
    created = cli.json("envelope", "create", doc, *signers, "--ordered", "--key", "alice")
    cli.json("envelope", "sign", doc, "--key", "bob")
    assert (
        cli.json("envelope", "sign", doc, "--key", "carol", "--force")["completed"] is True
    )  # bob's receipt is beside it
    status = cli.json("envelope", "status", doc)
    pdf = cli.work / "deal.certificate.pdf"
    made = cli.json("certificate", doc, "-o", str(pdf), "--page", PAGE)
    lines = tuple(line.strip() for line in read_text(pdf).splitlines() if line.strip())
    assert made["lines"] == list(lines)
    return Completed(doc, created, status, pdf, lines)


def _utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def test_the_certificate_says_what_the_chain_holds(cli: FundedCli, completed: Completed) -> None:
    w3 = Web3(Web3.HTTPProvider(cli.node.rpc_url))
    recorded = deploy.read_all(cli.data_dir)[31337]
    assert recorded.envelopes is not None
    status = completed.status

    def at(block: int) -> str:
        return f"block {block}, {_utc(int(w3.eth.get_block(block)['timestamp']))}"

    signer_lines = []
    for row in status["signers"]:
        n = row["position"]
        # the registration's transaction is the registry's Registered event's, read here with web3
        receipt = w3.eth.get_transaction_receipt(row["txHash"])
        registered = [log for log in receipt["logs"] if log["address"] == recorded.address]
        assert len(registered) == 1 and registered[0]["topics"][2][-20:] == bytes.fromhex(row["signer"][2:])
        signer_lines += [
            f"Signer {n}: {row['signer']}",
            f"Signer {n} registered: {at(row['blockNumber'])}",
            f"Signer {n} transaction: {row['txHash']}",
        ]
        assert row["signedAt"] == w3.eth.get_block(row["blockNumber"])["timestamp"]
    assert [r["signer"] for r in status["signers"]] == [cli.addresses["bob"], cli.addresses["carol"]]
    assert list(completed.lines) == [
        "docchain certificate of completion",
        "Each line below is read from the chain. Check them all with: docchain verify --certificate FILE --rpc URL",
        "Document name (the issuer's, not on chain): deal.txt",
        f"Document SHA-256: {status['docHash']}",
        "Chain id: 31337",
        f"Registry: {recorded.address}",
        f"Envelopes contract: {recorded.envelopes.address}",
        f"Envelope id: {completed.created['id']}",
        f"Requested by: {cli.addresses['alice']}",
        f"Created: {at(status['created']['blockNumber'])}",
        f"Creation transaction: {status['created']['txHash']}",
        "Signing order: as listed, each after the one before",
        "Deadline: none",
        *signer_lines,
        f"Completed: {at(status['completed']['blockNumber'])}",
        f"Completion transaction: {status['completed']['txHash']}",
        f"Verify page: {PAGE}/#/doc/{status['docHash']}",
    ]
    assert len(completed.lines) == LINES


def test_the_qr_code_holds_the_verify_url(completed: Completed) -> None:
    import segno
    from pypdf import PdfReader

    url = f"{PAGE}/#/doc/{completed.status['docHash']}"
    expected = segno.make(url, error=QR_ERROR)
    [drawn] = PdfReader(completed.pdf).pages[0].images
    image = drawn.image
    assert image is not None
    pixels = image.convert("L")
    width, height = pixels.size
    modules = expected.symbol_size(scale=1, border=QR_BORDER)[0]
    assert width == height and width % modules == 0
    scale = width // modules
    read = tuple(
        tuple(
            pixels.getpixel(((QR_BORDER + x) * scale + scale // 2, (QR_BORDER + y) * scale + scale // 2)) < 128  # type: ignore[operator]
            for x in range(len(expected.matrix))
        )
        for y in range(len(expected.matrix))
    )
    assert read == tuple(tuple(bool(v) for v in row) for row in expected.matrix)
    # another payload's code differs: the comparison can fail
    assert read != tuple(tuple(bool(v) for v in row) for row in segno.make(url + "0", error=QR_ERROR).matrix)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:  # .ci/run installs them (Debian's poppler-utils and zbar-tools)
        pytest.skip(f"{name} is not installed")
    return path


def test_the_certificate_renders_to_png_and_its_text_and_qr_code_read_back(
    completed: Completed, tmp_path: Path
) -> None:
    """As a reader would check it, with other programs than the ones that wrote and verify it: poppler renders the
    page to PNG and extracts its text, zbar decodes the QR code from the rendered pixels."""
    subprocess.run(
        [_tool("pdftoppm"), "-png", "-r", "150", "-singlefile", completed.pdf, tmp_path / "page"], check=True
    )
    png = tmp_path / "page.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = subprocess.run(
        [_tool("pdftotext"), "-layout", completed.pdf, "-"], check=True, capture_output=True, text=True
    ).stdout
    assert [line.strip() for line in text.splitlines() if line.strip()] == list(completed.lines)
    decoded = subprocess.run(
        [_tool("zbarimg"), "--quiet", "--raw", png], check=True, capture_output=True, text=True
    ).stdout.strip()
    page_url = completed.lines[-1].split(": ", 1)[1]
    [doc_hash] = [line.split(": ", 1)[1] for line in completed.lines if line.startswith("Document SHA-256: ")]
    assert decoded == page_url and decoded.endswith("/#/doc/" + doc_hash), (decoded, page_url)


def test_the_certificate_verifies(cli: FundedCli, completed: Completed) -> None:
    verdict = cli.json("verify", "--certificate", str(completed.pdf))
    assert verdict["outcome"] == "valid" and verdict["linesChecked"] == LINES
    assert verdict["envelopeId"] == completed.created["id"]
    # with the document, its hash must be the certificate's
    cli.run("verify", completed.doc, "--certificate", str(completed.pdf))
    other = cli.doc("other.txt")
    failed = cli.run("verify", other, "--certificate", str(completed.pdf), code=ExitCode.VERIFICATION_FAILED)
    assert "is not the certificate's" in failed.stderr


def _edited(line: str) -> str:
    """``line`` with its last digit or hex digit changed, else a word added."""
    for i in range(len(line) - 1, -1, -1):
        ch = line[i]
        if ch in "0123456789abcdefABCDEF" and (ch.isdigit() or line[:i].rfind("0x") != -1):
            new = "0123456789abcdef"[(int(ch, 16) + 1) % (10 if ch.isdigit() else 16)]
            return line[:i] + (new.upper() if ch.isupper() else new) + line[i + 1 :]
    return line + " indeed"


def _write(lines: list[str], url: str, path: Path) -> Path:
    path.write_bytes(render(lines, url))
    return path


@pytest.mark.parametrize("index", range(LINES))
def test_a_certificate_edited_in_any_line_fails_at_that_line(
    cli: FundedCli, completed: Completed, tmp_path: Path, index: int
) -> None:
    lines = list(completed.lines)
    lines[index] = _edited(lines[index])
    assert lines[index] != completed.lines[index]
    url = completed.lines[-1].split(": ", 1)[1]
    pdf = _write(lines, url, tmp_path / "edited.pdf")
    if lines[index].startswith("Document name"):  # the issuer's own
        cli.run("verify", "--certificate", str(pdf))
        return
    failed = cli.json("verify", "--certificate", str(pdf), code=ExitCode.VERIFICATION_FAILED)
    message = failed["error"]["message"]
    assert f"line {index + 1} {lines[index]!r}" in message, message


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda lines: lines[:-4] + lines[-3:], "line 19 "),  # a signer's transaction line left out
        (lambda lines: [*lines, "Signer 3: 0x0000000000000000000000000000000000000001"], "line 23 "),
        (lambda lines: lines[:-1], "has no line 'Verify page'"),
        (
            lambda lines: [
                *lines[:14],
                re.sub(r"block (\d+)", lambda m: f"block {int(m[1]) - 1}", lines[14]),
                *lines[15:],
            ],
            "line 15 ",
        ),
        (lambda lines: [*lines[:8], "Requested by: " + lines[16].split(": ")[1], *lines[9:]], "line 9 "),
    ],
    ids=["line-dropped", "line-added", "last-line-dropped", "block-number", "signer-as-requester"],
)
def test_a_certificate_with_lines_added_or_dropped_fails(
    cli: FundedCli, completed: Completed, tmp_path: Path, change: Any, said: str
) -> None:
    url = completed.lines[-1].split(": ", 1)[1]
    pdf = _write(change(list(completed.lines)), url, tmp_path / "changed.pdf")
    failed = cli.json("verify", "--certificate", str(pdf), code=ExitCode.VERIFICATION_FAILED)
    assert said in failed["error"]["message"]


def test_a_qr_code_that_opens_another_page_fails(cli: FundedCli, completed: Completed, tmp_path: Path) -> None:
    """Every text line as the chain says, the QR code another address: a reader who scans it would go elsewhere."""
    url = completed.lines[-1].split(": ", 1)[1]
    elsewhere = url.replace("http://", "http://evil.") if url.startswith("http://") else "https://evil.example/"
    pdf = _write(list(completed.lines), elsewhere, tmp_path / "qr.pdf")
    failed = cli.json("verify", "--certificate", str(pdf), code=ExitCode.VERIFICATION_FAILED)
    assert f"QR code does not hold {url}" in failed["error"]["message"]
    assert cli.json("verify", "--certificate", str(_write(list(completed.lines), url, tmp_path / "same.pdf")))


def test_the_page_address_is_the_issuers_and_its_document_path_is_checked(
    cli: FundedCli, completed: Completed, tmp_path: Path
) -> None:
    lines = list(completed.lines)
    lines[-1] = lines[-1].replace(PAGE, "http://127.0.0.1:8000")
    verdict = cli.json("verify", "--certificate", str(_write(lines, lines[-1][13:], tmp_path / "page.pdf")))
    assert verdict["issuers"] == {"documentName": "deal.txt", "page": "http://127.0.0.1:8000"}
    lines[-1] = lines[-1].replace("/#/doc/", "/#/verify/")
    failed = cli.json("verify", "--certificate", str(_write(lines, PAGE, tmp_path / "path.pdf")), code=1)
    assert f"line {LINES} " in failed["error"]["message"]


def test_an_open_envelope_has_no_certificate(cli: FundedCli) -> None:
    doc = cli.doc("open.txt")
    created = cli.json("envelope", "create", doc, "--signer", cli.addresses["bob"], "--key", "alice")
    out = cli.work / "open.pdf"
    refused = cli.run("certificate", doc, "-o", str(out), code=ExitCode.VERIFICATION_FAILED)
    assert f"has no completed envelope (its envelopes: {created['id']} open)" in refused.stderr
    by_id = cli.run("certificate", doc, "--id", created["id"], "-o", str(out), code=ExitCode.VERIFICATION_FAILED)
    assert "is open, not complete: 1 of 1 signer(s) have not signed" in by_id.stderr
    assert not out.exists()


def test_input_is_checked_before_the_chain(cli: FundedCli, completed: Completed) -> None:
    cli.run("certificate", completed.doc, "-o", str(completed.pdf), code=ExitCode.USAGE)  # exists: not overwritten
    fresh = str(cli.work / "fresh.pdf")
    cli.run("certificate", completed.doc, "-o", fresh, "--name", "Vertrag \u20ac", code=ExitCode.USAGE)
    cli.run("certificate", completed.doc, "-o", fresh, "--id", "0x12", code=ExitCode.USAGE)
    not_pdf = cli.work / "not.pdf"
    not_pdf.write_text("Chain id: 31337\n")
    refused = cli.run("verify", "--certificate", str(not_pdf), code=ExitCode.USAGE)
    # one line, pypdf's own warnings ("invalid pdf header", ...) kept out of it
    assert refused.stderr.strip().splitlines() == [
        f"error: {not_pdf} is not a readable PDF: Stream has ended unexpectedly"
    ]
    cli.run("verify", "--certificate", str(cli.work / "missing.pdf"), code=ExitCode.USAGE)
    cli.run("verify", code=ExitCode.USAGE)


def test_the_cli_start_imports_no_pdf_or_qr_library() -> None:
    code = "import sys, docchain.client.cli; print(sorted({'fpdf', 'segno', 'pypdf'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_sixteen_signers_with_a_revocation_read_back_over_two_pages(tmp_path: Path) -> None:
    from pypdf import PdfReader

    from docchain.chain.certificate import Certificate, Moment, SignerEntry

    signer = "0x6869A45c0B3F68919613d203150EFbB04d25B0bE"
    made = Certificate(
        document_name="Minutes 2026-11, committee",
        doc_hash=bytes(range(32)),
        chain_id=1,
        registry="0x5FbDB2315678afecb367f032d93F642f64180aa3",
        envelopes="0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
        envelope_id=bytes(range(32, 64)),
        requester=signer,
        ordered=False,
        deadline=1_800_000_000,
        created=Moment(3, 1_700_000_000, b"\x33" * 32),
        completed=Moment(40, 1_700_000_500, b"\x44" * 32),
        signers=tuple(
            SignerEntry(n, signer, Moment(3 + n, 1_700_000_000 + n, bytes([n]) * 32), 1_700_000_900 if n == 16 else 0)
            for n in range(1, 17)
        ),
        page=PAGE,
    )
    pdf = _write(list(made.text_lines()), made.verify_url, tmp_path / "sixteen.pdf")
    assert len(PdfReader(pdf).pages) == 2
    lines = [line.strip() for line in read_text(pdf).splitlines() if line.strip()]
    assert lines == list(made.text_lines())
    assert "Signer 16 revoked: 2023-11-14 22:28:20 UTC" in lines and "Deadline: 2027-01-15 08:00:00 UTC" in lines


# ---------------------------------------------------------------------------------------------- a second envelope


@dataclass(frozen=True)
class Swapped:
    """mallory's envelope of the completed document, completed with bob's and carol's earlier registrations."""

    id: str
    pdf: Path
    lines: tuple[str, ...]


@pytest.fixture(scope="module")
def swapped(cli: FundedCli, completed: Completed) -> Swapped:
    signers = ("--signer", cli.addresses["bob"], "--signer", cli.addresses["carol"])
    made = cli.json("envelope", "create", completed.doc, *signers, "--ordered", "--key", "mallory")
    for name in ("bob", "carol"):
        cli.json(
            "envelope", "count", completed.doc, "--id", made["id"], "--signer", cli.addresses[name], "--key", "mallory"
        )
    pdf = cli.work / "mallory.certificate.pdf"
    cli.json("certificate", completed.doc, "--requester", cli.addresses["mallory"], "-o", str(pdf), "--page", PAGE)
    lines = tuple(line.strip() for line in read_text(pdf).splitlines() if line.strip())
    return Swapped(made["id"], pdf, lines)


def test_a_document_with_two_completed_envelopes_needs_a_choice(
    cli: FundedCli, completed: Completed, swapped: Swapped
) -> None:
    out = cli.work / "which.pdf"
    refused = cli.run("certificate", completed.doc, "-o", str(out), code=ExitCode.USAGE)
    [line] = refused.stderr.strip().splitlines()
    assert f"{completed.created['id']} (requested by {cli.addresses['alice']})" in line
    assert f"{swapped.id} (requested by {cli.addresses['mallory']})" in line
    assert line.endswith("choose one with --id or --requester"), line
    assert not out.exists()
    alices = cli.json("certificate", completed.doc, "--requester", cli.addresses["alice"], "-o", str(out))
    assert alices["envelopeId"] == completed.created["id"]
    bobs = ("--requester", cli.addresses["bob"], "-o", str(cli.work / "b.pdf"))
    none = cli.run("certificate", completed.doc, *bobs, code=ExitCode.VERIFICATION_FAILED)
    assert "no completed envelope requested by" in none.stderr


def test_registrations_older_than_the_envelope_are_said_and_checked(
    cli: FundedCli, completed: Completed, swapped: Swapped, tmp_path: Path
) -> None:
    created = next(line for line in swapped.lines if line.startswith("Created: "))
    assert swapped.lines[8] == f"Requested by: {cli.addresses['mallory']}"
    registered = [line for line in swapped.lines if re.match(r"Signer \d registered: ", line)]
    assert len(registered) == 2
    for line in registered:
        assert line.endswith(", before the envelope was created"), line
        assert int(re.findall(r"block (\d+)", line)[0]) < int(re.findall(r"block (\d+)", created)[0])
    # alice's envelope was created before bob and carol signed: none of its lines says so
    assert not any("before the envelope" in line for line in completed.lines)
    assert cli.json("verify", "--certificate", str(swapped.pdf))["outcome"] == "valid"
    # the remark left out (or added to alice's certificate) fails verification at that line
    url = swapped.lines[-1].split(": ", 1)[1]
    index = swapped.lines.index(registered[0])
    cut = [*swapped.lines[:index], registered[0].split(", before")[0], *swapped.lines[index + 1 :]]
    failed = cli.json("verify", "--certificate", str(_write(cut, url, tmp_path / "cut.pdf")), code=1)
    assert f"line {index + 1} " in failed["error"]["message"]
    added = [
        line + ", before the envelope was created" if line.startswith("Signer 1 registered") else line
        for line in completed.lines
    ]
    failed = cli.json("verify", "--certificate", str(_write(added, url, tmp_path / "added.pdf")), code=1)
    assert f"line {added.index(next(x for x in added if 'before the' in x)) + 1} " in failed["error"]["message"]


def test_the_pinned_registry_and_envelopes_contract_are_the_certificates(cli: FundedCli, completed: Completed) -> None:
    recorded = deploy.read_all(cli.data_dir)[31337]
    assert recorded.envelopes is not None
    other = "0x000000000000000000000000000000000000dEaD"
    # an explicit --registry, as for a receipt
    failed = cli.json("verify", "--certificate", str(completed.pdf), "--registry", other, code=1)
    assert f"line 6 'Registry: {recorded.address}'" in failed["error"]["message"], failed
    assert cli.json("verify", "--certificate", str(completed.pdf), "--registry", recorded.address)["outcome"] == "valid"
    # the deployments the user's stack recorded: their envelopes contract is pinned beside the registry
    trusted = Path(cli.env["DOCCHAIN_CONFIG_DIR"]) / "deployments.json"
    assert not trusted.exists()
    try:
        moved = replace(recorded, envelopes=replace(recorded.envelopes, address=Web3.to_checksum_address(other)))
        deploy.record_in(trusted, moved)
        failed = cli.json("verify", "--certificate", str(completed.pdf), code=1)
        assert f"line 7 'Envelopes contract: {recorded.envelopes.address}'" in failed["error"]["message"]
        assert "(the local stack's deployments" in failed["error"]["message"]
        deploy.record_in(trusted, recorded)
        assert cli.json("verify", "--certificate", str(completed.pdf))["outcome"] == "valid"
    finally:
        trusted.unlink(missing_ok=True)
