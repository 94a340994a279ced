"""Envelope notifications end to end: envelopes created and signed directly on chain (chain/envelopes_contract.py,
so these tests need none of the API's envelope routes), the API (a real process, its pipeline in a child) indexing
them, and real receivers: an SSE client, HTTP webhook receivers on 127.0.0.1, an aiosmtpd SMTP server. One API for
the module; the restart case replaces it, and the reorg case, which rewinds the session's node past its own
blocks only, comes last."""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, create_engine, insert, text
from web3 import HTTPProvider, Web3

from docchain.api.db import Database, EnvelopeActionRow
from docchain.api.notifications import store as notifications
from docchain.api.notifications.delivery import DeliveryFailed, DeliveryWorker
from docchain.api.notifications.model import (
    ChangeKind,
    ContactTaken,
    Delivery,
    DeliveryKind,
    DeliveryState,
    EnvelopeChange,
    IndexedEvent,
    MailTooSoon,
    Webhook,
    WebhookExists,
    WebhooksFull,
    WebhookTarget,
    check_webhook_url,
    retry_delay,
    signature,
)
from docchain.api.notifications.store import NotificationStore
from docchain.api.settings import Settings
from docchain.chain import envelopes as env
from docchain.chain.envelopes_contract import Envelopes
from docchain.chain.errors import InvalidInput
from docchain.chain.registry import SignedRegistration
from docchain.chain.sender import TxSender
from docchain.chain.typed_data import Registration, address_of, sign
from tests.api.api_support import Api, Env, PostgresCluster
from tests.support import free_port, poll

API_KEY = "notifications-test-key"
OTHER_KEY = "another-client-key"
MAIL_INTERVAL_S = 2.0  # DOCCHAIN_MAIL_INTERVAL_S of the module's API: long enough to see a 429, short to wait out
PAGE = "https://docchain.example/"
HOUR = 3600


# ---------------------------------------------------------------------------------------------- receivers


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1 that answers ``fail_first`` requests 500, then 204."""

    port: int
    fail_first: int = 0
    calls: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append(Received(time.monotonic(), {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(500 if len(receiver.calls) <= receiver.fail_first else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class Mailbox:
    """What a real SMTP server (aiosmtpd) on 127.0.0.1 received."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        self.messages.append(message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


# ---------------------------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    """The module's API (replaced by the restart case), the envelopes contract with a funded key, the SMTP server."""

    env: Env
    api: Api
    envelopes: Envelopes
    mailbox: Mailbox
    smtp_port: int
    engine: Engine  # the API's database, read directly

    def headers(self) -> dict[str, str]:
        return {"X-API-Key": API_KEY}

    def start_api(self, **overrides: str) -> Api:
        settings = {
            "DOCCHAIN_API_KEYS": f"{API_KEY},{OTHER_KEY}",
            "DOCCHAIN_MAIL_INTERVAL_S": str(MAIL_INTERVAL_S),
            "DOCCHAIN_WEBHOOK_ALLOW_PRIVATE": "true",
            "DOCCHAIN_PUBLIC_URL": PAGE,
            "DOCCHAIN_SMTP_HOST": "127.0.0.1",
            "DOCCHAIN_SMTP_PORT": str(self.smtp_port),
            "DOCCHAIN_SMTP_FROM": "docchain@example.org",
            "DOCCHAIN_SMTP_STARTTLS": "false",
            "DOCCHAIN_HEAD_POLL_MS": "100",  # new blocks seen at once, not within the idle 2 s
            **overrides,
        }
        self.api = self.env.api(**settings).start()
        return self.api

    def changes(self, envelope_id: str) -> list[tuple[str, str | None, bool]]:
        """(kind, signer, removed) of the envelope's changes as the database holds them."""
        query = text("SELECT kind, signer, removed FROM envelope_changes WHERE envelope_id = :e ORDER BY id")
        with self.engine.connect() as conn:
            return [(k, s, bool(r)) for k, s, r in conn.execute(query, {"e": envelope_id})]


