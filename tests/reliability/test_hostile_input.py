"""Hostile input, case by case: oversized and truncated bodies, slow clients, malformed JSON, invalid hex,
non-canonical and forged signatures, the zero address, path-like and unicode file names, huge metadata, numbers
out of range, odd headers and methods. Each is answered 4xx application/problem+json, never 5xx, and the API
logs no 5xx for any of them. A file name the API accepts comes back intact (receipt and download, no header
injected) or is refused with 422; nothing is written outside the document store.

The whole OpenAPI document is fuzzed with schemathesis by tests/api/test_openapi_fuzz.py; the cases here are
the ones a generator does not reach: broken framing, slow sockets, crafted signatures and names."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.api_support import Signer, new_signer
from tests.reliability.harness import Api, Chain, Env, server_5xx, servers, sqlite_url
from tests.reliability.report import Entry

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # secp256k1's group order
KEY = "hostile-input-key"
BODY_LIMIT = 1024 * 1024  # DOCCHAIN_MAX_UPLOAD_BYTES for this API
HEADER_TIMEOUT_S, BODY_TIMEOUT_S = 2.0, 3.0
SLOW_BOUND_S = 60.0  # a slow client still connected after this is a failure (and the test stops waiting)


@dataclass
class Stack:
    api: Api
    env: Env
    port: int
    http: httpx.Client = None  # type: ignore[assignment]  # a fresh connection for each case

    def signer(self) -> Signer:
        return new_signer()

    def body(self, **changes: Any) -> dict[str, Any]:
        """A valid submission by a fresh signer, with ``changes`` applied to its registration / top level."""
        signer = new_signer()
        doc = hashlib.sha256(os.urandom(32)).digest()
        body = signer.registration(self.env.domain, doc)
        for k, v in changes.items():
            if k in body["registration"]:
                body["registration"][k] = v
            else:
                body[k] = v
        return body


@pytest.fixture(scope="module")
def stack(chain: Chain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = chain.env(sqlite_url(tmp_path_factory.mktemp("hostile") / "docchain.db"), "hostile")
    api = env.api(
        DOCCHAIN_API_KEYS=KEY,
        DOCCHAIN_CONFIRMATIONS="1",
        DOCCHAIN_MAX_UPLOAD_BYTES=str(BODY_LIMIT),
        DOCCHAIN_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
        DOCCHAIN_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
    )
    with servers(api):
        api.start()
        yield Stack(api, env, api.port)
        api.stop()


# ---------------------------------------------------------------------------------------------- raw sockets


def raw(port: int, data: bytes, *, half_close: bool = True, timeout: float = 15.0) -> bytes:
    """Send ``data`` as is (then end the sending side, unless told not to) and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
        return out


def status_of(response: bytes) -> int | None:
    if not response.startswith(b"HTTP/1."):
        return None
    return int(response.split(b" ", 2)[1])


@dataclass
class Slow:
    """A client that sends one byte every ``every`` seconds and never finishes: how long until the server
    hangs up, and what it said."""

    prefix: bytes  # sent at once
    trickle: bytes  # then a byte at a time
    every: float = 0.5
    closed_after: float | None = None
    answer: bytes = b""

    def run(self, port: int) -> None:
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(self.prefix)
            data = self.trickle
            i = 0
            while time.monotonic() - start < SLOW_BOUND_S and i < len(data):
                try:
                    s.sendall(data[i : i + 1])
                    i += 1
                    s.settimeout(self.every)
                    chunk = s.recv(65536)
                    if not chunk:  # the server hung up
                        self.closed_after = time.monotonic() - start
                        return
                    self.answer += chunk
                except TimeoutError:
                    continue
                except OSError:
                    self.closed_after = time.monotonic() - start
                    return


# ---------------------------------------------------------------------------------------------- the cases


Send = Callable[[Stack], httpx.Response | bytes]


