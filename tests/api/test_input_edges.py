"""The API's input edges (issue 19): file names of every script and shape, numbers out of range, metadata and
every other field at and over its limit, API keys of any bytes, methods a path lacks. Each row says what
the answer is; a refusal is application/problem+json with a 4xx, never a 500 (on SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from api_support import Api, Env, new_signer, poll, random_doc

from docchain.chain.typed_data import canonical_metadata, metadata_hash

CI_BACKEND = "sqlite"  # at CI size (tests/api/conftest.py); RELIABILITY_SCALE=full runs both

PROBLEM = "application/problem+json"
MAX_INT64 = 2**63 - 1


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"], body
    return body


def _disposition_name(header: str) -> str:
    """The file name a current browser takes from a Content-Disposition: RFC 8187 ``filename*`` (UTF-8)."""
    match = re.search(r"filename\*=UTF-8''([^;]+)", header)
    assert match, header
    header.encode("latin-1")  # a header is Latin-1 on the wire
    fallback = re.search(r'filename="([^"]*)"', header)
    assert fallback and fallback.group(1).isascii(), header
    return unquote(match.group(1), errors="strict")


def _confirmed(api: Api, env: Env, sid: str) -> None:
    """Wait until the submission is anchored, then mine the blocks its confirmation needs (a receipt verifies
    as valid only once confirmed)."""
    api.wait_state(sid, ("anchored", "confirmed"))
    env.anvil.mine(2)

    def confirmed() -> bool:
        body = api.get(f"/v1/submissions/{sid}", params={"wait": 2, "until": "confirmed"}).json()
        return body["state"] == "confirmed"

    poll(confirmed, 30, what=f"submission {sid} confirmed")


def _submit_file(api: Api, env: Env, name: str, via: str) -> tuple[bytes, bytes, str, httpx.Response]:
    content = os.urandom(2048)
    doc = hashlib.sha256(content).digest()
    signer = new_signer()
    body = signer.registration(env.domain, doc)
    if via == "json":  # the name in the JSON, the file part named otherwise
        body["fileName"] = name
        r = api.post("/v1/documents", files={"submission": (None, json.dumps(body)), "file": ("f.bin", content)})
    else:
        r = api.post("/v1/documents", files={"submission": (None, json.dumps(body)), "file": (name, content)})
    return content, doc, signer.address, r


# ---------------------------------------------------------------------------------------------- file names

NAMES = [
    ("cyrillic and chinese", "договор-合同.pdf"),
    ("emoji (4-byte UTF-8)", "report-📄.pdf"),
    ("posix path", "../../etc/passwd"),
    ("windows path", "C:\\Windows\\win.ini"),
    ("unc path", "\\\\server\\share\\x.txt"),
    ("spaces, semicolon, equals, percent", "a b; c=d %41.txt"),
    ("latin-1", "café résumé.txt"),
    ("1024 characters", "n" * 1020 + ".txt"),
]


@pytest.mark.parametrize("via", ["multipart", "json"])
@pytest.mark.parametrize("name", [n for _, n in NAMES], ids=[i for i, _ in NAMES])
def test_file_names_come_back_whole(env: Env, api: Api, name: str, via: str) -> None:
    """Any name is a name: stored as sent, in the receipt as sent (which then verifies), back in the downloads'
    Content-Disposition as sent (filename*), and never a path: the store holds the file under its hash only."""
    content, doc, signer, r = _submit_file(api, env, name, via)
    assert r.status_code == 202, r.text
    _confirmed(api, env, r.json()["id"])

    receipt = api.get(f"/v1/documents/0x{doc.hex()}/receipts/{signer}")
    assert receipt.status_code == 200, receipt.text
    assert receipt.json()["document"]["name"] == name
    assert _disposition_name(receipt.headers["content-disposition"]) == name + ".docchain.json"
    verdict = api.post("/v1/verify", json={"docHash": f"0x{doc.hex()}", "receipt": receipt.json()}).json()
    assert verdict["outcome"] == "valid", verdict

    download = api.get(f"/v1/documents/0x{doc.hex()}/file")
    assert download.status_code == 200 and download.content == content
    assert _disposition_name(download.headers["content-disposition"]) == name

    # the store: files under ab/cd/<sha256> only; nothing named after the submitted name anywhere
    store = env.data_dir / "documents"
    for path in store.rglob("*"):
        if path.is_file():
            assert re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}", path.relative_to(store).as_posix()), path
    leaf = re.split(r"[\\/]", name)[-1]
    assert not [p for p in env.tmp.parent.rglob("*") if p.name == leaf], leaf


def test_file_name_with_a_quote_comes_back_whole(env: Env, api: Api) -> None:
    # (in a multipart header a browser writes " as %22, so this one goes in the JSON)
    name = 'he said "sign"; ok.txt'
    _, doc, signer, r = _submit_file(api, env, name, "json")
    assert r.status_code == 202, r.text
    api.wait_state(r.json()["id"], ("anchored", "confirmed"))
    receipt = api.get(f"/v1/documents/0x{doc.hex()}/receipts/{signer}")
    assert receipt.json()["document"]["name"] == name
    assert _disposition_name(receipt.headers["content-disposition"]) == name + ".docchain.json"


def _raw_multipart(env: Env, disposition: bytes) -> tuple[bytes, bytes, str]:
    """A multipart submission whose file part carries ``disposition`` as its Content-Disposition, verbatim."""
    content, doc = random_doc()
    submission = json.dumps(new_signer().registration(env.domain, doc)).encode()
    boundary = b"edge0boundary"
    body = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="submission"\r\n\r\n' + submission + b"\r\n"
        b"--" + boundary + b"\r\nContent-Disposition: " + disposition + b"\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n" + content + b"\r\n--" + boundary + b"--\r\n"
    )
    return body, doc, "multipart/form-data; boundary=" + boundary.decode()


REFUSED_NAMES = [
    ("1025 characters", lambda: {"fileName": "n" * 1025}, "1024"),
    ("empty", lambda: {"fileName": ""}, "fileName"),
    ("NUL", lambda: {"fileName": "a\u0000b"}, "U+0000"),
    ("tab", lambda: {"fileName": "a\tb"}, "U+0009"),
    ("newline", lambda: {"fileName": "a\nb.txt"}, "U+000A"),
    ("C1 control", lambda: {"fileName": "a\u0085b"}, "U+0085"),
    ("DEL", lambda: {"fileName": "a\u007fb"}, "U+007F"),
]


@pytest.mark.parametrize("name,extra,needle", REFUSED_NAMES, ids=[c[0] for c in REFUSED_NAMES])
def test_refused_json_file_names(env: Env, api: Api, name: str, extra: Any, needle: str) -> None:
    _, doc = random_doc()
    body = {**new_signer().registration(env.domain, doc), **extra()}
    problem = _problem(api.post("/v1/documents", json=body), 422)
    assert needle in problem["detail"] or needle in json.dumps(problem.get("errors")), problem
    assert api.get(f"/v1/documents/0x{doc.hex()}").status_code == 404


MULTIPART_REFUSALS = [
    ("name of 1025 characters", b'form-data; name="file"; filename="' + b"n" * 1025 + b'"', 422, "1024"),
    (
        "name of 1025 Chinese characters",
        b'form-data; name="file"; filename="' + "合".encode() * 1025 + b'"',
        422,
        "1024",
    ),
    ("empty name (a browser's empty file input)", b'form-data; name="file"; filename=""', 422, "no file name"),
    ("no name: a text part", b'form-data; name="file"', 422, "no file name"),
    (
        "only filename*, which RFC 7578 forbids",
        b"form-data; name=\"file\"; filename*=UTF-8''a.txt",
        422,
        "no file name",
    ),
    ("control character in the name", b'form-data; name="file"; filename="a\x01b"', 422, "U+0001"),
]


@pytest.mark.parametrize(
    "disposition,status,needle", [c[1:] for c in MULTIPART_REFUSALS], ids=[c[0] for c in MULTIPART_REFUSALS]
)
def test_refused_multipart_file_parts(env: Env, api: Api, disposition: bytes, status: int, needle: str) -> None:
    """A file part the API cannot store faithfully is refused, with nothing stored or accepted (an empty name
    was dropped without a word, a long one was a 500 on PostgreSQL and an unverifiable receipt on SQLite)."""
    body, doc, content_type = _raw_multipart(env, disposition)
    problem = _problem(api.post("/v1/documents", content=body, headers={"content-type": content_type}), status)
    assert needle in problem["detail"], problem
    assert api.get(f"/v1/documents/0x{doc.hex()}").status_code == 404
    assert api.get(f"/v1/documents/0x{doc.hex()}/file").status_code == 404


def test_a_multipart_body_cut_short_is_refused(env: Env, api: Api) -> None:
    """A body that ends before its closing boundary lost the part it was in (python-multipart drops it without
    a word: the submission was accepted without its file). Refused, nothing accepted; with its closing
    boundary, or an epilogue after it, the same body is accepted."""
    body, doc, content_type = _raw_multipart(env, b'form-data; name="file"; filename="a.pdf"')
    cut = body[: body.rindex(b"\r\n--edge0boundary--")]
    problem = _problem(api.post("/v1/documents", content=cut, headers={"content-type": content_type}), 422)
    assert "closing boundary" in problem["detail"]
    assert api.get(f"/v1/documents/0x{doc.hex()}").status_code == 404
    r = api.post("/v1/documents", content=body + b"an epilogue\r\n", headers={"content-type": content_type})
    assert r.status_code == 202, r.text
    assert api.get(f"/v1/submissions/{r.json()['id']}").json()["stored"] is True


def test_windows_path_as_sent_in_a_raw_header(env: Env, api: Api) -> None:
    """python-multipart keeps only what follows the last backslash of "C:\\..." (for IE6): the API reads the
    header itself and keeps the name whole, as sent unescaped (a browser's way)."""
    body, doc, content_type = _raw_multipart(env, b'form-data; name="file"; filename="C:\\dir\\x.txt"')
    r = api.post("/v1/documents", content=body, headers={"content-type": content_type})
    assert r.status_code == 202, r.text
    api.wait_state(r.json()["id"], ("anchored", "confirmed"))
    download = api.get(f"/v1/documents/0x{doc.hex()}/file")
    assert _disposition_name(download.headers["content-disposition"]) == "C:\\dir\\x.txt"


# ---------------------------------------------------------------------------------------------- numbers

OUT_OF_RANGE = [
    ("/v1/explorer/blocks/-1", {}, 422),
    ("/v1/explorer/blocks/123456789012345678901234567890", {}, 422),
    (f"/v1/explorer/blocks/{MAX_INT64 + 1}", {}, 422),
    (f"/v1/explorer/blocks/{MAX_INT64}", {}, 404),
    ("/v1/explorer/blocks/1e400", {}, 422),
    ("/v1/explorer/blocks/NaN", {}, 422),
    ("/v1/explorer/blocks", {"limit": "1e400"}, 422),
    ("/v1/explorer/blocks", {"limit": "-1"}, 422),
    ("/v1/explorer/blocks", {"limit": "9" * 30}, 422),
    ("/v1/explorer/signers/0x" + "11" * 20, {"limit": str(2**64)}, 422),
    ("/v1/documents", {"since": "9" * 30}, 422),
    ("/v1/documents", {"since": str(MAX_INT64 + 1)}, 422),
    ("/v1/documents", {"since": str(MAX_INT64)}, 200),
    ("/v1/documents", {"until": "9" * 5000}, 422),
    ("/v1/documents", {"since": "²"}, 422),  # a digit to str.isdigit, not to int()
    ("/v1/documents", {"since": "٣"}, 422),  # an Arabic-Indic digit
    ("/v1/documents", {"since": "-1"}, 422),
    ("/v1/documents", {"since": "0001-01-01T00:00:00"}, 422),
    ("/v1/documents", {"until": "9999-12-31T23:59:59Z"}, 200),
    ("/v1/documents", {"since": "2026-13-45"}, 422),
    ("/v1/documents", {"cursor": "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5"}, 422),  # base64 of 27 nines
    ("/v1/documents", {"cursor": "LTE"}, 422),  # base64 of "-1"
    ("/v1/documents", {"cursor": "MA"}, 422),  # base64 of "0"
    ("/v1/documents", {"cursor": "A" * 5000}, 422),
    ("/v1/documents", {"cursor": "2LM"}, 422),  # base64 of an Arabic-Indic digit
    ("/v1/documents", {"limit": "1e400"}, 422),
    ("/v1/documents", {"limit": "501"}, 422),
    ("/v1/submissions/0190c3aa", {"wait": "1e400"}, 422),
    ("/v1/submissions/0190c3aa", {"wait": "nan"}, 422),
    ("/v1/submissions/0190c3aa", {"wait": "inf"}, 422),
    ("/v1/submissions/0190c3aa", {"wait": "-1"}, 422),
    ("/v1/submissions/%00", {}, 404),  # PostgreSQL refuses a NUL in text: it must not get there
    ("/v1/submissions/" + "a" * 5000, {}, 404),
    ("/v1/submissions/%00/events", {}, 404),
]


@pytest.mark.parametrize("path,params,status", OUT_OF_RANGE, ids=[f"{p[:40]} {q}"[:70] for p, q, _ in OUT_OF_RANGE])
def test_numbers_and_ids_out_of_range(api: Api, path: str, params: dict[str, str], status: int) -> None:
    r = api.get(path, params=params)
    if status == 200:
        assert r.status_code == 200, r.text
    else:
        _problem(r, status)


# ---------------------------------------------------------------------------------------------- field limits

METADATA_LIMIT = 16 * 1024  # DOCCHAIN_MAX_METADATA_BYTES's default


def _with_metadata(env: Env, metadata: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    _, doc = random_doc()
    body = new_signer().registration(env.domain, doc, metadata_hash=metadata_hash(metadata))
    return {**body, "metadata": metadata}, doc


def test_metadata_limit_is_its_canonical_json(env: Env, api: Api) -> None:
    """16 KiB of canonical JSON is accepted, a byte more is 413 and nothing is stored (60 MiB was accepted, and
    the SQLite WAL grew to 514 MB)."""
    at_limit = {"note": "x" * (METADATA_LIMIT - len('{"note":""}'))}
    assert len(canonical_metadata(at_limit).encode()) == METADATA_LIMIT
    body, doc = _with_metadata(env, at_limit)
    assert api.post("/v1/documents", json=body).status_code == 202
    assert api.get(f"/v1/documents/0x{doc.hex()}").json()["signers"][0]["metadata"] == at_limit

    over = {"note": "x" * (METADATA_LIMIT - len('{"note":""}') + 1)}
    body, doc = _with_metadata(env, over)
    problem = _problem(api.post("/v1/documents", json=body), 413)
    assert problem["limit"] == METADATA_LIMIT and "DOCCHAIN_MAX_METADATA_BYTES" in problem["detail"]
    assert api.get(f"/v1/documents/0x{doc.hex()}").status_code == 404

    # the limit is on the canonical form: the same metadata sent with every character escaped is accepted
    escaped = {"note": "é" * ((METADATA_LIMIT - len('{"note":""}')) // 2)}
    body, doc = _with_metadata(env, escaped)
    text = json.dumps(body, ensure_ascii=True)  # 6 bytes on the wire for each 2 of canonical UTF-8
    r = api.post("/v1/documents", content=text, headers={"content-type": "application/json"})
    assert r.status_code == 202, r.text

    # in a multipart submission too
    body, doc = _with_metadata(env, over)
    r = api.post("/v1/documents", files={"submission": (None, json.dumps(body)), "file": ("f", b"x")})
    assert _problem(r, 413)["limit"] == METADATA_LIMIT


def test_huge_submission_is_refused_before_it_is_read(env: Env, api: Api) -> None:
    """A JSON submission bigger than any valid one (160 KiB with the default metadata limit) is 413 from its
    Content-Length, and so is one that streams without it; a multipart 'submission' field alike."""
    _, doc = random_doc()
    body = new_signer().registration(env.domain, doc)
    huge = json.dumps({**body, "metadata": {"blob": "x" * (60 * 1024 * 1024 // 100)}})  # 600 KiB
    _problem(api.post("/v1/documents", content=huge, headers={"content-type": "application/json"}), 413)

    def chunks() -> Any:
        for i in range(0, len(huge), 65536):
            yield huge[i : i + 65536].encode()

    _problem(api.post("/v1/documents", content=chunks(), headers={"content-type": "application/json"}), 413)
    r = api.post("/v1/documents", files={"submission": (None, huge), "file": ("f", b"x")})
    assert "multipart text field" in _problem(r, 413)["detail"]
    assert api.get(f"/v1/documents/0x{doc.hex()}").status_code == 404


FIELDS = [
    ("fileSize 2^53", {"fileSize": 2**53}, 422, "fileSize"),
    ("fileSize 2^64", {"fileSize": 2**64}, 422, "fileSize"),
    ("fileSize -1", {"fileSize": -1}, 422, "fileSize"),
    ("fileSize 1e400", {"fileSize": float("inf")}, 422, "fileSize"),
    ("signature of 4097 bytes", {"signature": "0x" + "11" * 4097}, 422, "4096"),
    ("deadline of 80 digits", {"registration": {"deadline": "9" * 80}}, 422, "deadline"),
    ("deadline 2^256", {"registration": {"deadline": str(2**256)}}, 422, "deadline"),
    ("metadata not an object", {"metadata": [1, 2]}, 422, "metadata"),
    ("metadata nested 300 deep", {"metadata": {"a": json.loads("[" * 300 + "]" * 300)}}, 422, ""),
]


@pytest.mark.parametrize("name,change,status,needle", FIELDS, ids=[f[0] for f in FIELDS])
def test_other_field_limits(env: Env, api: Api, name: str, change: dict[str, Any], status: int, needle: str) -> None:
    _, doc = random_doc()
    body = new_signer().registration(env.domain, doc)
    for key, value in change.items():
        body[key] = {**body[key], **value} if key == "registration" else value
    text = json.dumps(body).replace("Infinity", "1e400")
    r = api.post("/v1/documents", content=text, headers={"content-type": "application/json"})
    problem = _problem(r, status)
    assert needle in problem["detail"] or needle in json.dumps(problem.get("errors")), problem


def test_largest_file_size_a_receipt_holds_is_accepted(env: Env, api: Api) -> None:
    _, doc = random_doc()
    body = {**new_signer().registration(env.domain, doc), "fileSize": 2**53 - 1}
    assert api.post("/v1/documents", json=body).status_code == 202


def test_revocation_and_verify_bodies_have_their_limits(env: Env, api: Api) -> None:
    big = json.dumps({"revocation": {"docHash": "0x" + "00" * 32, "pad": "x" * 20000}, "signature": "0x"})
    problem = _problem(api.post("/v1/revocations", content=big, headers={"content-type": "application/json"}), 413)
    assert problem["limit"] == 16 * 1024

    def chunks() -> Any:  # no Content-Length: refused while streaming, still as a 413 (FastAPI made it a 400)
        yield big[:10000].encode()
        yield big[10000:].encode()

    _problem(api.post("/v1/revocations", content=chunks(), headers={"content-type": "application/json"}), 413)
    # verify reads its JSON as receipts are read, with its own bound (256 KiB: four times a receipt's)
    verify = json.dumps({"docHash": "0x" + "00" * 32, "receipt": "x" * 300_000})
    r = api.post("/v1/verify", content=verify, headers={"content-type": "application/json"})
    assert _problem(r, 413)["limit"] == 256 * 1024


ENVELOPE_ROUTES = [
    "/v1/envelopes",
    *(f"/v1/envelopes/0x{'ab' * 32}/{action}" for action in ("sign", "decline", "void", "webhooks", "invitations")),
]


@pytest.mark.parametrize("path", ENVELOPE_ROUTES)
def test_envelope_bodies_have_their_limit(api: Api, path: str) -> None:
    big = json.dumps({"request": {"pad": "x" * 70_000}, "signature": "0x"})
    problem = _problem(api.post(path, content=big, headers={"content-type": "application/json"}), 413)
    assert problem["limit"] == 64 * 1024


@pytest.mark.parametrize(
    ("path", "depth"),
    # each as deep as the route's body limit lets it be, at two bytes a level
    [("/v1/documents", 100_000), ("/v1/verify", 100_000), ("/v1/revocations", 8_000), (ENVELOPE_ROUTES[0], 30_000)],
)
def test_json_nested_too_deep_is_refused_and_the_server_stays_up(api: Api, path: str, depth: int) -> None:
    """Past the recursion limit the JSON parser raises; with the 100,000 a dependency (py_ecc) sets at import, the
    C stack overflowed first and the process died (SIGSEGV)."""
    deep = "[" * depth + "]" * depth
    r = api.post(path, content=deep, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith(PROBLEM)
    assert api.get("/healthz").status_code == 200


def _raw(api: Api, request: bytes) -> bytes:
    """Send ``request`` on a new connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", api.port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_request_head_limits_and_garbage(api: Api) -> None:
    """Headers over 32 KiB in all are 431, a request line httptools cannot parse is 400: both problem+json with
    the security headers, and the connection closed."""
    answer = _raw(api, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 40_000 + b"\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), head
    assert b"content-type: application/problem+json" in head and b"x-content-type-options: nosniff" in head
    assert json.loads(body)["status"] == 431

    answer = _raw(api, b"GARBAGE\x00 / HTTP/1.1\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert json.loads(body)["type"].endswith("/bad-request")

    # many small headers under the bound are fine
    headers = "".join(f"X-H{i}: {'v' * 100}\r\n" for i in range(200))
    answer = _raw(api, f"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


def test_methods_a_path_lacks_are_405_with_allow(api: Api) -> None:
    cases = [
        ("DELETE", "/v1/documents", "GET, POST"),
        ("GET", "/v1/verify", "POST"),
        ("GET", "/v1/revocations", "POST"),
        ("PUT", "/healthz", "GET"),
        ("TRACE", "/v1/explorer/blocks/1", "GET"),
        ("POST", "/index.html", "GET, HEAD"),
    ]
    for method, path, allow in cases:
        r = api.client.request(method, path)
        _problem(r, 405)
        assert r.headers["allow"] == allow, (method, path, r.headers.get("allow"))


def test_api_keys_of_any_bytes(env: Env) -> None:
    """A key header with bytes outside ASCII is 401 like any wrong key (compare_digest raised on it: 500)."""
    server = env.api(DOCCHAIN_API_KEYS="k1,clé").start()
    try:
        _, doc = random_doc()
        body = new_signer().registration(env.domain, doc)
        for given in (b"\xe9", b"k\xff1", "clé".encode("latin-1"), b"\xc3\xa9\x80"):
            _problem(server.post("/v1/documents", json=body, headers={"X-API-Key": given}), 401)
            _problem(server.post("/v1/documents", json=body, headers={"Authorization": b"Bearer " + given}), 401)
        # a key outside ASCII works when sent as its UTF-8 bytes
        r = server.post("/v1/documents", json=body, headers={"X-API-Key": "clé".encode()})
        assert r.status_code == 202, r.text
    finally:
        server.stop()


def _compact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


def _of_size(receipt: dict[str, Any], size: int) -> dict[str, Any]:
    """``receipt`` with an evidence section of the reader's form whose compact JSON makes it exactly ``size``
    bytes: its account proof is filled with trie nodes of at most 1,024 bytes (64 at most), and its code too for
    a large ``size``, every field in its bounds. The service's online verdict does not read the evidence: only
    the size can refuse it."""
    evidence = {
        "block": {"number": 1, "hash": "0x" + "11" * 32, "header": "0xc0"},
        "account": {"address": receipt["contract"], "proof": [], "code": "0x00"},
        "storage": [{"slot": "0x" + "22" * 32, "proof": []}],
    }
    padded = {**receipt, "evidence": evidence}
    # n nodes of h_i hex digits add sum(h_i) + 4n ("0x" and quotes) + n - 1 (commas): sum(h_i) even, each
    # h_i at most 2,048 (two more nodes than the fewest leave room to share the digits evenly)
    if size - _compact(padded) > 60 * 2053:  # more than the nodes hold: the code at its longest first
        evidence["account"]["code"] = "0x" + "00" * 24576  # type: ignore[index]
    need = size - _compact(padded)
    n = -(-need // 2053) + 2
    n += (need - 5 * n + 1) % 2
    digits = need - 5 * n + 1
    each = digits // n // 2 * 2
    lengths = [each] * (n - 1) + [digits - each * (n - 1)]
    assert n <= 64 and max(lengths) <= 2048
    evidence["account"]["proof"] = ["0x" + "ab" * (h // 2) for h in lengths]  # type: ignore[index]
    assert _compact(padded) == size, (_compact(padded), size)
    return padded


def test_a_receipt_over_64_kib_is_refused_as_an_object_as_it_is_as_text(env: Env, api: Api) -> None:
    """The receipt's 64 KiB bound holds however the receipt is sent to POST /v1/verify: as text the strict reader
    measures it as written; as a JSON object, by its compact JSON (no file holding it can be smaller). Over the
    bound, the object gets the very answer its text gets (a verdict failed at step receipt); at the bound, it is
    read as any receipt."""
    signer = new_signer()
    _, doc = random_doc()
    r = api.post("/v1/documents", json=signer.registration(env.domain, doc))
    assert r.status_code == 202, r.text
    _confirmed(api, env, r.json()["id"])
    receipt = api.get(f"/v1/documents/0x{doc.hex()}/receipts/{signer.address}").json()
    receipt.pop("evidence", None)
    question = {"docHash": f"0x{doc.hex()}"}

    def verify(sent: dict[str, Any] | str) -> dict[str, Any]:
        r = api.post("/v1/verify", json={**question, "receipt": sent})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    at_bound = verify(_of_size(receipt, 64 * 1024))
    assert at_bound["outcome"] == "valid", at_bound
    over = _of_size(receipt, 64 * 1024 + 1)
    as_object, as_text = verify(over), verify(json.dumps(over, separators=(",", ":")))
    assert as_object == as_text
    assert (as_object["outcome"], as_object["failedStep"]) == ("invalid", "receipt"), as_object
    assert as_object["reason"] == "receipt is larger than 65536 bytes"
    # the auditor's case: every field in its bounds, 149,807 bytes in all
    large = verify(_of_size(receipt, 149_807))
    assert (large["failedStep"], large["reason"]) == ("receipt", "receipt is larger than 65536 bytes"), large
