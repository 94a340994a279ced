"""``GET /v1/envelopes/{id}/certificate.pdf`` and ``GET /v1/documents/{hash}/certificate.pdf``: the certificate of
completion of chain/certificate.py served as a PDF, which ``docchain verify --certificate`` checks line by line
against the node.

One module API over the session's anvil, whose envelopes contract was deployed beside the registry. A two-signer
ordered envelope is created and completed on chain (a funded dev account relays the signed request and
registrations); a second one is left open. Once its completion is as deep as the API's confirmations, the PDF is
kept: asked again it is the same bytes, until a signer's revocation (relayed by the API, indexed) adds its line.
A document with two completed envelopes (the second counting registrations made before it) has no one certificate:
its route answers 409 naming both, and the second's own certificate says when its signers registered.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from api_support import Api, Env, Signer, new_signer
from typer.testing import CliRunner
from web3 import HTTPProvider, Web3

from docchain.chain import envelopes
from docchain.chain import typed_data as td
from docchain.chain.envelopes_contract import Envelopes
from docchain.chain.registry import SignedRegistration
from docchain.chain.sender import TxSender
from docchain.chain.values import to_hex
from docchain.client.certificate_commands import read_text
from tests.conftest import DEV_KEYS
from tests.support import poll

CI_BACKEND = "sqlite"  # at CI size (tests/api/conftest.py); RELIABILITY_SCALE=full runs both
HOUR = 3600


@dataclass(frozen=True)
class Enveloped:
    doc_hash: bytes
    completed: bytes  # the completed envelope's id
    open: bytes  # an envelope of the same document still waiting for its second signer
    signers: tuple[Signer, Signer]


def _envelopes(e: Env) -> Envelopes:
    assert e.deployment.envelopes is not None, "the session's deployment has envelopes beside the registry"
    w3 = Web3(HTTPProvider(e.anvil.url))
    # not the API's relayer account, so the two never race for a nonce
    return Envelopes(w3, e.deployment.envelopes.address, TxSender(w3, DEV_KEYS[2]))


def _create(
    contract: Envelopes, doc_hash: bytes, signers: tuple[Signer, ...], requester: Signer | None = None
) -> bytes:
    requester = requester or new_signer()
    request = envelopes.EnvelopeRequest(
        doc_hash=doc_hash,
        requester=requester.address,
        signers=tuple(s.address for s in signers),
        ordered=True,
        deadline=0,
        salt=envelopes.new_salt(),
        request_deadline=int(time.time()) + HOUR,
    )
    contract.create(request, envelopes.sign(contract.domain, request, requester.key))
    return envelopes.envelope_id(contract.domain, request)


def _sign(e: Env, contract: Envelopes, envelope: bytes, signer: Signer, doc_hash: bytes) -> None:
    reg = td.Registration(doc_hash=doc_hash, signer=signer.address, deadline=int(time.time()) + HOUR)
    contract.sign(envelope, SignedRegistration(reg, td.sign(e.domain, reg, signer.key)))


@pytest.fixture(scope="module")
def enveloped(env: Env, api: Api) -> Enveloped:
    contract = _envelopes(env)
    doc_hash = hashlib.sha256(os.urandom(64)).digest()
    signers = (new_signer(), new_signer())
    completed = _create(contract, doc_hash, signers)
    for signer in signers:
        _sign(env, contract, completed, signer, doc_hash)
    waiting = _create(contract, doc_hash, (signers[0], new_signer()))
    _sign(env, contract, waiting, signers[0], doc_hash)
    assert contract.state(completed).status == envelopes.Status.COMPLETED
    assert contract.state(waiting).status == envelopes.Status.OPEN
    env.anvil.mine(1)  # the completion two blocks deep: the API's confirmations (2), when a PDF is kept
    return Enveloped(doc_hash, completed, waiting, signers)


def _pdf(api: Api, path: str) -> bytes:
    r = api.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].startswith('attachment; filename="certificate-')
    return r.content


def _verify_certificate(env: Env, pdf: bytes, tmp: Path) -> dict[str, object]:
    """``docchain verify --certificate`` of ``pdf`` against the node, as a verifier with the deployments runs it."""
    from docchain.client.cli import app

    path = tmp / f"certificate-{hashlib.sha256(pdf).hexdigest()[:8]}.pdf"
    path.write_bytes(pdf)
    cli_env = {
        "DOCCHAIN_CONFIG_DIR": str(tmp / "config"),
        "DOCCHAIN_DATA_DIR": str(env.data_dir),
        "DOCCHAIN_TIMEOUT": "10",
    }
    result = CliRunner().invoke(
        app, ["verify", "--certificate", str(path), "--rpc", env.anvil.url, "--json"], env=cli_env
    )
    assert result.exit_code == 0, f"{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _lines(pdf: bytes, tmp: Path) -> list[str]:
    path = tmp / "read.pdf"
    path.write_bytes(pdf)
    return [line.strip() for line in read_text(path).splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("certificates")


def test_the_apis_certificate_passes_verify_certificate(env: Env, api: Api, enveloped: Enveloped, tmp: Path) -> None:
    pdf = _pdf(api, f"/v1/envelopes/{to_hex(enveloped.completed)}/certificate.pdf")
    checked = _verify_certificate(env, pdf, tmp)
    assert (checked["outcome"], checked["envelopeId"], checked["docHash"]) == (
        "valid",
        to_hex(enveloped.completed),
        to_hex(enveloped.doc_hash),
    )
    lines = _lines(pdf, tmp)
    assert f"Signer 1: {enveloped.signers[0].address}" in lines
    assert f"Signer 2: {enveloped.signers[1].address}" in lines
    # the issuer's lines: the document's name (none was submitted here: its hash) and this API's own page
    assert f"Document name (the issuer's, not on chain): {to_hex(enveloped.doc_hash)}" in lines
    assert lines[-1] == f"Verify page: {api.url}/#/doc/{to_hex(enveloped.doc_hash)}"


def test_a_completed_certificate_is_kept_and_the_documents_is_its_envelopes(api: Api, enveloped: Enveloped) -> None:
    """The PDF carries its drawing time: the same bytes again are the kept PDF, not a new drawing."""
    first = _pdf(api, f"/v1/envelopes/{to_hex(enveloped.completed)}/certificate.pdf")
    assert _pdf(api, f"/v1/envelopes/{to_hex(enveloped.completed)}/certificate.pdf") == first
    assert _pdf(api, f"/v1/documents/{to_hex(enveloped.doc_hash)}/certificate.pdf") == first


def test_a_revocation_draws_it_anew_with_its_line(env: Env, api: Api, enveloped: Enveloped, tmp: Path) -> None:
    path = f"/v1/envelopes/{to_hex(enveloped.completed)}/certificate.pdf"
    before = _pdf(api, path)
    first = enveloped.signers[0]
    r = api.post("/v1/revocations", json=first.revocation(env.domain, enveloped.doc_hash, 0))
    assert r.status_code == 202, r.text

    def revoked() -> bool:
        document = api.get(f"/v1/documents/{to_hex(enveloped.doc_hash)}").json()  # 404 until indexed
        return any(s["revokedAt"] for s in document.get("signers", ()) if s["signer"] == first.address)

    poll(revoked, 30, what="the revocation indexed")
    after = _pdf(api, path)
    assert after != before
    assert any(line.startswith("Signer 1 revoked: ") for line in _lines(after, tmp))
    assert _verify_certificate(env, after, tmp)["outcome"] == "valid"


@pytest.fixture(scope="module")
def closed(env: Env, enveloped: Enveloped) -> dict[str, tuple[str, str]]:
    """An envelope declined (by its first signer) and one voided: ``{state: (id, who)}``."""
    contract = _envelopes(env)
    signer, requester = new_signer(), new_signer()
    declined = _create(contract, enveloped.doc_hash, (signer,))
    decline = envelopes.Decline(declined, signer.address, int(time.time()) + HOUR)
    contract.decline(decline, envelopes.sign(contract.domain, decline, signer.key))
    voided = _create(contract, enveloped.doc_hash, (signer,), requester)
    void = envelopes.Void(voided, int(time.time()) + HOUR)
    contract.void(void, envelopes.sign(contract.domain, void, requester.key))
    return {"declined": (to_hex(declined), signer.address), "voided": (to_hex(voided), requester.address)}


@pytest.mark.parametrize(
    ("which", "status", "said"),
    [
        ("open", 409, "is open, not complete: 1 of 2 signer(s) have not signed"),
        ("declined", 409, "was declined by "),
        ("voided", 409, "was voided by its requester"),
        ("unknown", 404, "no envelope has the id"),
        ("malformed", 422, "envelope id"),
    ],
)
def test_no_certificate_for_an_envelope_not_complete(
    api: Api, enveloped: Enveloped, closed: dict[str, tuple[str, str]], which: str, status: int, said: str
) -> None:
    """An envelope that exists but is not complete is a 409 naming its state (and who declined); only an id no
    envelope has is a 404."""
    ids = {"open": to_hex(enveloped.open), "unknown": to_hex(os.urandom(32)), "malformed": "0x12"}
    ids.update({state: eid for state, (eid, _) in closed.items()})
    r = api.get(f"/v1/envelopes/{ids[which]}/certificate.pdf")
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert said in problem["detail"], problem
    if status == 409:
        assert (problem["type"].rsplit("/", 1)[1], problem["state"], problem["envelope"]) == (
            "envelope-not-complete",
            which,
            ids[which],
        )
        assert problem.get("declinedBy") == (closed["declined"][1] if which == "declined" else None)


def test_no_certificate_for_a_document_without_a_completed_envelope(api: Api) -> None:
    r = api.get(f"/v1/documents/{to_hex(os.urandom(32))}/certificate.pdf")
    assert r.status_code == 404, r.text
    assert "has no completed envelope (its envelopes: none)" in r.json()["detail"]


def test_a_document_with_two_completed_envelopes_is_409_naming_them(env: Env, api: Api, tmp: Path) -> None:
    contract = _envelopes(env)
    doc_hash = hashlib.sha256(os.urandom(64)).digest()
    signers = (new_signer(), new_signer())
    first = _create(contract, doc_hash, signers)
    for signer in signers:
        _sign(env, contract, first, signer, doc_hash)
    second = _create(contract, doc_hash, signers)  # another requester, counting the same registrations
    for signer in signers:
        contract.count_registration(second, signer.address)
    assert contract.state(second).status == envelopes.Status.COMPLETED
    r = api.get(f"/v1/documents/{to_hex(doc_hash)}/certificate.pdf")
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["envelopes"] == [to_hex(first), to_hex(second)]
    assert "has 2 completed envelopes" in r.json()["detail"]
    # each envelope's route stays unambiguous; the second says its registrations came first
    pdf = _pdf(api, f"/v1/envelopes/{to_hex(second)}/certificate.pdf")
    registered = [line for line in _lines(pdf, tmp) if " registered: " in line]
    assert len(registered) == 2 and all(line.endswith(", before the envelope was created") for line in registered)
    assert _verify_certificate(env, pdf, tmp)["outcome"] == "valid"