class Requested:
    """An envelope request and its requester's key, not yet on chain."""

    def __init__(self, stack: Stack, signers: list[bytes], *, ordered: bool = True) -> None:
        self.key = os.urandom(32)
        self.request = env.EnvelopeRequest(
            doc_hash=os.urandom(32),
            requester=address_of(self.key),
            signers=tuple(address_of(k) for k in signers),
            ordered=ordered,
            deadline=0,
            salt=env.new_salt(),
            request_deadline=int(time.time()) + HOUR,
        )
        self.stack = stack
        self.id = "0x" + env.envelope_id(stack.envelopes.domain, self.request).hex()

    def create(self) -> None:
        envelopes = self.stack.envelopes
        envelopes.create(self.request, env.sign(envelopes.domain, self.request, self.key))

    def create_indexed(self) -> None:
        self.create()
        poll(lambda: ("created", None, False) in self.stack.changes(self.id), 20, what="the creation indexed")

    def sign(self, key: bytes) -> None:
        reg = Registration(doc_hash=self.request.doc_hash, signer=address_of(key), deadline=int(time.time()) + HOUR)
        signed = SignedRegistration(reg, sign(self.stack.env.domain, reg, key))
        self.stack.envelopes.sign(bytes.fromhex(self.id[2:]), signed)


def _sync_url(url: str) -> str:
    return url.replace("sqlite+aiosqlite", "sqlite").replace("postgresql+asyncpg", "postgresql+psycopg")


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite alone: the notification tables' statements are the same on both databases (the module passed on
    PostgreSQL too, in 50 s more), and the suite's time is short."""
    return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'docchain.db'}"


@pytest.fixture(scope="module")
def stack(env: Env) -> Iterator[Stack]:
    assert env.deployment.envelopes is not None
    w3 = Web3(HTTPProvider(env.anvil.url))
    # a key of its own: the API's relayer (anvil's first key) sends its own transactions meanwhile
    sender_key = os.urandom(32)
    w3.provider.make_request("anvil_setBalance", [address_of(sender_key), hex(10**20)])  # type: ignore[arg-type]
    envelopes = Envelopes(w3, env.deployment.envelopes.address, TxSender(w3, sender_key))
    mailbox = Mailbox()
    smtp_port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    engine = create_engine(_sync_url(env.database_url))
    stack = Stack(env, None, envelopes, mailbox, smtp_port, engine)  # type: ignore[arg-type]
    stack.start_api()
    yield stack
    stack.api.stop()
    controller.stop()
    engine.dispose()


def _events(response: httpx.Response, count: int) -> list[tuple[int, dict[str, Any]]]:
    """The next ``count`` ``envelope`` events of a server-sent event stream: (id, data)."""
    out: list[tuple[int, dict[str, Any]]] = []
    event_id, kind = 0, ""
    deadline = time.monotonic() + 30  # keep-alive comments keep the read timeout from firing
    for line in response.iter_lines():
        assert time.monotonic() < deadline, f"only {out} within 30 s"
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind == "envelope":
            out.append((event_id, json.loads(line[6:])))
            if len(out) == count:
                return out
    raise AssertionError(f"the stream ended after {out}")


# ---------------------------------------------------------------------------------------------- SSE


def test_an_event_stream_follows_an_envelope_to_completion(stack: Stack) -> None:
    alice, bob = os.urandom(32), os.urandom(32)
    envelope = Requested(stack, [alice, bob])
    url = f"{stack.api.url}/v1/envelopes/{envelope.id}/events"
    with httpx.stream("GET", url, timeout=20) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        envelope.create()
        envelope.sign(alice)
        envelope.sign(bob)
        events = _events(response, 4)
    kinds = [(data["kind"], data["signer"]) for _, data in events]
    assert kinds == [
        ("created", None),
        ("signed", address_of(alice)),
        ("signed", address_of(bob)),
        ("completed", None),
    ]
    assert all(data["envelopeId"] == envelope.id and data["removed"] is False for _, data in events)
    ids = [i for i, _ in events]
    assert ids == sorted(ids) and len(set(ids)) == 4
    # the last signature's transaction completed the envelope
    assert events[2][1]["transactionHash"] == events[3][1]["transactionHash"]

    # a client that reconnects with Last-Event-ID gets what followed, and only that
    with httpx.stream("GET", url, headers={"Last-Event-ID": str(ids[1])}, timeout=20) as response:
        assert [data["kind"] for _, data in _events(response, 2)] == ["signed", "completed"]

    found = stack.api.get(f"/v1/documents/0x{envelope.request.doc_hash.hex()}/envelopes").json()
    assert found == {"docHash": f"0x{envelope.request.doc_hash.hex()}", "envelopes": [envelope.id]}


# ---------------------------------------------------------------------------------------------- webhooks


