"""Slow clients time out (issue 19, defect 8): a connection that sends its headers a byte at a time, sends
nothing, or trickles its body holds its slot no longer than the configured deadline, then gets a 408
problem+json (or, having asked nothing, is closed). Real sockets against ``python -m docchain.api`` with
DOCCHAIN_HEADER_TIMEOUT_S and DOCCHAIN_BODY_TIMEOUT_S of 1 s; each client trickles for far longer than
that (up to 60 s) and must be answered while it still is. Nothing here asserts a duration: each waits by
polling the socket."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from api_support import Api, Env, new_signer, random_doc, sqlite_only

pytestmark = sqlite_only  # the deadlines are the HTTP server's, ahead of any database

TRICKLE_FOR = 60.0  # how long a client keeps trickling at most: far past the 1 s deadlines


@pytest.fixture(scope="module")
def slow_api(env: Env) -> Iterator[Api]:
    server = env.api(DOCCHAIN_HEADER_TIMEOUT_S="1", DOCCHAIN_BODY_TIMEOUT_S="1").start()
    yield server
    server.stop()


@dataclass
class Outcome:
    answer: bytes  # what the server sent before it closed
    closed: bool  # it closed the connection
    sent: int  # bytes the client had trickled by then
    finished: bool  # the client ran out of bytes to trickle first (the server waited it out)


def trickle(port: int, head: bytes, drip: bytes, interval: float = 0.05) -> Outcome:
    """Send ``head`` at once, then ``drip`` a byte every ``interval`` s, reading whatever the server sends,
    until it closes the connection, or ``drip`` runs out, or TRICKLE_FOR has passed (with nothing to drip,
    the client only reads, for as long)."""
    sock = socket.create_connection(("127.0.0.1", port))
    answer = b""
    sent = 0
    try:
        if head:
            sock.sendall(head)
        for _ in range(int(TRICKLE_FOR / interval)):
            readable, _, _ = select.select([sock], [], [], interval)
            if readable:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    return Outcome(answer, True, sent, False)
                answer += chunk
            elif drip and sent == len(drip):
                return Outcome(answer, False, sent, True)
            elif drip:
                try:
                    sock.sendall(drip[sent : sent + 1])
                except (BrokenPipeError, ConnectionResetError):
                    return Outcome(answer, True, sent, False)
                sent += 1
        return Outcome(answer, False, sent, not drip or sent == len(drip))
    finally:
        sock.close()


def _problem(answer: bytes, status: int) -> dict[str, object]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), answer[:300]
    headers = head.lower()
    assert b"content-type: application/problem+json" in headers, head
    assert b"connection: close" in headers, head
    assert b"x-content-type-options: nosniff" in headers, head
    problem = json.loads(body)
    assert problem["status"] == status
    return problem


def test_headers_sent_a_byte_at_a_time_get_408(slow_api: Api) -> None:
    endless = b"X-Slow: " + b"a" * 5000  # a header that never ends
    outcome = trickle(slow_api.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", endless)
    assert not outcome.finished, "the server waited for the whole trickle"
    assert outcome.closed
    problem = _problem(outcome.answer, 408)
    assert "DOCCHAIN_HEADER_TIMEOUT_S" in str(problem["detail"])


def test_request_line_sent_a_byte_at_a_time_gets_408(slow_api: Api) -> None:
    outcome = trickle(slow_api.port, b"", b"GET /" + b"a" * 5000)
    assert not outcome.finished and outcome.closed
    _problem(outcome.answer, 408)


def test_a_connection_that_sends_nothing_is_closed(slow_api: Api) -> None:
    outcome = trickle(slow_api.port, b"", b"")
    # nothing to drip: the client only reads, for at most the trickle's span
    assert outcome.closed and outcome.answer == b"", outcome


def test_the_next_request_on_a_kept_alive_connection_has_its_own_deadline(slow_api: Api) -> None:
    first = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    outcome = trickle(slow_api.port, first, b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 5000)
    # the first request is answered 200; the trickled second one 408
    assert outcome.answer.startswith(b"HTTP/1.1 200 "), outcome.answer[:200]
    assert not outcome.finished and outcome.closed
    second = outcome.answer[outcome.answer.index(b"HTTP/1.1 408 ") :]
    _problem(second, 408)


def test_a_trickled_body_gets_408(slow_api: Api, env: Env) -> None:
    """The whole head at once, then the body a byte at a time: the app answers 408 once the body deadline
    passes, and ends the connection."""
    _, doc = random_doc()
    body = json.dumps(new_signer().registration(env.domain, doc)).encode()
    head = (
        b"POST /v1/documents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    outcome = trickle(slow_api.port, head, body)
    assert not outcome.finished and outcome.closed
    problem = _problem(outcome.answer, 408)
    assert "DOCCHAIN_BODY_TIMEOUT_S" in str(problem["detail"])
    # nothing was accepted
    assert slow_api.get(f"/v1/documents/0x{doc.hex()}").status_code == 404


def test_a_trickled_multipart_upload_gets_408(slow_api: Api) -> None:
    boundary = b"slowb"
    body = b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n\r\n' + b"z" * 5000
    head = (
        b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=" + boundary + b"\r\n"
        b"Content-Length: 100000\r\n\r\n"
    )
    outcome = trickle(slow_api.port, head, body)
    assert not outcome.finished and outcome.closed
    _problem(outcome.answer, 408)


def test_others_are_served_while_slow_clients_wait(slow_api: Api) -> None:
    """A slow client holds one connection, not the server: requests on other connections are answered, and
    once the slow ones are gone the server is as it was."""
    slow = [socket.create_connection(("127.0.0.1", slow_api.port)) for _ in range(20)]
    try:
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        for _ in range(10):
            assert httpx.get(slow_api.url + "/healthz", timeout=10).status_code == 200
        for sock in slow:  # each is answered 408 and closed
            answer = b""
            sock.settimeout(30)
            while chunk := sock.recv(65536):
                answer += chunk
            _problem(answer, 408)
    finally:
        for sock in slow:
            sock.close()
    assert httpx.get(slow_api.url + "/readyz", timeout=10).status_code == 200


def test_an_answer_before_the_body_ended_is_read_whole_by_a_client_still_sending(slow_api: Api) -> None:
    """A 413 sent while the client still uploads says Connection: close, and the server reads and drops the
    rest for a moment before closing (a lingering close), so the client reads the answer, not a reset."""
    limit = 16 * 1024  # POST /v1/revocations' own limit
    with socket.create_connection(("127.0.0.1", slow_api.port)) as sock:
        sock.sendall(
            b"POST /v1/revocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * 8192
        answer = b""
        for _ in range(64):  # 512 KiB, far past the limit
            try:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                answer += sock.recv(65536)
        sock.settimeout(30)
        try:
            while data := sock.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
    problem = _problem(answer, 413)
    assert str(limit) in str(problem["detail"])


def test_streams_and_long_polls_outlive_the_body_deadline(slow_api: Api, env: Env) -> None:
    """The body deadline is for bodies: a request without one (an event stream, a long-poll) is held as long as
    its answer needs, past DOCCHAIN_BODY_TIMEOUT_S (1 s here)."""
    _, doc = random_doc()
    r = slow_api.post("/v1/documents", json=new_signer().registration(env.domain, doc))
    assert r.status_code == 202, r.text
    sid = r.json()["id"]
    slow_api.wait_state(sid, ("anchored", "confirmed"))
    # a long-poll for a state that does not come: held its 3 s, answered 200
    held = slow_api.get(f"/v1/submissions/{sid}", params={"wait": 3, "until": "confirmed"})
    assert held.status_code == 200 and held.json()["state"] == "anchored", held.text
    # the event stream: its keep-alive comment (every 2 s) comes, then the final event once blocks are mined
    lines: list[str] = []
    with httpx.stream("GET", f"{slow_api.url}/v1/submissions/{sid}/events", timeout=30) as stream:
        assert stream.status_code == 200
        for line in stream.iter_lines():
            lines.append(line)
            if line == ": keep-alive":
                env.anvil.mine(2)
            if line.startswith("data:") and json.loads(line[5:])["state"] == "confirmed":
                break
    assert ": keep-alive" in lines, lines
