"""The envelope page (api/web/js/envelope.js) in headless Chromium against the real stack (anvil, the registry and
the envelopes contract, ``python -m docchain.api``), with wallets injected into the page as an extension would.

A two-signer ordered envelope is created from the page by the requester's wallet and completed from the page by
its two signers, each in a page of their own, the second opened through the signing link the requester's page
shows (in a browser without server-sent events, so that page polls); each page shows who is next, pending and
signed at each step, and a file that is not the envelope's document is refused before any signature. The
signing link's QR code holds the link: its modules, read back from the page's SVG, equal the link's code made
again outside the page by the same library. A signer declines from the page with a reason whose keccak256 is on
chain, and the page then says who declined, when and why, and no signing link invites anyone; the requester voids
another envelope. An event stream that fails is opened again after a bounded back-off. The page's EIP-712 types
equal chain/envelopes.py's, and the vendored QR library equals node_modules' copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from webstack import INJECTED_WALLET, ROOT, Pages, Stack, wallet_script

from docchain.chain import deploy
from docchain.chain import envelopes as ev
from docchain.chain.hashing import keccak256
from docchain.chain.rpc import Log
from docchain.chain.typed_data import address_of, sign
from tests.support import poll

pytestmark = pytest.mark.browser

# anvil's dev accounts #5, #6, #7 (public test keys, unlocked in the node): the requester and two signers
KEYS = {
    5: bytes.fromhex("8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"),
    6: bytes.fromhex("92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e"),
    7: bytes.fromhex("4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356"),
}
REQUESTER, FIRST, SECOND = (address_of(KEYS[i]) for i in (5, 6, 7))
TIMEOUT = 20_000  # ms, for anything that waits on the chain
QUIET = 4  # the QR code's quiet zone in the page's SVG, in modules


def wallet_of(index: int, stack: Stack) -> str:
    """The injected wallet (webstack's) sharing anvil's dev account ``index`` instead of #1."""
    script = INJECTED_WALLET.replace("a => [a[1]]", f"a => [a[{index}]]")
    assert script.count(f"a[{index}]") == 2
    return wallet_script(script, stack.rpc_url)


def file_payload(name: str, content: bytes) -> dict[str, Any]:
    return {"name": name, "mimeType": "application/octet-stream", "buffer": content}


def row(page: Any, signer: str) -> Any:
    return page.locator(f"#env-signers tr[data-signer='{signer.lower()}']")


def expect_states(page: Any, **states: str) -> None:
    """Each signer's row (by variable name in this module) shows its state."""
    for name, state in states.items():
        expect(row(page, globals()[name])).to_have_attribute("data-state", state, timeout=TIMEOUT)


def expect_status(page: Any, status: str) -> None:
    expect(page.locator("#env-summary .card")).to_have_attribute("data-status", status, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def envelopes_domain(stack: Stack) -> Any:
    recorded = deploy.lookup_envelopes(stack.tmp / "data", stack.domain.chain_id)
    return ev.domain(stack.domain.chain_id, recorded.address)


def create_by_api(stack: Stack, domain: Any, content: bytes, signers: tuple[str, ...], ordered: bool) -> str:
    """An envelope for ``content`` created through the API by the requester's key, signed here; open on chain."""
    request = ev.EnvelopeRequest(
        doc_hash=hashlib.sha256(content).digest(),
        requester=REQUESTER,
        signers=signers,
        ordered=ordered,
        deadline=0,
        salt=ev.new_salt(),
        request_deadline=int(time.time()) + 3600,
    )
    body = {"request": request.to_json(), "signature": "0x" + sign(domain, request, KEYS[5]).hex()}
    r = httpx.post(stack.url + "/v1/envelopes", json=body, timeout=30)
    assert r.status_code == 202, r.text
    eid = r.json()["id"]
    assert eid == "0x" + ev.envelope_id(domain, request).hex()
    poll(lambda: stack.get(f"/v1/envelopes/{eid}").json()["status"] == "open", 30, what=f"envelope {eid} open")
    return str(eid)


def qr_modules(page: Any, svg: Any) -> tuple[int, set[tuple[int, int]]]:
    """The QR code drawn by the page's SVG: its size in modules and its dark modules (row, column)."""
    size = int(svg.get_attribute("data-modules"))
    d = svg.locator("path").get_attribute("d")
    dark = {(int(y) - QUIET, int(x) - QUIET) for x, y in re.findall(r"M(\d+) (\d+)h1v1h-1z", d)}
    assert re.sub(r"M\d+ \d+h1v1h-1z", "", d) == "", "the path holds only unit squares"
    return size, dark


def library_modules(text: str) -> tuple[int, set[tuple[int, int]]]:
    """``text`` rendered again by qrcode-generator's CommonJS build in node_modules (node, outside the page), as
    the page asks it: level M, byte mode, the smallest version that holds it. Two QR encoders may pad the data
    differently (segno adds a zero byte where the terminator ends on a byte boundary), so equal modules are a
    test of equal payloads only against the same library."""
    script = (
        "const q = require(process.argv[1])(0, 'M'); q.addData(process.argv[2], 'Byte'); q.make();"
        "const n = q.getModuleCount(), dark = [];"
        "for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) if (q.isDark(r, c)) dark.push([r, c]);"
        "console.log(JSON.stringify({n, dark}));"
    )
    library = ROOT / "node_modules" / "qrcode-generator" / "dist" / "qrcode.js"
    out = subprocess.run(["node", "-e", script, str(library), text], capture_output=True, text=True, check=True)
    code = json.loads(out.stdout)
    return int(code["n"]), {(int(r), int(c)) for r, c in code["dark"]}


@pytest.fixture(scope="module")
def captured(stack: Stack, browser: Any) -> Iterator[dict[str, Any]]:
    """The two-signer ordered envelope created and completed from the page, with what each step showed."""
    pages = Pages(browser, stack)
    seen: dict[str, Any] = {}
    try:
        content = b"envelope page: contract between two parties " + os.urandom(8)
        seen["docHash"] = "0x" + hashlib.sha256(content).hexdigest()

        # the requester creates it from the page
        req = pages.open("envelope", wallet=wallet_of(5, stack))
        req.click("#connect")
        req.set_input_files("#env-file", file_payload("contract.pdf", content))
        expect(req.locator("#env-create")).to_be_enabled(timeout=TIMEOUT)
        req.fill("#env-signers-input", f"{FIRST}\n{SECOND}")
        req.check("#env-ordered")
        req.click("#env-create")
        expect(req).to_have_url(re.compile(r"#/envelope/0x[0-9a-f]{64}$"), timeout=TIMEOUT)
        eid = req.url.rsplit("/", 1)[1]
        seen["id"] = eid
        expect_status(req, "open")
        expect_states(req, FIRST="next", SECOND="pending")
        seen["opened"] = stack.get(f"/v1/envelopes/{eid}").json()
        links = {
            s: req.locator(f"#env-signers .sign-link[data-signer='{s.lower()}'] a.invite-link").get_attribute("href")
            for s in (FIRST, SECOND)
        }
        seen["links"] = links
        svg = req.locator(f"#env-signers .sign-link[data-signer='{SECOND.lower()}'] svg.qr")
        seen["qr"] = (svg.get_attribute("data-payload"), *qr_modules(req, svg))
        qr_box = req.locator(f"#env-signers .sign-link[data-signer='{SECOND.lower()}'] .qr-box")
        qr_box.locator("summary").click()
        Pages.shot(req, "envelope-open")

        # the first signer, in a page of their own: another file is refused, then the document is signed
        one = pages.open(f"envelope/{eid}?signer={FIRST}", wallet=wallet_of(6, stack))
        expect(one.locator("#env-invite")).to_contain_text(FIRST)
        one.set_input_files("#env-sign-file", file_payload("other.pdf", b"not the contract"))
        expect(one.locator("#env-file-check")).to_contain_text("Not this envelope’s document", timeout=TIMEOUT)
        expect(one.locator("#env-sign")).to_be_disabled()
        one.set_input_files("#env-sign-file", file_payload("contract.pdf", content))
        expect(one.locator("#env-file-ok")).to_be_visible(timeout=TIMEOUT)
        Pages.shot(one, "envelope-signer")
        one.click("#env-sign")
        expect(one.locator("#env-submitted")).to_have_attribute("data-kind", "sign", timeout=TIMEOUT)
        expect_states(one, FIRST="signed", SECOND="next")
        expect_states(req, FIRST="signed", SECOND="next")  # the requester's page follows without a reload
        expect(qr_box).to_have_attribute("open", "")  # and the QR code opened there stays open
        expect(one.locator("#env-done-mine")).to_contain_text("signed")

        # the second signer opens the signing link the requester's page shows, in a browser without server-sent
        # events: that page follows the envelope by reading it again
        two = pages.open("", wallet=wallet_of(7, stack) + "\ndelete window.EventSource;\n")
        two.goto(links[SECOND])
        assert two.evaluate("typeof window.EventSource") == "undefined"
        expect_states(two, FIRST="signed", SECOND="next")
        two.set_input_files("#env-sign-file", file_payload("contract.pdf", content))
        expect(two.locator("#env-file-ok")).to_be_visible(timeout=TIMEOUT)
        two.click("#env-sign")
        for page in (two, req, one):
            expect_status(page, "completed")
        expect_states(req, FIRST="signed", SECOND="signed")
        seen["completed"] = stack.get(f"/v1/envelopes/{eid}").json()
        seen["rows"] = {
            s: {
                "tx": row(req, s).locator("a.ref-tx").get_attribute("data-full"),
                "block": row(req, s).locator("a.ref-block").get_attribute("data-full"),
            }
            for s in (FIRST, SECOND)
        }
        seen["invites_after"] = req.locator("#env-signers .sign-link").count()
        seen["certificate"] = req.locator("#env-certificate").get_attribute("href")
        seen["shot"] = Pages.shot(req, "envelope-completed")
        Pages.shot(pages.open(f"envelope/{eid}", viewport="mobile"), "envelope-completed-mobile")

        # the document's page lists its envelope
        req.goto(f"{stack.url}/#/doc/{seen['docHash']}")
        expect(req.locator("#doc-envelopes h2")).to_have_text("Envelopes", timeout=TIMEOUT)
        seen["doc_links"] = req.locator("#doc-envelopes a.env-link").evaluate_all(
            "as => as.map(a => a.dataset.envelope)"
        )
        seen["errors"] = list(pages.errors)
        yield seen
    finally:
        pages.close()


def test_created_and_completed_from_the_page(stack: Stack, captured: dict[str, Any]) -> None:
    opened, done = captured["opened"], captured["completed"]
    assert opened["docHash"] == captured["docHash"]
    assert opened["requester"].lower() == REQUESTER.lower() and opened["ordered"] is True
    assert [s["address"].lower() for s in opened["signers"]] == [FIRST.lower(), SECOND.lower()]
    assert done["status"] == "completed" and done["completed"]["blockNumber"] >= done["created"]["blockNumber"]
    for signer in done["signers"]:
        assert signer["state"] == "signed"
        shown = captured["rows"][next(s for s in (FIRST, SECOND) if s.lower() == signer["address"].lower())]
        assert shown == {"tx": signer["transactionHash"], "block": str(signer["blockNumber"])}
    # each signature is also a registry record of the document, by its signer
    doc = stack.get(f"/v1/documents/{captured['docHash']}").json()
    assert {s["signer"].lower() for s in doc["signers"]} == {FIRST.lower(), SECOND.lower()}
    assert captured["invites_after"] == 0  # a completed envelope invites no one
    assert captured["doc_links"] == [captured["id"]]
    certificate = stack.get(captured["certificate"])
    assert certificate.status_code == 200 and certificate.content.startswith(b"%PDF-")
    assert captured["shot"].stat().st_size > 10_000
    assert captured["errors"] == []


def test_signing_link_names_the_signer(captured: dict[str, Any]) -> None:
    page = captured["opened"]["links"]["page"]
    assert page.endswith(f"#/envelope/{captured['id']}")
    assert captured["links"] == {s: f"{page}?signer={s}" for s in (FIRST, SECOND)}


def test_qr_code_holds_the_signing_link(captured: dict[str, Any]) -> None:
    payload, size, dark = captured["qr"]
    assert payload == captured["links"][SECOND]
    assert (size - 17) % 4 == 0 and len(dark) > size * size // 4
    assert library_modules(captured["links"][SECOND]) == (size, dark)
    # and the check can fail: the other signer's link is another code
    assert library_modules(captured["links"][FIRST]) != (size, dark)


def test_decline_from_the_page(stack: Stack, pages: Pages, envelopes_domain: Any) -> None:
    content = b"envelope page: declined " + os.urandom(8)
    eid = create_by_api(stack, envelopes_domain, content, (FIRST, SECOND), ordered=True)
    reason = "The fee in clause 4 is wrong — see my e-mail"
    page = pages.open(f"envelope/{eid}?signer={SECOND}", wallet=wallet_of(7, stack))
    expect_states(page, FIRST="next", SECOND="pending")
    expect(page.locator("#env-wait-turn")).to_be_visible(timeout=TIMEOUT)  # in order: may decline, not sign yet
    expect(page.locator("#env-sign")).to_have_count(0)
    page.fill("#env-decline-reason", reason)
    page.click("#env-decline")
    expect_status(page, "declined")
    expect_states(page, SECOND="declined")
    env = stack.get(f"/v1/envelopes/{eid}").json()
    assert env["status"] == "declined" and env["declinedBy"].lower() == SECOND.lower()
    # the page says who declined, when and why, and no longer that the envelope is waiting to complete
    summary = page.locator("#env-summary")
    expect(summary.locator("#env-declined")).to_contain_text(SECOND, timeout=TIMEOUT)
    expect(summary.locator("#env-declined a.ref-tx")).to_have_attribute("data-full", env["declined"]["transactionHash"])
    expect(summary.locator("#env-reason")).to_have_text(reason)
    expect(summary).not_to_contain_text("not yet")
    # the signing links say why they no longer invite: to the one who declined, and to the other signer
    expect(page.locator("#env-invite")).to_have_attribute("data-invite", "declined")
    expect(page.locator("#env-invite")).not_to_contain_text("invites")
    other = pages.open(f"envelope/{eid}?signer={FIRST}")
    expect(other.locator("#env-invite")).to_have_attribute("data-invite", "closed", timeout=TIMEOUT)
    expect(other.locator("#env-invite")).to_contain_text(f"{SECOND} declined the envelope")
    expect(other.locator("#env-signers .sign-link")).to_have_count(0)
    Pages.shot(other, "envelope-declined")
    logs = stack.rpc("eth_getLogs", [{"address": env["envelopes"], "fromBlock": "0x0", "toBlock": "latest"}])
    declined = [e for e in map(_decode, logs) if isinstance(e, ev.EnvelopeDeclined) and e.envelope_id.hex() == eid[2:]]
    assert [(d.signer.lower(), d.reason_hash) for d in declined] == [(SECOND.lower(), keccak256(reason.encode()))]
    assert not pages.errors


def test_the_event_stream_reconnects_with_a_bounded_back_off(stack: Stack, pages: Pages, envelopes_domain: Any) -> None:
    """Where every event stream fails (the browser refuses it, as a network error would end it), the page opens it
    again after 1 s, 2 s, 4 s ... (the page's clock is driven here), STREAM_RETRIES times and no more, and polls.
    Where only the first two fail, the page follows the envelope through the third, and shows a decline sent
    meanwhile."""
    eid = create_by_api(stack, envelopes_domain, b"envelope page: stream " + os.urandom(8), (FIRST,), ordered=False)
    streams: dict[str, list[str]] = {"down": [], "flaky": []}

    def open_with(kind: str, refused: int) -> Any:
        page = pages.open("")
        page.clock.install()

        def handle(route: Any) -> None:
            streams[kind].append(route.request.url)
            if len(streams[kind]) <= refused:
                route.abort("connectionfailed")
            else:
                route.continue_()

        page.route("**/v1/envelopes/*/events*", handle)
        page.goto(f"{stack.url}/#/envelope/{eid}")
        return page

    def back_off(page: Any, kind: str, failures: int, wait_ms: int) -> None:
        """After ``failures`` in a row, the stream is opened again within 1.5 ``wait_ms``, not within half of it (a
        failure lands while the clock runs, so the wait starts somewhere in the last run)."""
        expect(page.locator("#env-summary")).to_have_attribute("data-stream-failures", str(failures), timeout=TIMEOUT)
        page.clock.run_for(wait_ms // 2)
        assert len(streams[kind]) == failures, f"the stream was opened again within {wait_ms // 2} ms"
        page.clock.run_for(wait_ms)

    down = open_with("down", refused=10**6)
    retries = down.evaluate("import('./js/envelope.js').then(m => m.STREAM_RETRIES)")
    for failures in range(1, retries + 1):
        back_off(down, "down", failures, min(1000 * 2 ** (failures - 1), 30_000))
    expect(down.locator("#env-summary")).to_have_attribute("data-stream", "polling", timeout=TIMEOUT)
    down.clock.run_for(120_000)
    assert len(streams["down"]) == retries + 1

    flaky = open_with("flaky", refused=2)
    back_off(flaky, "flaky", 1, 1000)
    back_off(flaky, "flaky", 2, 2000)
    expect(flaky.locator("#env-summary")).to_have_attribute("data-stream", "live", timeout=TIMEOUT)
    assert streams["flaky"] == [f"{stack.url}/v1/envelopes/{eid}/events"] * 3
    decline = ev.Decline(bytes.fromhex(eid[2:]), FIRST, int(time.time()) + 3600)
    body = {"decline": decline.to_json(), "signature": "0x" + sign(envelopes_domain, decline, KEYS[6]).hex()}
    assert httpx.post(f"{stack.url}/v1/envelopes/{eid}/decline", json=body, timeout=30).status_code == 202
    expect_status(flaky, "declined")  # through the stream: the page's clock, which its polling needs, stands still
    assert not [e for e in pages.errors if "ERR_CONNECTION_FAILED" not in e]  # the browser logs each refused stream


def test_void_from_the_page(stack: Stack, pages: Pages, envelopes_domain: Any) -> None:
    eid = create_by_api(stack, envelopes_domain, b"envelope page: voided " + os.urandom(8), (FIRST,), ordered=False)
    signer = pages.open(f"envelope/{eid}", wallet=wallet_of(6, stack))
    expect(signer.locator("#env-sign")).to_be_visible(timeout=TIMEOUT)
    expect(signer.locator("#env-void")).to_have_count(0)  # only the requester may void
    page = pages.open(f"envelope/{eid}", wallet=wallet_of(5, stack))
    page.click("#env-void")
    expect_status(page, "voided")
    expect_status(signer, "voided")
    expect(signer.locator("#env-closed")).to_contain_text("voided")
    assert stack.get(f"/v1/envelopes/{eid}").json()["status"] == "voided"
    assert not pages.errors


def test_an_error_shows_the_problem(stack: Stack, pages: Pages) -> None:
    """The create page says what is wrong: the form's own check, the API's problem (its title), the wallet's
    refusal; never a blank."""
    page = pages.open("envelope", wallet=wallet_of(5, stack))
    page.click("#connect")
    page.set_input_files("#env-file", file_payload("x.txt", b"envelope page: refused " + os.urandom(8)))
    expect(page.locator("#env-create")).to_be_enabled(timeout=TIMEOUT)
    page.fill("#env-signers-input", f"{FIRST}\n{FIRST.lower()}")
    page.click("#env-create")
    expect(page.locator("#env-create-status .error")).to_contain_text("named twice")
    # a wallet that signs with another account than the one it shares: the API refuses the request's signature
    page.evaluate(
        """other => { const real = window.ethereum.request;
           window.ethereum.request = ({method, params}) => real(method === "eth_signTypedData_v4"
             ? {method, params: [other, params[1]]} : {method, params}); }""",
        FIRST,
    )
    page.fill("#env-signers-input", SECOND)
    page.click("#env-create")
    problem = page.locator("#env-create-status .error")
    expect(problem.locator("strong")).to_have_text(
        "Refused by the envelope rule InvalidEnvelopeSignature", timeout=TIMEOUT
    )
    expect(problem).to_contain_text("HTTP 422")
    expect(page).to_have_url(re.compile(r"#/envelope$"))
    # the wallet refuses to sign: the page says so
    page.evaluate(
        "() => { window.ethereum.request = async () => { const e = new Error('no'); e.code = 4001; throw e; }; }"
    )
    page.click("#env-create")
    expect(problem.locator("strong")).to_have_text("Signature request rejected", timeout=TIMEOUT)
    assert [e for e in pages.errors if "422" not in e] == []  # the browser logs the refused POST


def test_page_types_are_the_contracts(stack: Stack, pages: Pages) -> None:
    page = pages.open("envelope")
    types = page.evaluate("import('./js/envelope.js').then(m => m.ENVELOPE_TYPES)")
    assert types == {m.PRIMARY_TYPE: m.TYPE for m in (ev.EnvelopeRequest, ev.Decline, ev.Void)}
    assert page.evaluate("import('./js/envelope.js').then(m => m.MAX_SIGNERS)") == ev.MAX_SIGNERS


def test_vendored_qr_library_is_node_modules_copy() -> None:
    vendored = ROOT / "api" / "web" / "js" / "vendor" / "qrcode.js"
    package = ROOT / "node_modules" / "qrcode-generator"
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["qrcode-generator"]
    assert json.loads((package / "package.json").read_text())["version"] == pinned
    assert vendored.read_bytes() == (package / "dist" / "qrcode.mjs").read_bytes()


def _decode(raw: dict[str, Any]) -> ev.EnvelopeEvent | None:
    """A JSON-RPC log of the envelopes contract, decoded by chain/envelopes.py."""
    log = Log(
        address=raw["address"],
        topics=tuple(bytes.fromhex(x[2:]) for x in raw["topics"]),
        data=bytes.fromhex(raw["data"][2:]),
        block_number=int(raw["blockNumber"], 16),
        block_hash=bytes.fromhex(raw["blockHash"][2:]),
        tx_hash=bytes.fromhex(raw["transactionHash"][2:]),
        log_index=int(raw["logIndex"], 16),
    )
    return ev.decode_log(log)