def test_a_webhook_that_fails_twice_gets_the_same_delivery_three_times(stack: Stack) -> None:
    receiver = Receiver(free_port(), fail_first=2).start()
    try:
        alice = os.urandom(32)
        envelope = Requested(stack, [alice, os.urandom(32)])
        envelope.create_indexed()
        answer = stack.api.post(
            f"/v1/envelopes/{envelope.id}/webhooks", json={"url": receiver.url}, headers=stack.headers()
        )
        assert answer.status_code == 201, answer.text
        hook = answer.json()
        assert hook["url"] == receiver.url and len(hook["secret"]) == 64
        envelope.sign(alice)  # one change: signed
        poll(lambda: len(receiver.calls) >= 3, 20, what="the third delivery")
    finally:
        receiver.stop()
    calls = receiver.calls
    assert len(calls) == 3  # acknowledged by the third: not called again
    assert len({c.headers["x-docchain-delivery"] for c in calls}) == 1
    assert len({c.body for c in calls}) == 1
    for call in calls:
        expected = "sha256=" + hmac.new(hook["secret"].encode(), call.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(call.headers["x-docchain-signature"], expected)
        assert call.headers["content-type"] == "application/json"
    body = json.loads(calls[0].body)
    assert body["envelopeId"] == envelope.id and body["kind"] == "signed" and body["signer"] == address_of(alice)
    assert body["removed"] is False
    first_gap, second_gap = calls[1].at - calls[0].at, calls[2].at - calls[1].at
    assert 0.9 <= first_gap < second_gap  # 1 s, then 2 s


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("ftp://127.0.0.1/hook", 422),
        ("http:///no-host", 422),
        ("not a url", 422),
        ("http://user:secret@127.0.0.1/hook", 422),
        ("http://127.0.0.1:99999/hook", 422),
        ("http://127.0.0.1/" + "x" * 2100, 422),
    ],
)
def test_bad_webhook_urls_are_refused(stack: Stack, url: str, status: int) -> None:
    answer = stack.api.post(f"/v1/envelopes/0x{'ab' * 32}/webhooks", json={"url": url}, headers=stack.headers())
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_webhook_needs_the_api_key_and_an_envelope_id(stack: Stack) -> None:
    body = {"url": "http://127.0.0.1/hook"}
    assert stack.api.post(f"/v1/envelopes/0x{'ab' * 32}/webhooks", json=body).status_code == 401
    assert stack.api.post("/v1/envelopes/0x1234/webhooks", json=body, headers=stack.headers()).status_code == 422
    assert stack.api.get("/v1/envelopes/0x1234/events").status_code == 422
    too_far = {"Last-Event-ID": str(2**31)}  # past a change id's 32 bits
    assert stack.api.get(f"/v1/envelopes/0x{'ab' * 32}/events", headers=too_far).status_code == 422


def test_webhooks_are_one_per_url_capped_per_envelope_and_for_known_envelopes_only(stack: Stack) -> None:
    """One URL registered many times would be called as many times per change (the service as an amplifier):
    a repeat is refused, and an envelope has at most DOCCHAIN_WEBHOOKS_PER_ENVELOPE (8) webhooks."""
    receiver = Receiver(free_port()).start()
    try:
        envelope = Requested(stack, [os.urandom(32)])
        hooks = f"/v1/envelopes/{envelope.id}/webhooks"
        unknown = stack.api.post(hooks, json={"url": receiver.url}, headers=stack.headers())
        assert unknown.status_code == 404, unknown.text  # neither on chain nor accepted by the service
        envelope.create_indexed()
        first = stack.api.post(hooks, json={"url": receiver.url}, headers=stack.headers())
        assert first.status_code == 201, first.text
        again = stack.api.post(hooks, json={"url": receiver.url}, headers={"X-API-Key": OTHER_KEY})
        assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
        assert again.json()["webhook"] == first.json()["id"] and "secret" not in again.text
        assert first.json()["secret"] not in again.text
        for n in range(1, 8):
            url = f"{receiver.url}?n={n}"
            assert stack.api.post(hooks, json={"url": url}, headers=stack.headers()).status_code == 201
        full = stack.api.post(hooks, json={"url": f"{receiver.url}?n=8"}, headers=stack.headers())
        assert full.status_code == 409 and full.json()["limit"] == 8, full.text
        assert "too-many-webhooks" in full.json()["type"]
        with stack.engine.connect() as conn:
            count = text("SELECT count(*) FROM envelope_webhooks WHERE envelope_id = :e")
            assert conn.execute(count, {"e": envelope.id}).scalar_one() == 8
    finally:
        receiver.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/",
        "https://10.1.2.3/",
        "http://[::1]/",
        "http://169.254.169.254/",
    ],
)
def test_private_and_loopback_webhooks_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(InvalidInput, match="private or loopback"):
        asyncio.run(check_webhook_url(url, allow_private=False))
    assert asyncio.run(check_webhook_url(url, allow_private=True)) == WebhookTarget(url)  # allowed: nothing pinned


