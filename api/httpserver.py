"""The HTTP/1.1 protocol uvicorn runs for the API: its httptools protocol, with the bounds it lacks on a
request's head (the request line and headers).

uvicorn bounds only an idle connection between two requests (``timeout_keep_alive``); neither it nor
httptools bounds how long a request's head may take or how large it may grow. A client that sent its headers
a byte at a time, or connected and sent nothing, held its connection (a file descriptor, a slot behind any
proxy) for as long as it liked. Here:

- a request's head must arrive within ``header_timeout`` of its first byte (the first request's, of the
  connection): else ``408`` and the connection is closed; a connection that has sent nothing by then is
  closed without an answer (there is no request to answer);
- a head over :data:`MAX_HEAD_BYTES` is answered ``431`` and the connection closed;
- a head httptools cannot parse is answered ``400`` as problem+json, as every error the API gives;
- a response that starts before its request's body has all arrived (413, 408, a 401 that did not read the
  upload) says ``Connection: close`` and ends the connection with a lingering close: the answer is sent,
  the sending side shut, and whatever the client still sends is read and dropped for at most
  :data:`LINGER_S`. Closed at once, the unread bytes would make the kernel reset the connection, and a
  client still uploading could see the reset instead of the answer; kept open (uvicorn reads the rest of
  the body and drops it), a client could stream a refused body for ever.

The body's deadline is the app's (api/app.py, ``EdgeMiddleware``): the app answers it, so it is logged and
counted like any other answer.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from docchain.api.problems import MEDIA_TYPE, TYPE_BASE
from docchain.api.security import API_CSP, HEADERS

MAX_HEAD_BYTES = 32 * 1024  # the request line and every header, as sent (Node's default is 16 KiB)
LINGER_S = 2.0  # nginx's lingering_timeout is 5 s between reads; 2 s in all is ample on a LAN and loopback


class _HeadTooLarge(Exception):
    """Raised from a parser callback: httptools stops parsing, and uvicorn answers through send_400_response."""


def problem_bytes(status: int, slug: str, detail: str, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """A whole problem+json response that closes the connection, written straight to the transport."""
    title = HTTPStatus(status).phrase.capitalize()  # "Request timeout", as the app writes its titles
    body = json.dumps({"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail}).encode()
    headers = [
        *default_headers,
        (b"content-type", MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *HEADERS,
        (b"content-security-policy", API_CSP.encode()),
    ]
    lines = [f"HTTP/1.1 {status} {title}".encode(), *(name + b": " + value for name, value in headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline and a size bound on each request's head."""

    header_timeout: float = 60.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._head_started = False  # a byte of the current request's head has arrived
        self._head_too_large = False
        self._lingering = False
        # the first request's head is due within header_timeout of the connection
        self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(self.header_timeout, self._head_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if not self._head_started:
            self.transport.close()  # nothing was asked: nothing to answer
            return
        detail = f"the request's headers did not arrive within {self.header_timeout:g} s (DOCCHAIN_HEADER_TIMEOUT_S)"
        self._refuse(408, "request-timeout", detail)

    def _refuse(self, status: int, slug: str, detail: str) -> None:
        self.logger.info("refused a request: %s", detail)
        self.transport.write(problem_bytes(status, slug, detail, list(self.server_state.default_headers)))
        self._linger()

    def _linger(self) -> None:
        """End the connection once the client has read what was sent (see the module's docstring)."""
        self._lingering = True
        self._stop_head_timer()
        self.flow.resume_reading()  # a body over uvicorn's high-water mark had paused reading
        try:
            self.transport.write_eof()
        except (NotImplementedError, RuntimeError, OSError):
            self.transport.close()
            return
        self.loop.call_later(LINGER_S, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # read and dropped: the connection is ending
        super().data_received(data)

    def _close(self, cycle: Any) -> None:
        """uvicorn closing the connection after ``cycle``'s response: lingering while its body still arrives."""
        if cycle is self.cycle and cycle.more_body and not self.transport.is_closing():
            self._linger()
        else:
            self.transport.close()

    # parser callbacks: a new request's head starts, grows, ends

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_started = True
        self._head_bytes = 0
        if self._head_timer is None:  # a later request on this connection: its own deadline from now
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_expired)

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            self._head_too_large = True
            raise _HeadTooLarge

    def on_headers_complete(self) -> None:
        self._stop_head_timer()
        self._head_started = False
        super().on_headers_complete()
        cycle = self.cycle  # its ASGI task is scheduled, not started: what it calls can still be wrapped
        if cycle is None or (self.parser.should_upgrade() and self._should_upgrade()):
            return
        # (weak references: the cycle holds both, and a reference cycle per request would wait for the collector)
        this = weakref.ref(cycle)
        cycle.transport = _CycleTransport(self.transport, weakref.ref(self), this)  # type: ignore[assignment]
        send = type(cycle).send  # the function: a bound method would hold the cycle

        async def answer(message: Any) -> None:
            current = this()
            if current is None:
                return
            if message["type"] == "http.response.start" and current.more_body:
                current.keep_alive = False  # uvicorn then says "connection: close", and closes at the end: lingering
            await send(current, message)

        cycle.send = answer  # type: ignore[method-assign]

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to whatever httptools refused (text/plain there): a problem, and 431 for a head
        # over the bound (the callback above stopped the parser)
        self._stop_head_timer()
        if self._head_too_large:
            self._refuse(431, "headers-too-large", f"the request line and headers exceed {MAX_HEAD_BYTES} bytes")
        else:
            self._refuse(400, "bad-request", f"{msg} (not valid HTTP/1.1)")


class _CycleTransport:
    """The connection as one request's cycle sees it: closing it goes through the protocol (lingering while the
    request's body still arrives); everything else is the transport's."""

    __slots__ = ("_transport", "_protocol", "_cycle")

    def __init__(
        self, transport: asyncio.Transport, protocol: weakref.ref[BoundedHttpToolsProtocol], cycle: weakref.ref[Any]
    ) -> None:
        self._transport, self._protocol, self._cycle = transport, protocol, cycle

    def close(self) -> None:
        protocol = self._protocol()
        if protocol is None:
            self._transport.close()
        else:
            protocol._close(self._cycle())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def protocol(header_timeout: float) -> type[Any]:
    """The protocol class for ``uvicorn.Config(http=...)``, with this deadline for a request's head."""
    return type("HttpProtocol", (BoundedHttpToolsProtocol,), {"header_timeout": header_timeout})
