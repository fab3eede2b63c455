"""The HTTP/1.1 protocol every uvicorn of the suite serves with: uvicorn's httptools (llhttp) parser, with the bound
on a request's head that h11 had.

httptools parses a request in C where h11 parses it in Python (h11_impl showed in shipping's profile, which takes the
warehouse's callbacks), but it buffers a request line and headers of any length: 20,000 headers or one 10 MB header
are taken. h11 refused a head it could not complete within 16 KiB; this protocol refuses a head over `MAX_HEAD_BYTES`
with the same `400 Invalid HTTP request received.` (bodies keep their own limit, `limit_body`).
"""

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 16 * 1024
"""The most bytes a request line and its headers may take (h11's default bound on an incomplete event)."""

_INVALID = "Invalid HTTP request received."


class _HeadTooLarge(Exception):
    """A request head grew past `MAX_HEAD_BYTES` (raised inside a parser callback: httptools turns it into a parser
    error, which uvicorn answers with 400)."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol refusing a request whose head (request line and headers) exceeds
    `MAX_HEAD_BYTES`, whether it comes in one read or trickles in over many."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_open = False  # a request has begun and its headers are not complete yet
        self._head_bytes = 0  # bytes of that head received so far (counted per read while it is open)
        self._head_parsed = 0  # bytes of its request line and completed headers (counted per parser callback)
        self._settled = 0  # body bytes of earlier requests in the current read

    def data_received(self, data: bytes) -> None:
        """Feeds the parser, then refuses a head still open after more than `MAX_HEAD_BYTES`."""
        was_open = self._head_open
        self._settled = 0
        super().data_received(data)
        if not self._head_open or self.transport.is_closing():
            return
        # A read that began inside the head is head to its end; one that began a request also held what came before.
        self._head_bytes += len(data) if was_open else len(data) - self._settled
        if self._head_bytes > MAX_HEAD_BYTES:
            self.logger.warning(_INVALID)
            self._head_open = False
            self.send_400_response(_INVALID)

    def on_message_begin(self) -> None:
        """A request begins: its head is open until its headers are complete."""
        super().on_message_begin()
        self._head_open, self._head_bytes, self._head_parsed = True, 0, 0

    def on_url(self, url: bytes) -> None:
        """Counts the request target towards the head's bound."""
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Counts a header (with its separators) towards the head's bound."""
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is complete."""
        self._head_open = False
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        """Remembers how much of the current read was body, which is not head of a request beginning after it."""
        self._settled += len(body)
        super().on_body(body)

    def _count(self, size: int) -> None:
        self._head_parsed += size
        if self._head_parsed > MAX_HEAD_BYTES:
            raise _HeadTooLarge(f"request head over {MAX_HEAD_BYTES} bytes")
