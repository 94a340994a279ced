"""``superseded_by`` on the API's document and verify answers, from its index of the registry's events.

One module API: A and B sign the old document; A's new document names it (shown); M, who never signed it, names it
too (not shown); B names it from a third document and revokes that (not shown). The old document verifies VALID.
"""

from __future__ import annotations

import os
from typing import Any

from api_support import Api, Env, Signer, new_signer, random_doc

from docchain.chain.values import to_hex
from tests.support import poll

CI_BACKEND = "sqlite"  # at CI size (tests/api/conftest.py); RELIABILITY_SCALE=full runs both


def _submitted(env: Env, api: Api, signer: Signer, doc: bytes, **fields: Any) -> str:
    r = api.post("/v1/documents", json=signer.registration(env.domain, doc, **fields))
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_a_supersede_by_a_signer_of_the_old_document_is_served(env: Env, api: Api) -> None:
    a, b, m = new_signer(), new_signer(), new_signer()
    old, new, strangers, withdrawn = (random_doc()[1] for _ in range(4))
    submitted = [
        _submitted(env, api, a, old),
        _submitted(env, api, b, old),
        _submitted(env, api, a, new, supersedes=old),
        _submitted(env, api, m, strangers, supersedes=old),
        _submitted(env, api, b, withdrawn, supersedes=old),
    ]
    for sid in submitted:
        api.wait_state(sid, ("anchored", "confirmed"))
    r = api.post("/v1/revocations", json=b.revocation(env.domain, withdrawn, 0))
    assert r.status_code == 202, r.text
    poll(lambda: api.get(f"/v1/documents/{to_hex(withdrawn)}").json()["signers"][0]["revokedAt"], 30, what="indexed")

    expected = [{"docHash": to_hex(new), "signers": [a.address]}]
    document = api.get(f"/v1/documents/{to_hex(old)}").json()
    assert document["superseded_by"] == expected
    verdict = api.post("/v1/verify", json={"docHash": to_hex(old)}).json()
    assert (verdict["outcome"], verdict["superseded_by"]) == ("valid", expected)
    # the signer's own question sees the same: the supersede is the document's, not the asked signer's
    verdict = api.post("/v1/verify", json={"docHash": to_hex(old), "signer": b.address}).json()
    assert (verdict["outcome"], verdict["superseded_by"]) == ("valid", expected)
    # the others are recorded naming it all the same: only the rule leaves them out
    named = {
        to_hex(doc): api.get(f"/v1/documents/{to_hex(doc)}").json()["signers"][0]["supersedes"]
        for doc in (strangers, withdrawn)
    }
    assert named == {to_hex(strangers): to_hex(old), to_hex(withdrawn): to_hex(old)}
    assert api.get(f"/v1/documents/{to_hex(new)}").json()["superseded_by"] == []


def test_an_unknown_document_verifies_with_no_superseders(api: Api) -> None:
    verdict = api.post("/v1/verify", json={"docHash": to_hex(os.urandom(32))}).json()
    assert (verdict["outcome"], verdict["superseded_by"]) == ("not_registered", [])
