"""The delivery loop: calls the webhooks and sends the e-mails queued in ``envelope_deliveries``, under the
pipeline's lease (one process delivers for a database), beside the anchoring worker and the indexer.

The due deliveries, then a sleep until the next is due, a wake-up (the indexer queued webhook calls, a route
queued e-mails) or the safety poll. Each attempt's outcome is written before the next, and the next attempt's
time is stored, so a restart resumes the schedule from the database. A webhook call is a POST of the change's
JSON with its HMAC (``X-Docchain-Signature``) and the delivery's id (``X-Docchain-Delivery``, the same on every
attempt, so a receiver can drop a repeat); any 2xx acknowledges it. A delivery that was attempted but whose
outcome was not written (the process died during the call) is attempted again: at least once, not exactly once.

E-mail goes through the standard library's ``smtplib`` in a worker thread: invitations and reminders are rare
and small, and a thread per conversation costs less than another dependency (aiosmtplib) would.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
import time
from email.message import EmailMessage

import httpx

from docchain.api.db import Database
from docchain.api.notifications.model import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    Delivery,
    DeliveryKind,
    check_webhook_url,
    retry_delay,
    signature,
)
from docchain.api.notifications.store import NotificationStore
from docchain.api.service_loop import BackgroundLoop
from docchain.api.settings import Settings
from docchain.chain.errors import InvalidInput

log = logging.getLogger("docchain.api.notifications")

BATCH = 64  # deliveries read per step
AT_ONCE = 8  # attempted concurrently: a slow receiver holds one of these, not the loop


class DeliveryFailed(Exception):
    """One attempt did not deliver: a non-2xx answer, a timeout, a refused connection, an SMTP error."""


class Mailer:
    """Sends one invitation or reminder through the configured SMTP server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def configured(self) -> bool:
        return self.settings.smtp_host is not None

    def message(self, delivery: Delivery) -> EmailMessage:
        assert delivery.email is not None and delivery.link is not None
        msg = EmailMessage()
        msg["From"] = self.settings.smtp_from or ""
        msg["To"] = delivery.email
        if delivery.kind is DeliveryKind.REMINDER:
            msg["Subject"] = "Reminder: a document is waiting for your signature"
            opening = "A document you were asked to sign is still waiting for your signature."
        else:
            msg["Subject"] = "You are asked to sign a document"
            opening = "You are asked to sign a document with docchain."
        msg["X-Docchain-Envelope"] = delivery.envelope_id
        msg.set_content(
            f"{opening}\n\nEnvelope: {delivery.envelope_id}\nSigner: {delivery.signer}\n\n"
            f"Open the envelope and sign (or decline) with your wallet:\n{delivery.link}\n"
        )
        return msg

    async def send(self, delivery: Delivery) -> None:
        try:
            await asyncio.to_thread(self._send, self.message(delivery))
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"SMTP: {exc!r}") from exc

    def _send(self, message: EmailMessage) -> None:
        s = self.settings
        assert s.smtp_host is not None
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s) as smtp:
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_user is not None and s.smtp_password is not None:
                smtp.login(s.smtp_user, s.smtp_password.get_secret_value())
            smtp.send_message(message)


class DeliveryWorker(BackgroundLoop):
    component = "delivery"
    logger = log

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__()
        self.store = NotificationStore(db)
        self.mailer = Mailer(settings)
        self.idle_s = settings.idle_poll_s
        self.timeout_s = settings.webhook_timeout_s
        self.allow_private = settings.webhook_allow_private
        self._client: httpx.AsyncClient | None = None  # open while the loop runs

    async def run(self) -> None:
        # redirects are not followed: a receiver's 3xx would send the signed body where nobody registered it
        async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as client:
            self._client = client
            try:
                await super().run()
            finally:
                self._client = None

    async def _take_step(self) -> float:
        assert self._client is not None  # steps are taken inside run, which holds the client
        return await self.step(self._client)

    async def step(self, client: httpx.AsyncClient) -> float:
        """Attempt every due delivery; returns how long to sleep."""
        due = await self.store.due(time.time(), BATCH)
        limit = asyncio.Semaphore(AT_ONCE)

        async def attempt(delivery: Delivery) -> None:
            async with limit:
                if not self._stopping.is_set():
                    await self.attempt(client, delivery)

        await asyncio.gather(*(attempt(d) for d in due))
        if len(due) == BATCH:
            return 0.0
        next_due = await self.store.next_due()
        if next_due is None:
            return self.idle_s
        return min(max(next_due - time.time(), 0.0), self.idle_s)

    async def attempt(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        if delivery.kind is not DeliveryKind.WEBHOOK and (why := await self._mail_moot(delivery)) is not None:
            await self.store.skipped(delivery.id, why)
            log.info("e-mail not sent", extra={"delivery": delivery.id, "kind": delivery.kind.value, "reason": why})
            return
        attempts = delivery.attempts + 1
        try:
            if delivery.kind is DeliveryKind.WEBHOOK:
                await self._call(client, delivery)
            else:
                await self.mailer.send(delivery)
        except DeliveryFailed as exc:
            delay = retry_delay(attempts)
            again = None if delay is None else time.time() + delay
            log.log(
                logging.WARNING if again is not None else logging.ERROR,
                "delivery failed" + ("; will retry" if again is not None else "; given up"),
                extra={"delivery": delivery.id, "kind": delivery.kind.value, "attempts": attempts, "error": str(exc)},
            )
            await self.store.failed(delivery.id, attempts, str(exc), again)
        else:
            await self.store.delivered(delivery.id)
            log.info("delivered", extra={"delivery": delivery.id, "kind": delivery.kind.value, "attempts": attempts})

    async def _mail_moot(self, delivery: Delivery) -> str | None:
        """Why an invitation or reminder is not to be sent now (its envelope closed, expired or was taken back by
        a reorg since it was queued), or None. Asked at each attempt: a retry may come hours later."""
        facts = await self.store.facts(delivery.envelope_id)
        if facts is None:
            return "not sent: the envelope is not on chain"
        why = facts.not_open(time.time())
        return None if why is None else f"not sent: the envelope is {why}"

    async def _call(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        hook, change = delivery.webhook, delivery.change
        assert hook is not None and change is not None
        # checked again at each attempt: a host that resolved to a public address at registration may resolve
        # to this service's own network now (DNS rebinding)
        try:
            target = await check_webhook_url(hook.url, allow_private=self.allow_private)
        except InvalidInput as exc:
            raise DeliveryFailed(str(exc)) from None
        url, pinned, extensions = target.request()
        body = change.body()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(hook.secret, body),
            DELIVERY_HEADER: delivery.id,
            "User-Agent": "docchain-webhooks",
            **pinned,
        }
        try:
            response = await client.post(url, content=body, headers=headers, extensions=extensions)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"HTTP {response.status_code}")