@pytest.mark.parametrize(
    ("url", "address", "connect", "host", "sni"),
    [
        (
            "https://hooks.example/a?b=1",
            "93.184.216.34",
            "https://93.184.216.34/a?b=1",
            "hooks.example",
            "hooks.example",
        ),  # noqa: E501
        ("http://hooks.example:8080/a", "2606:2800::1", "http://[2606:2800::1]:8080/a", "hooks.example:8080", None),
    ],
)
def test_a_checked_webhook_connects_to_the_address_checked(
    url: str, address: str, connect: str, host: str, sni: str | None
) -> None:
    """The call goes to the address the check saw, the name kept for Host and for the certificate (TLS server
    name): resolving the name again when connecting could reach another address (DNS rebinding)."""
    got, headers, extensions = WebhookTarget(url, address).request()
    assert (got, headers, extensions.get("sni_hostname")) == (connect, {"Host": host}, sni)


def test_a_pinned_call_reaches_the_address_under_the_url_s_name() -> None:
    """httpx connects to the pinned address though the URL's name resolves nowhere, and the receiver sees the name."""
    receiver = Receiver(free_port()).start()
    try:
        target = WebhookTarget(f"http://hooks.invalid:{receiver.port}/hook", "127.0.0.1")
        url, headers, extensions = target.request()
        with httpx.Client(timeout=5) as client:
            response = client.post(url, content=b"{}", headers=headers, extensions=extensions)
        assert response.status_code == 204
        assert [c.headers["host"] for c in receiver.calls] == [f"hooks.invalid:{receiver.port}"]
    finally:
        receiver.stop()