@dataclass
class Case:
    category: str
    name: str
    send: Send
    accept_or_refuse: bool = False  # a file name: either 422, or accepted and then served intact


def post(path: str, **kw: Any) -> Send:
    def send(s: Stack) -> httpx.Response:
        headers = {"X-API-Key": KEY, **kw.pop("headers", {})}
        return s.http.post(path, headers=headers, **kw)

    return send


def submit_json(**changes: Any) -> Send:
    return lambda s: s.http.post("/v1/documents", json=s.body(**changes), headers={"X-API-Key": KEY})


def submit_raw(content: bytes, content_type: str = "application/json") -> Send:
    return post("/v1/documents", content=content, headers={"Content-Type": content_type})


def get(path: str, **kw: Any) -> Send:
    return lambda s: s.http.get(path, **kw)


def with_signature(mutate: Callable[[bytes], bytes], signer: str | None = None) -> Send:
    def send(s: Stack) -> httpx.Response:
        body = s.body()
        sig = bytes.fromhex(body["signature"][2:])
        body["signature"] = "0x" + mutate(sig).hex()
        if signer is not None:
            body["registration"]["signer"] = signer
        return s.http.post("/v1/documents", json=body, headers={"X-API-Key": KEY})

    return send


def high_s(sig: bytes) -> bytes:
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    return r + (N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28: the same point, the other s


def named(file_name: str) -> Send:
    """A multipart submission whose file part is named ``file_name``, written into the part's header as is (a
    backslash and a quote escaped with a backslash): what the server reads is exactly this name."""

    def send(s: Stack) -> httpx.Response:
        content = os.urandom(64)
        signer = new_signer()
        doc = hashlib.sha256(content).digest()
        body = json.dumps(signer.registration(s.env.domain, doc)).encode()
        quoted = file_name.replace("\\", "\\\\").replace('"', '\\"').encode()
        b = b"reliability-boundary"
        raw = (
            b"--" + b + b'\r\nContent-Disposition: form-data; name="submission"\r\n\r\n' + body + b"\r\n"
            b"--" + b + b'\r\nContent-Disposition: form-data; name="file"; filename="' + quoted + b'"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n" + content + b"\r\n--" + b + b"--\r\n"
        )
        headers = {"X-API-Key": KEY, "Content-Type": "multipart/form-data; boundary=" + b.decode()}
        r = s.http.post("/v1/documents", content=raw, headers=headers)
        SENT[id(r)] = (content, doc, signer.address, file_name)  # for the follow-up checks
        return r

    return send


def after_an_early_refusal(s: Stack) -> httpx.Response:
    """A body refused before it was read (413), then a valid submission on the same kept-alive connection: the
    server must either read the rest or say it closes (Connection: close); a dropped next request is a failure."""
    first = s.http.post("/v1/documents", json=s.body(docHash="0x" + "a" * 500_000), headers={"X-API-Key": KEY})
    second = s.http.post("/v1/documents", json=s.body(), headers={"X-API-Key": KEY})
    if second.status_code != 202:
        raise AssertionError(f"the next submission answered {second.status_code}: {second.text[:200]}")
    return first


SENT: dict[int, tuple[bytes, bytes, str, str]] = {}
NOTES: list[str] = []


def truncated_multipart(s: Stack) -> httpx.Response:
    boundary = "xyzzy"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="submission"\r\n\r\n'
        + json.dumps(s.body())
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\nhalf a fi'
    ).encode()
    return post("/v1/documents", content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})(s)


