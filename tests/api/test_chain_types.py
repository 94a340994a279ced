"""GET /v1/chain serves the EIP-712 pieces so that the two common library shapes take them as they are:
ethers v6 signs with ``signTypedData(domain, action.types, message)`` (and refuses a ``types`` holding
``EIP712Domain``), eth_account and wallets take the full form built from ``domainType`` + ``action.types``.
Signatures made by ethers from the served answer recover to the key in Python, its digests equal
chain/typed_data.py's, the contract's and eth_account's, and the API and the registry accept them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from typing import Any

import pytest
from api_support import ROOT, Api, Env, Signer, random_doc
from eth_account.messages import encode_typed_data

from docchain.chain import envelopes as env_mod
from docchain.chain import typed_data as td
from docchain.chain.hashing import keccak256
from docchain.chain.values import to_hex
from docchain.client.documents import domain_from_api
from tests.support import poll

# what /v1/chain answers does not depend on the database: one backend is enough
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PROTOCOL = ROOT / "docs" / "protocol.md"

# Signs each message with the served pieces exactly as a JavaScript client would; also tries the full form
# (EIP712Domain among the types), which is what the API served before and what ethers refuses.
SIGN_WITH_ETHERS = r"""
const { Wallet, TypedDataEncoder, version } = require("ethers");
let input = "";
process.stdin.on("data", chunk => { input += chunk; });
process.stdin.on("end", async () => {
  const { chain, key, messages } = JSON.parse(input);
  const { domain, domainType, actions } = chain.eip712;
  const wallet = new Wallet(key);
  const out = { version, address: wallet.address, signed: {} };
  for (const [action, message] of Object.entries(messages)) {
    const types = actions[action].types;
    out.signed[action] = {
      signature: await wallet.signTypedData(domain, types, message),
      digest: TypedDataEncoder.hash(domain, types, message),
      primaryType: TypedDataEncoder.getPrimaryType(types),
    };
  }
  try {
    const full = { EIP712Domain: domainType, ...actions.registration.types };
    await wallet.signTypedData(domain, full, messages.registration);
    out.fullFormRefused = null;
  } catch (err) {
    out.fullFormRefused = err.shortMessage || err.message;
  }
  process.stdout.write(JSON.stringify(out));
});
"""


def ethers_sign(chain: dict[str, Any], key: bytes, messages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "node (20) is needed: package.json's tools run on it"
    assert (ROOT / "node_modules" / "ethers").is_dir(), "ethers is missing: run `npm install` (package.json pins it)"
    payload = json.dumps({"chain": chain, "key": to_hex(key), "messages": messages})
    # cwd = the repository: require() resolves ethers from its node_modules
    done = subprocess.run(
        [node, "-e", SIGN_WITH_ETHERS], input=payload, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def full_form(eip712: dict[str, Any], action: str, message: dict[str, Any]) -> dict[str, Any]:
    """The eth_signTypedData_v4 / eth_account form, built from the served pieces as docs/protocol.md says."""
    served = eip712["actions"][action]
    return {
        "types": {"EIP712Domain": eip712["domainType"], **served["types"]},
        "primaryType": served["primaryType"],
        "domain": eip712["domain"],
        "message": message,
    }


def eth_account_digest(full: dict[str, Any]) -> bytes:
    signable = encode_typed_data(full_message=full)
    return keccak256(b"\x19" + signable.version + signable.header + signable.body)  # EIP-191, version 0x01


def documented_answer() -> dict[str, Any]:
    """The example answer docs/protocol.md shows, in the fenced block after ``<!-- chain-eip712 ... -->``."""
    text = PROTOCOL.read_text()
    start = text.index("<!-- chain-eip712")
    block = text[start:].split("```json\n", 1)[1].split("\n```", 1)[0]
    answer: dict[str, Any] = json.loads(block)
    return answer


@pytest.fixture(scope="module")
def chain(api: Api) -> dict[str, Any]:
    answer = api.get("/v1/chain")
    assert answer.status_code == 200, answer.text
    info: dict[str, Any] = answer.json()
    return info


def test_the_served_types_are_typed_datas_one_definition(chain: dict[str, Any], env: Env) -> None:
    eip712 = chain["eip712"]
    assert eip712["domain"] == env.domain.to_json()
    assert eip712["domainType"] == td.EIP712_DOMAIN_TYPE
    assert env.deployment.envelopes is not None
    envelopes = env_mod.domain(env.domain.chain_id, env.deployment.envelopes.address).to_json()
    assert eip712["actions"] == {
        "registration": {"primaryType": "Registration", "types": {"Registration": td.Registration.TYPE}},
        "revocation": {"primaryType": "Revocation", "types": {"Revocation": td.Revocation.TYPE}},
        **{
            action: {"primaryType": t.PRIMARY_TYPE, "types": {t.PRIMARY_TYPE: t.TYPE}, "domain": envelopes}
            for action, t in (
                ("envelopeRequest", env_mod.EnvelopeRequest),
                ("decline", env_mod.Decline),
                ("void", env_mod.Void),
            )
        },
    }
    assert "types" not in chain and "domain" not in chain  # one place for each piece
    # the CLI signs in the served domain (not one it rebuilds from chainId and contract)
    assert domain_from_api({"eip712": eip712}) == env.domain


def test_docs_show_what_is_served(chain: dict[str, Any]) -> None:
    documented = documented_answer()
    assert set(documented) == set(chain)
    eip712 = documented["eip712"]
    # the worked example's domains, not this test node's contracts; all else exactly as served
    assert td.Domain.from_json(eip712["domain"]) == td.Domain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
    envelopes = env_mod.domain(31337, "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512").to_json()
    served = json.loads(json.dumps(chain["eip712"]))
    served["domain"] = eip712["domain"]
    for action in ("envelopeRequest", "decline", "void"):
        assert eip712["actions"][action]["domain"] == envelopes, action
        served["actions"][action]["domain"] = envelopes
    assert served == eip712


def test_the_openapi_schema_describes_the_answer(api: Api, chain: dict[str, Any]) -> None:
    spec = api.get("/openapi.json").json()
    ref = spec["paths"]["/v1/chain"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert set(schema["properties"]) == set(chain)
    assert set(spec["components"]["schemas"]["Eip712Info"]["properties"]) == set(chain["eip712"])


def test_ethers_signs_with_the_served_pieces_as_they_are(chain: dict[str, Any], env: Env, api: Api) -> None:
    signer = Signer(os.urandom(32))  # a fresh key: its nonce and records are this test's alone
    _, doc_hash = random_doc()
    domain = td.Domain.from_json(chain["eip712"]["domain"])
    nonce = api.get(f"/v1/nonces/{signer.address}").json()["nonce"]
    deadline = int(time.time()) + 3600
    registration = td.Registration(doc_hash=doc_hash, signer=signer.address, deadline=deadline)
    revocation = td.Revocation(doc_hash=doc_hash, signer=signer.address, nonce=nonce, deadline=deadline)
    messages = {"registration": registration.to_json(), "revocation": revocation.to_json()}

    out = ethers_sign(chain, signer.key, messages)
    assert out["version"].startswith("6.") and out["address"] == signer.address
    assert out["fullFormRefused"] and "EIP712Domain" in out["fullFormRefused"], out["fullFormRefused"]

    for action, message in (("registration", registration), ("revocation", revocation)):
        signed = out["signed"][action]
        assert signed["primaryType"] == message.PRIMARY_TYPE
        signature = bytes.fromhex(signed["signature"][2:])
        assert td.recover(domain, message, signature) == signer.address
        assert signature == td.sign(domain, message, signer.key)  # RFC 6979: the same bytes as docchain's
        digest = td.digest(domain, message)
        assert signed["digest"] == to_hex(digest)
        assert eth_account_digest(full_form(chain["eip712"], action, messages[action])) == digest
    assert env.registry().registration_digest(registration) == td.digest(domain, registration)

    # the API and the registry take ethers' signatures: registered, then revoked on chain
    submitted = api.post("/v1/documents", json={"registration": messages["registration"], **_sig(out, "registration")})
    assert submitted.status_code == 202, submitted.text
    api.wait_state(submitted.json()["id"], ("anchored", "confirmed"))
    revoked = api.post("/v1/revocations", json={"revocation": messages["revocation"], **_sig(out, "revocation")})
    assert revoked.status_code == 202, revoked.text
    status = f"/v1/documents/{to_hex(doc_hash)}/revocations/{signer.address}"

    def mined() -> dict[str, Any] | None:
        latest: dict[str, Any] = api.get(status).json()["revocations"][0]
        assert latest["state"] != "failed", latest
        return latest if latest["state"] == "revoked" else None

    poll(mined, 30, interval=0.05, what="the ethers-signed revocation to be mined")
    assert env.registry().record(doc_hash, signer.address).revoked


def _sig(out: dict[str, Any], action: str) -> dict[str, str]:
    return {"signature": out["signed"][action]["signature"]}