def test_a_webhook_that_now_resolves_to_a_private_address_is_not_called(tmp_path: Path) -> None:
    """Checked again at delivery, not only at registration: a host may resolve elsewhere by then (DNS rebinding)."""
    receiver = Receiver(free_port()).start()
    settings = Settings(_env_file=None, data_dir=tmp_path, webhook_allow_private=False)  # type: ignore[call-arg]
    worker = DeliveryWorker(Database(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"), settings)
    change = EnvelopeChange(1, "0x" + "ab" * 32, ChangeKind.CREATED, None, 5, "0x" + "cd" * 32, False)
    hook = Webhook("w1", change.envelope_id, receiver.url, "secret")
    delivery = Delivery("d1", DeliveryKind.WEBHOOK, change.envelope_id, 0, hook, change, None, None, None)

    async def call() -> None:
        async with httpx.AsyncClient() as client:
            await worker._call(client, delivery)

    try:
        with pytest.raises(DeliveryFailed, match="private or loopback"):
            asyncio.run(call())
        assert receiver.calls == []
    finally:
        receiver.stop()


def test_the_signature_and_the_retry_schedule() -> None:
    change = EnvelopeChange(7, "0x" + "ab" * 32, ChangeKind.SIGNED, "0x" + "12" * 20, 9, "0x" + "cd" * 32, False)
    body = change.body()
    assert json.loads(body) == {
        "envelopeId": "0x" + "ab" * 32,
        "kind": "signed",
        "signer": "0x" + "12" * 20,
        "blockNumber": 9,
        "transactionHash": "0x" + "cd" * 32,
        "removed": False,
    }
    assert signature("key", body) == "sha256=" + hmac.new(b"key", body, hashlib.sha256).hexdigest()
    delays = [retry_delay(n) for n in range(1, 17)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0] and delays[12:15] == [3600.0, 3600.0, 3600.0]
    assert delays[15] is None  # the 16th failure gives up


# ---------------------------------------------------------------------------------------------- e-mail


def test_an_invitation_and_a_reminder_arrive_with_the_signing_link(stack: Stack) -> None:
    alice, bob = os.urandom(32), os.urandom(32)
    envelope = Requested(stack, [alice, bob])
    envelope.create()
    doc = f"0x{envelope.request.doc_hash.hex()}"
    poll(lambda: stack.api.get(f"/v1/documents/{doc}/envelopes").json()["envelopes"], 20, what="the envelope indexed")
    invitations = [
        {"signer": address_of(alice), "email": "alice@example.org"},
        {"signer": address_of(bob), "email": "bob@example.org"},
    ]
    answer = stack.api.post(
        f"/v1/envelopes/{envelope.id}/invitations", json={"invitations": invitations}, headers=stack.headers()
    )
    assert answer.status_code == 202, answer.text
    invited = time.monotonic()
    assert answer.json()["recipients"] == [address_of(alice), address_of(bob)]
    # (the header's value is folded onto a line of its own: 87 characters are past the 78 RFC 5322 recommends)
    mine = lambda: [m for m in stack.mailbox.messages if str(m["X-Docchain-Envelope"]).strip() == envelope.id]  # noqa: E731
    poll(lambda: len(mine()) == 2, 20, what="two invitations")
    for message, key, name in zip(sorted(mine(), key=lambda m: m["To"]), [alice, bob], ["alice", "bob"], strict=True):
        assert message["To"] == f"{name}@example.org"
        assert message["From"] == "docchain@example.org"
        link = f"{PAGE}#/envelope/{envelope.id}?signer={address_of(key)}"
        assert link in message.get_payload(decode=True).decode()  # type: ignore[union-attr]

    # alice signs: an ordered envelope waits for bob, and only bob is reminded
    envelope.sign(alice)
    poll(lambda: ("signed", address_of(alice), False) in stack.changes(envelope.id), 20, what="alice's signature")
    time.sleep(max(0.0, invited + MAIL_INTERVAL_S - time.monotonic()))  # one e-mail per signer per interval
    answer = stack.api.post(f"/v1/envelopes/{envelope.id}/reminders", headers=stack.headers())
    assert answer.status_code == 202, answer.text
    assert answer.json()["recipients"] == [address_of(bob)]
    poll(lambda: len(mine()) == 3, 20, what="the reminder")
    reminder = next(m for m in mine() if str(m["Subject"]).startswith("Reminder"))
    assert reminder["To"] == "bob@example.org"
    assert f"{PAGE}#/envelope/{envelope.id}?signer={address_of(bob)}" in reminder.get_payload(decode=True).decode()  # type: ignore[union-attr]


def test_invitations_are_checked(stack: Stack) -> None:
    stranger, alice = os.urandom(32), os.urandom(32)
    envelope = Requested(stack, [alice])
    url = f"/v1/envelopes/{envelope.id}/invitations"
    one = {"invitations": [{"signer": address_of(alice), "email": "alice@example.org"}]}
    assert stack.api.post(url, json=one, headers=stack.headers()).status_code == 404  # not on chain yet
    envelope.create()
    doc = f"0x{envelope.request.doc_hash.hex()}"
    poll(lambda: stack.api.get(f"/v1/documents/{doc}/envelopes").json()["envelopes"], 20, what="the envelope indexed")
    not_named = {"invitations": [{"signer": address_of(stranger), "email": "eve@example.org"}]}
    assert stack.api.post(url, json=not_named, headers=stack.headers()).status_code == 422
    injected = {"invitations": [{"signer": address_of(alice), "email": "a@example.org\r\nBcc: eve@example.org"}]}
    assert stack.api.post(url, json=injected, headers=stack.headers()).status_code == 422
    assert stack.api.post(url, json=one).status_code == 401


def test_a_contact_is_kept_from_other_keys_and_a_signer_is_mailed_once_per_interval(stack: Stack) -> None:
    alice, bob = os.urandom(32), os.urandom(32)
    envelope = Requested(stack, [alice, bob], ordered=False)  # a reminder goes to bob as well as alice
    url = f"/v1/envelopes/{envelope.id}/invitations"
    invite_bob = lambda email, key: stack.api.post(  # noqa: E731
        url, json={"invitations": [{"signer": address_of(bob), "email": email}]}, headers={"X-API-Key": key}
    )
    envelope.create_indexed()
    assert invite_bob("bob@example.org", API_KEY).status_code == 202
    # another client cannot redirect bob's invitations and reminders to itself
    taken = invite_bob("attacker@evil.example", OTHER_KEY)
    assert taken.status_code == 409 and taken.json()["signer"] == address_of(bob), taken.text
    # nor can anyone write to bob again within the interval, to his address or another
    for key, address in [
        (API_KEY, "bob@example.org"),
        (API_KEY, "bob@elsewhere.example"),
        (OTHER_KEY, "bob@example.org"),
    ]:
        again = invite_bob(address, key)
        assert again.status_code == 429, again.text
        assert 1 <= int(again.headers["retry-after"]) <= MAIL_INTERVAL_S
        assert again.json()["signers"] == [address_of(bob)]
    reminder = stack.api.post(f"/v1/envelopes/{envelope.id}/reminders", headers=stack.headers())
    assert reminder.status_code == 429, reminder.text
    with stack.engine.connect() as conn:
        query = text("SELECT email FROM envelope_contacts WHERE envelope_id = :e")
        assert conn.execute(query, {"e": envelope.id}).scalars().all() == ["bob@example.org"]
        query = text("SELECT count(*) FROM envelope_deliveries WHERE envelope_id = :e")
        assert conn.execute(query, {"e": envelope.id}).scalar_one() == 1
    unknown = f"/v1/envelopes/0x{os.urandom(32).hex()}"
    one = {"invitations": [{"signer": address_of(bob), "email": "bob@example.org"}]}
    assert stack.api.post(f"{unknown}/invitations", json=one, headers=stack.headers()).status_code == 404
    assert stack.api.post(f"{unknown}/reminders", headers=stack.headers()).status_code == 404


def _created(envelope: str, block: int, deadline: int = 0) -> IndexedEvent:
    return IndexedEvent(
        envelope_id=envelope,
        kind=ChangeKind.CREATED,
        doc_hash="0x" + "dd" * 32,
        signer=None,
        signers=("0x" + "11" * 20,),
        ordered=True,
        block_number=block,
        block_hash="0x" + f"{block:064x}",
        tx_hash="0x" + f"{block + 1000:064x}",
        log_index=0,
        timestamp=1_700_000_000 + block,
        deadline=deadline,
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of the test's own, on both backends: the limits' statements (PostgreSQL's advisory lock, the
    unique index) are the store's own behaviour."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database()


def test_the_store_keeps_contacts_spaces_mail_and_caps_webhooks(store_url: str) -> None:
    async def run() -> None:
        db = Database(store_url)
        await db.migrate()
        store = NotificationStore(db)
        keyed, keyless, accepted = "0x" + "a1" * 32, "0x" + "a2" * 32, "0x" + "a3" * 32
        bob, link = "0x" + "11" * 20, "https://docchain.example/#/envelope"
        try:
            await db.transaction(lambda s: notifications.index_in(s, [_created(keyed, 3), _created(keyless, 4)]))

            async def mail(envelope: str, email: str, key: str | None, interval_s: float = 0) -> list[str]:
                return await store.queue_mail(
                    envelope, DeliveryKind.INVITATION, [(bob, email, link)], key=key, interval_s=interval_s
                )

            await mail(keyed, "bob@example.org", "key-1")
            with pytest.raises(ContactTaken):
                await mail(keyed, "eve@evil.example", "key-2")
            await mail(keyed, "bob@new.example", "key-1")  # the key that set it may correct it
            assert await store.contacts(keyed) == {bob: "bob@new.example"}
            with pytest.raises(MailTooSoon) as soon:
                await mail(keyed, "bob@new.example", "key-1", interval_s=HOUR)
            assert soon.value.signers == (bob,) and HOUR - 60 < soon.value.wait_s <= HOUR

            await mail(keyless, "bob@example.org", None)
            with pytest.raises(ContactTaken):  # without API keys nobody may change it: a new envelope may
                await mail(keyless, "eve@evil.example", None)
            assert len(await mail(keyless, "bob@example.org", None)) == 1  # the same address again is no change
            assert await store.contacts(keyless) == {bob: "bob@example.org"}

            assert not await store.known(accepted)
            row = {
                "kind": "create",
                "envelope_id": accepted,
                "doc_hash": "0x" + "dd" * 32,
                "actor": bob,
                "message_json": "{}",
                "state": "pending",
                "attempts": 0,
                "created_at": time.time(),
                "updated_at": time.time(),
            }
            await db.transaction(lambda s: s.execute(insert(EnvelopeActionRow), [row]))
            assert await store.known(accepted) and await store.known(keyed)

            # concurrent registrations, as through several replicas: the cap and the one-per-URL rule hold
            async def register(envelope: str, url: str) -> str:
                try:
                    await store.add_webhook(envelope, url, 3)
                except (WebhookExists, WebhooksFull) as exc:
                    return type(exc).__name__
                return "added"

            urls = [f"http://127.0.0.1:9/{n}" for n in range(12)]
            outcomes = await asyncio.gather(*(register(accepted, u) for u in urls))
            assert sorted(outcomes) == ["WebhooksFull"] * 9 + ["added"] * 3
            outcomes = await asyncio.gather(*(register(keyed, urls[0]) for _ in range(6)))
            assert sorted(outcomes) == ["WebhookExists"] * 5 + ["added"]
        finally:
            await db.close()

    asyncio.run(run())


def test_mail_queued_for_an_envelope_that_closed_or_expired_is_not_sent(tmp_path: Path) -> None:
    """Checked at each attempt, not only when queued: an envelope completed, declined, voided or expired since
    has nobody to invite or remind. The open envelope's e-mail is attempted (and fails: nothing listens)."""
    envelopes = {name: f"0x{n:064x}" for n, name in enumerate(["completed", "declined", "voided", "expired", "open"])}

    async def run() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'mail.db'}")
        await db.migrate()
        store = NotificationStore(db)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=tmp_path,
            smtp_host="127.0.0.1",
            smtp_port=free_port(),
            smtp_from="docchain@example.org",
            smtp_starttls=False,
        )
        worker = DeliveryWorker(db, settings)
        try:
            past = int(time.time()) - 60
            created = [
                _created(e, 2 + n, past if name == "expired" else 0) for n, (name, e) in enumerate(envelopes.items())
            ]
            await db.transaction(lambda s: notifications.index_in(s, created))
            ids = {}
            for name, envelope in envelopes.items():
                (ids[name],) = await store.queue_mail(
                    envelope,
                    DeliveryKind.INVITATION,
                    [("0x" + "11" * 20, "bob@example.org", "l")],
                    key=None,
                    interval_s=0,
                )
            ended = [
                replace(
                    _created(envelopes[name], 20 + n), kind=ChangeKind(name), doc_hash=None, signers=None, log_index=n
                )
                for n, name in enumerate(["completed", "declined", "voided"])
            ]
            await db.transaction(lambda s: notifications.index_in(s, ended))
            async with httpx.AsyncClient() as client:
                for delivery in await store.due(time.time() + 1, 10):
                    await worker.attempt(client, delivery)
            for name in ["completed", "declined", "voided", "expired"]:
                state = await store.delivery_state(ids[name])
                assert state == (DeliveryState.SKIPPED, 0, f"not sent: the envelope is {name}"), (name, state)
            state = await store.delivery_state(ids["open"])
            assert state is not None and state[:2] == (DeliveryState.PENDING, 1) and "SMTP" in str(state[2])
        finally:
            await db.close()

    asyncio.run(run())


# ---------------------------------------------------------------------------------------------- restart


def test_a_delivery_to_a_receiver_down_survives_an_api_restart(stack: Stack) -> None:
    port = free_port()  # nothing listens there yet: each attempt is refused
    alice = os.urandom(32)
    envelope = Requested(stack, [alice, os.urandom(32)])
    envelope.create_indexed()
    url = f"http://127.0.0.1:{port}/hook"
    assert (
        stack.api.post(f"/v1/envelopes/{envelope.id}/webhooks", json={"url": url}, headers=stack.headers()).status_code
        == 201
    )
    envelope.sign(alice)
    query = text("SELECT id, attempts, state, last_error FROM envelope_deliveries WHERE envelope_id = :e")

    def delivery() -> Any:
        with stack.engine.connect() as conn:
            return conn.execute(query, {"e": envelope.id}).first()

    poll(lambda: (row := delivery()) is not None and row.attempts >= 1, 20, what="a failed attempt")
    # an event stream open across the stop is told to come back, and ends
    with httpx.stream("GET", f"{stack.api.url}/v1/envelopes/{envelope.id}/events", timeout=20) as response:
        stack.api.stop()
        assert "event: shutdown" in "".join(response.iter_text())
    failed = delivery()
    assert failed.state == "pending" and failed.last_error
    receiver = Receiver(port).start()
    try:
        # without SMTP this time, invitations say so; and the pipeline in the API's process (the first ran it in a
        # child), which also starts sooner
        stack.start_api(DOCCHAIN_SMTP_HOST="", DOCCHAIN_SMTP_FROM="", DOCCHAIN_PIPELINE="inline")
        poll(lambda: receiver.calls, 30, what="the delivery after the restart")
        assert receiver.calls[0].headers["x-docchain-delivery"] == failed.id
        assert json.loads(receiver.calls[0].body)["kind"] == "signed"
        poll(lambda: delivery().state == "delivered", 10, what="the delivery recorded")
        assert delivery().attempts == failed.attempts  # the successful attempt counts no failure
        answer = stack.api.post(
            f"/v1/envelopes/{envelope.id}/invitations",
            json={"invitations": [{"signer": envelope.request.signers[0], "email": "a@example.org"}]},
            headers=stack.headers(),
        )
        assert answer.status_code == 409
        assert answer.json()["title"] == "E-mail not configured"
    finally:
        receiver.stop()


# ---------------------------------------------------------------------------------------------- reorgs


def test_a_reorg_removes_envelope_events_and_tells_subscribers(tmp_path: Path) -> None:
    """The rollback's statements on a database of their own (a reorg of the shared node would disturb the other
    modules): the events above the common ancestor go, each told as a removed change, newest first, with a
    delivery per webhook in the same transaction."""

    def event(kind: ChangeKind, block: int, signer: str | None = None, log_index: int = 0) -> IndexedEvent:
        return IndexedEvent(
            envelope_id="0x" + "ee" * 32,
            kind=kind,
            doc_hash="0x" + "dd" * 32 if kind in (ChangeKind.CREATED, ChangeKind.COMPLETED) else None,
            signer=signer,
            signers=("0x" + "11" * 20,) if kind is ChangeKind.CREATED else None,
            ordered=True if kind is ChangeKind.CREATED else None,
            block_number=block,
            block_hash="0x" + f"{block:064x}",
            tx_hash="0x" + f"{block + 1000:064x}",
            log_index=log_index,
            timestamp=1_700_000_000 + block,
        )

    async def run() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'reorg.db'}")
        await db.migrate()
        store = NotificationStore(db)
        envelope = "0x" + "ee" * 32
        try:
            hook = await store.add_webhook(envelope, "http://127.0.0.1:9/hook", 8)
            created = await db.transaction(lambda s: notifications.index_in(s, [event(ChangeKind.CREATED, 5)]))
            assert created.keys == {"env-" + "ee" * 14} and created.deliveries == 1
            later = [event(ChangeKind.SIGNED, 7, "0x" + "11" * 20), event(ChangeKind.COMPLETED, 7, log_index=1)]
            await db.transaction(lambda s: notifications.index_in(s, later))
            assert await store.envelopes_of("0x" + "dd" * 32) == [envelope]

            gone = await db.transaction(lambda s: notifications.roll_back_in(s, 6))
            assert gone.keys == {"env-" + "ee" * 14} and gone.deliveries == 2
            changes = await store.changes(envelope, 0)
            told = [(c.kind.value, c.block_number, c.removed) for c in changes]
            assert told == [
                ("created", 5, False),
                ("signed", 7, False),
                ("completed", 7, False),
                ("completed", 7, True),
                ("signed", 7, True),
            ]
            facts = await store.facts(envelope)
            assert facts is not None and not facts.closed and facts.signed == frozenset()
            due = await store.due(time.time() + 1, 10)
            assert len(due) == 5 and {d.webhook for d in due} == {hook}
            assert [d.change for d in due if d.change is not None and d.change.removed] == changes[3:]
        finally:
            await db.close()

    asyncio.run(run())