def chunked_over_limit(s: Stack) -> httpx.Response:
    def chunks() -> Iterator[bytes]:
        for _ in range(3):
            yield b"[" * (BODY_LIMIT // 2)

    return post("/v1/documents", content=chunks(), headers={"Content-Type": "application/json"})(s)


def declared_over_limit(s: Stack) -> bytes:
    head = (
        f"POST /v1/documents HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {200 * 1024 * 1024}\r\n\r\n"
    )
    return raw(s.port, head.encode() + b"{", half_close=False, timeout=10)


def shorter_than_declared(s: Stack) -> bytes:
    body = json.dumps(s.body()).encode()
    head = (
        f"POST /v1/documents HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body) + 500}\r\nConnection: close\r\n\r\n"
    )
    return raw(s.port, head.encode() + body)  # then the client stops sending


def non_ascii_key(s: Stack) -> bytes:
    body = json.dumps(s.body()).encode()
    head = (
        b"POST /v1/documents HTTP/1.1\r\nHost: x\r\nX-API-Key: cl\xe9\xff\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
    )
    return raw(s.port, head + body)


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def metadata_of(size: int) -> Send:
    def send(s: Stack) -> httpx.Response:
        from docchain.chain.typed_data import Registration, metadata_hash, sign

        metadata = {"blob": "x" * size}
        signer = new_signer()
        doc = hashlib.sha256(os.urandom(16)).digest()
        reg = Registration(
            doc_hash=doc, signer=signer.address, deadline=int(time.time()) + 3600, metadata_hash=metadata_hash(metadata)
        )
        body = {"registration": reg.to_json(), "signature": "0x" + sign(s.env.domain, reg, signer.key).hex()}
        body["metadata"] = metadata
        return s.http.post("/v1/documents", json=body, headers={"X-API-Key": KEY})

    return send


def nested_metadata(s: Stack) -> httpx.Response:
    text = json.dumps(s.body())[:-1] + ', "metadata": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}"
    return submit_raw(text.encode())(s)


ZERO = "0x" + "00" * 20
GOOD = "0x" + "ab" * 32

CASES = [
    # bodies
    Case("body", "Content-Length over the limit", declared_over_limit),
    Case("body", "chunked body over the limit", chunked_over_limit),
    Case("body", "truncated JSON", lambda s: submit_raw(json.dumps(s.body()).encode()[:60])(s)),
    Case("body", "shorter than its Content-Length, then closed", shorter_than_declared),
    Case("body", "truncated multipart", truncated_multipart),
    Case("body", "empty body", submit_raw(b"")),
    Case("body", "unknown content type", submit_raw(b"hello", "text/plain")),
    Case("body", "multipart without a boundary", submit_raw(b"--x\r\n", "multipart/form-data")),
    Case("body", "a valid request after a 413 on the same connection", after_an_early_refusal),
    # JSON
    *(
        Case("JSON", f"malformed: {label}", submit_raw(content))
        for label, content in (
            ("an open brace", b"{"),
            ("an array", b"[]"),
            ("null", b"null"),
            ("a string", b'"x"'),
            ("NaN", b'{"registration": NaN}'),
            ("invalid UTF-8", b'{"registration": "\xff\xfe"}'),
            ("a UTF-8 BOM", b"\xef\xbb\xbf{}"),
            ("100,000 nested arrays", deep(100_000)),
            ("registration a number", b'{"registration": 1, "signature": "0x00"}'),
            ("trailing garbage", b'{"registration": {}} trailing'),
        )
    ),
    Case("JSON", "an unknown field", submit_json(extra="field")),
    Case(
        "JSON",
        "a repeated field",
        lambda s: submit_raw(json.dumps(s.body())[:-1].encode() + b', "signature": "0x00"}')(s),
    ),
    Case("JSON", "signature a number", submit_json(signature=5)),
    # hex and numbers
    *(
        Case("hex", f"docHash {label}", submit_json(docHash=value))
        for label, value in (
            ("not hex", "0x" + "zz" * 32),
            ("odd length", "0x" + "a" * 63),
            ("without 0x", "ab" * 32),
            ("31 bytes", "0x" + "ab" * 31),
            ("33 bytes", "0x" + "ab" * 33),
            ("500,000 characters", "0x" + "a" * 500_000),
        )
    ),
    Case("hex", "signer with a wrong checksum", submit_json(signer="0x70997970c51812DC3A010C7d01b50e0d17dc79C8")),
    Case("hex", "signer 19 bytes", submit_json(signer="0x" + "ab" * 19)),
    Case("hex", "signature not hex", submit_json(signature="0xnothex")),
    Case("hex", "signature empty", submit_json(signature="0x")),
    Case("hex", "deadline 2^256", submit_json(deadline=2**256)),
    Case("hex", "deadline negative", submit_json(deadline=-1)),
    Case("hex", "deadline passed", submit_json(deadline=1)),
    Case("hex", "fileSize negative", submit_json(fileSize=-1)),
    Case("hex", "fileSize 10^30", submit_json(fileSize=10**30)),
    Case("hex", "GET a document by a bad hash", get("/v1/documents/0xnothex")),
    Case("hex", "GET a receipt for a bad signer", get(f"/v1/documents/{GOOD}/receipts/0x1234")),
    Case("hex", "verify a bad docHash", post("/v1/verify", json={"docHash": "0x" + "g" * 64})),
    Case("hex", "verify a bad signer", post("/v1/verify", json={"docHash": GOOD, "signer": "bob"})),
    # signatures and the zero address
    Case("signature", "high-s (the malleable twin)", with_signature(high_s)),
    Case("signature", "v = 0 instead of 27", with_signature(lambda sig: sig[:64] + bytes([sig[64] - 27]))),
    Case("signature", "v = 29", with_signature(lambda sig: sig[:64] + b"\x1d")),
    Case("signature", "r = s = 0", with_signature(lambda sig: b"\x00" * 64 + sig[64:])),
    Case("signature", "another key's signature", with_signature(lambda sig: sig, signer=new_signer().address)),
    Case("signature", "64 bytes", with_signature(lambda sig: sig[:64])),
    Case("signature", "4,097 bytes", with_signature(lambda sig: sig * 64)),
    Case("signature", "the zero address as signer", with_signature(lambda sig: sig, signer=ZERO)),
    Case("signature", "the zero address, r = s = 0", with_signature(lambda sig: b"\x00" * 64 + b"\x1b", signer=ZERO)),
    Case("signature", "metadataHash without its metadata matching", submit_json(metadata={"a": 1})),
    # metadata
    Case("metadata", "64 KiB of metadata", metadata_of(64 * 1024)),
    Case("metadata", "900 KiB of metadata", metadata_of(900 * 1024)),
    Case("metadata", "5,000 levels of nesting", nested_metadata),
    # numbers out of range and odd requests
    Case(
        "range", "cursor of 10^30", get("/v1/documents", params={"cursor": "MTAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw"})
    ),
    Case("range", "cursor not ours", get("/v1/documents", params={"cursor": "!!!"})),
    Case("range", "since 10^30", get("/v1/documents", params={"since": "1" + "0" * 30})),
    Case("range", "since negative", get("/v1/documents", params={"since": "-99999999999999999999"})),
    Case("range", "until not a date", get("/v1/documents", params={"until": "yesterday"})),
    Case("range", "limit 0", get("/v1/documents", params={"limit": 0})),
    Case("range", "limit 10^30", get("/v1/documents", params={"limit": "1" + "0" * 30})),
    Case("range", "block -1", get("/v1/explorer/blocks/-1")),
    Case("range", "a block number of 30 digits", get("/v1/explorer/blocks/" + "9" * 30)),
    Case("range", "a submission id of 2,000 characters", get("/v1/submissions/" + "a" * 2000)),
    Case("range", "a submission id with NUL", get("/v1/submissions/ab%00cd")),
    Case("range", "long-poll wait 10^30", get("/v1/submissions/abc", params={"wait": "1" + "0" * 30})),
    Case("headers", "an API key with bytes above 0x7f", non_ascii_key),
    Case("headers", "no API key on a write", lambda s: s.http.post("/v1/documents", json=s.body())),
    Case("headers", "DELETE on /v1/documents", lambda s: s.http.request("DELETE", "/v1/documents")),
    # file names (multipart): refused, or accepted and served back intact
    *(
        Case("file name", label, named(name), accept_or_refuse=True)
        for label, name in (
            ("../../etc/passwd", "../../etc/passwd"),
            ("..\\..\\windows\\win.ini", "..\\..\\windows\\win.ini"),
            ("an absolute path", "/etc/shadow"),
            ("C:\\x", "C:\\x"),
            ("Cyrillic and Chinese", "договор-合同.pdf"),
            ("an emoji", "📄 report.pdf"),
            ("a right-to-left override", "\u202egpj.exe"),
            ("a NUL", "a\x00b.pdf"),
            ("a control character", "a\x07b.pdf"),
            ("CR LF and a header", "a.pdf\r\nX-Injected: 1"),
            ("a quote and a semicolon", 'a";filename=evil.exe'),
            ("1,025 characters", "n" * 1025),
            ("empty", ""),
        )
    ),
]


def _problem(r: httpx.Response | bytes) -> str | None:
    """None when ``r`` is a 4xx problem+json; otherwise what it is."""
    if isinstance(r, bytes):
        status = status_of(r)
        if status is None:
            return None if r == b"" else f"not HTTP: {r[:80]!r}"  # closed without an answer: no 5xx at least
        head, _, body = r.partition(b"\r\n\r\n")
        ok = 400 <= status < 500 and b"application/problem+json" in head.lower()
        return None if ok else f"{status}: {body[:200]!r}"
    ok = 400 <= r.status_code < 500 and r.headers.get("content-type", "").startswith("application/problem+json")
    if ok:
        body = r.json()
        if body.get("status") == r.status_code and body.get("title"):
            if r.status_code == 405 and "allow" not in r.headers:
                return "405 without an Allow header"
            return None
    return f"{r.status_code} {r.headers.get('content-type')}: {r.text[:200]}"


def _status(r: httpx.Response | bytes) -> str:
    if isinstance(r, bytes):
        return str(status_of(r) or "closed")
    return str(r.status_code)


def _served_back(s: Stack, r: httpx.Response) -> str | None:
    """An accepted file name: its receipt and download must work, headers intact, the bytes the same, the name
    in the receipt as sent."""
    content, doc, signer, name = SENT[id(r)]
    sid = r.json()["id"]
    s.api.wait_state(sid, ("anchored", "confirmed"), timeout=90)
    receipt = s.api.get(f"/v1/documents/0x{doc.hex()}/receipts/{signer}")
    download = s.api.get(f"/v1/documents/0x{doc.hex()}/file")
    for what, resp in (("receipt", receipt), ("download", download)):
        if resp.status_code != 200:
            return f"{what} answered {resp.status_code}: {resp.text[:200]}"
        if "x-injected" in resp.headers:
            return f"{what} carries an injected header"
    if download.content != content:
        return "the download is not the stored file"
    kept = receipt.json().get("document", {}).get("name")
    if "\r" in name or "\n" in name:
        # a raw line break ends the part's header line: no name was sent as such, only nothing may leak
        if kept is not None and ("\r" in kept or "\n" in kept):
            return f"the receipt keeps a line break in the name {kept!r}"
        NOTES.append(f"A raw CR LF inside a multipart file name is accepted; the receipt names the file {kept!r}.")
    elif kept != name:
        return f"the receipt names the file {kept!r}, not {name!r} as sent"
    return None


def test_hostile_input_cases(stack: Stack, entry: Entry) -> None:
    """Hostile input: explicit cases, each 4xx problem+json"""
    results: list[list[str]] = []
    failures: list[str] = []
    store = stack.env.data_dir / "documents"
    before = {p for p in stack.env.tmp.rglob("*") if p.is_file()}
    for case in CASES:
        try:
            with httpx.Client(base_url=stack.api.url, timeout=30) as stack.http:
                r = case.send(stack)
        except (httpx.HTTPError, AssertionError) as exc:
            failures.append(f"{case.category} / {case.name}: {type(exc).__name__}: {exc}")
            results.append([case.category, case.name, type(exc).__name__ + " ✗"])
            continue
        why = _problem(r)
        if case.accept_or_refuse and isinstance(r, httpx.Response) and r.status_code == 202:
            why = _served_back(stack, r)
        results.append([case.category, case.name, _status(r) + ("" if why is None else " ✗")])
        if why is not None:
            failures.append(f"{case.category} / {case.name}: {why}")
        entry.inputs[f"hostile {case.category} cases"] += 1
    written = {p for p in stack.env.tmp.rglob("*") if p.is_file()} - before
    outside = [
        p
        for p in written
        if store not in p.parents
        and p.suffix not in (".db", ".db-wal", ".db-shm", ".lock")
        and not p.name.startswith(("api.", "docchain.db"))
    ]
    entry.notes += NOTES
    entry.table(
        "Cases and answers (✗: not a 4xx problem+json, or an accepted name not served back):",
        ["category", "case", "status"],
        results,
    )
    logged = server_5xx(stack.env.tmp / "api.log.jsonl", allowed=())
    fivexx_metric = sum(
        float(line.rsplit(" ", 1)[1])
        for line in stack.api.get("/metrics").text.splitlines()
        if line.startswith("docchain_http_requests_total{") and 'status="5' in line
    )
    entry.fivexx_client = sum(1 for _, _, status in results if status.startswith("5"))
    entry.fivexx_server = len(logged)
    assert not failures, f"{len(failures)} of {len(CASES)} cases:\n" + "\n".join(failures)
    assert not outside, f"files written outside the document store: {sorted(map(str, outside))}"
    assert not logged and not fivexx_metric, f"the API logged 5xx: {logged[:5]}"


def test_slow_clients_are_cut_off(stack: Stack, entry: Entry) -> None:
    """Slow clients: headers and bodies a byte at a time"""
    body_head = b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
    pad = b"a" * 10_000
    slow = [
        Slow(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ", pad),  # headers that never end
        Slow(b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + pad),  # the request line itself, slowly
        Slow(body_head, b" " * 5000),  # a body that never ends
    ]
    threads = [threading.Thread(target=c.run, args=(stack.port,), daemon=True) for c in slow]
    for t in threads:
        t.start()
    # meanwhile everyone else is served at once
    answered = [stack.api.get("/healthz").status_code for _ in range(20)]
    for t in threads:
        t.join(SLOW_BOUND_S + 10)
    entry.inputs["slow clients"] += len(slow)
    bounds = (HEADER_TIMEOUT_S, HEADER_TIMEOUT_S, BODY_TIMEOUT_S)
    rows = []
    for c, bound in zip(slow, bounds, strict=True):
        rows.append(
            [
                repr((c.prefix or c.trickle)[:30]),
                f"{bound:g} s",
                "never" if c.closed_after is None else f"{c.closed_after:.1f} s",
                str(status_of(c.answer) or "no answer"),
            ]
        )
    entry.table(
        f"Slow clients (a byte every 0.5 s; {SLOW_BOUND_S:g} s at most):",
        ["sent first", "configured timeout", "cut off after", "answer"],
        rows,
    )
    assert answered == [200] * 20
    for c, bound in zip(slow, bounds, strict=True):
        assert c.closed_after is not None, f"{c.prefix[:30]!r}: still connected after {SLOW_BOUND_S} s"
        assert c.closed_after <= bound + 5, f"{c.prefix[:30]!r}: cut off only after {c.closed_after:.1f} s"
        status = status_of(c.answer)
        assert status is None or 400 <= status < 500, f"{c.prefix[:30]!r}: answered {c.answer[:200]!r}"
    assert not server_5xx(stack.env.tmp / "api.log.jsonl", allowed=())