def test_a_reorg_on_the_node_takes_an_envelope_back(stack: Stack) -> None:
    """Last in the module: the node goes back to before the envelope was created (evm_revert) and grows a longer
    chain without it. The stream tells of the creation, then of its removal; the document has no envelope left."""
    rpc = stack.envelopes.w3.provider.make_request
    snapshot = rpc("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    envelope = Requested(stack, [os.urandom(32)])
    envelope.create()
    doc = f"0x{envelope.request.doc_hash.hex()}"
    poll(lambda: stack.changes(envelope.id) == [("created", None, False)], 20, what="the creation indexed")
    assert rpc("evm_revert", [snapshot])["result"] is True  # type: ignore[arg-type]
    for _ in range(3):  # longer than the chain the envelope was on
        rpc("evm_mine", [])  # type: ignore[arg-type]
    poll(lambda: len(stack.changes(envelope.id)) == 2, 20, what="the creation taken back")
    assert stack.changes(envelope.id) == [("created", None, False), ("created", None, True)]
    assert stack.api.get(f"/v1/documents/{doc}/envelopes").json()["envelopes"] == []
    with httpx.stream("GET", f"{stack.api.url}/v1/envelopes/{envelope.id}/events", timeout=20) as response:
        told = [(data["kind"], data["removed"]) for _, data in _events(response, 2)]
    assert told == [("created", False), ("created", True)]
