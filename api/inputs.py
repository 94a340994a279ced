"""The edges of a request that routes share: file names (checked on the way in, sent back in
Content-Disposition), bounded body and form reads, and the limits docs/operations.md ("Limits of every
request") lists. Every refusal is a problem+json 4xx, never a 500 from deeper down (a database column, a
header encoder, a receipt the strict reader would refuse)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser, parse_options_header
from starlette.requests import Request

from docchain.api.lifecycle import Anchoring
from docchain.api.problems import too_large
from docchain.chain.errors import InvalidInput

MAX_FILE_NAME = 1024  # characters: a receipt's document.name (chain/receipt.py), the column's width
MAX_INT64 = 2**63 - 1  # the database's BIGINT: the widest number a query may compare a column with
MAX_SAFE = 2**53 - 1  # the widest integer a receipt (and JavaScript) holds exactly
# Everything of a submission but its metadata: registration (~400 bytes), a signature of at most 4096 bytes
# (8 KiB of hex), a file name of 1024 characters (each at most 12 bytes as a JSON \\u escape pair).
SUBMISSION_FRAME = 64 * 1024
# A JSON text may spell each character of the metadata as a \\u escape: 6 bytes for one byte of UTF-8.
ESCAPE_FACTOR = 6


def submission_limit(max_metadata_bytes: int) -> int:
    """The most a JSON submission (or a multipart ``submission`` field) can take with metadata at its limit."""
    return SUBMISSION_FRAME + ESCAPE_FACTOR * max_metadata_bytes


def check_file_name(name: str, what: str = "fileName") -> str:
    """``name`` as it is, or :class:`InvalidInput`: a receipt holds a name of at most 1024 characters and the
    database none with a NUL. It is stored and served back unchanged, never used as a path (the store is keyed
    by SHA-256), so ``../x`` or ``C:\\x`` are names like any other."""
    if not name:
        raise InvalidInput(f"{what} is empty")
    if len(name) > MAX_FILE_NAME:
        raise InvalidInput(f"{what} is {len(name)} characters long; a receipt holds at most {MAX_FILE_NAME}")
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise InvalidInput(f"{what} contains the control character U+{ord(char):04X}")
    return name


# A multipart part's filename parameter (not filename*, which RFC 7578 forbids and python-multipart ignores).
_FILENAME = re.compile(r';\s*filename\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)', re.IGNORECASE)


def sent_file_name(upload: UploadFile) -> str:
    """The file name as the client sent it. python-multipart keeps only what follows the last backslash of a
    name that starts like a Windows path (``C:\\x`` became ``x``, a workaround for IE6): the header is read
    again here, with its quoting rules, so the name is kept whole."""
    disposition = upload.headers.get("content-disposition", "")
    match = _FILENAME.search(disposition)
    if match is None:
        return upload.filename or ""
    value = match.group(1).strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace("\\\\", "\\").replace('\\"', '"')
    raw = value.encode("latin-1")  # Starlette decodes header values as Latin-1: these are the bytes sent
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # as Starlette decodes a name that is not UTF-8


def attachment(name: str) -> str:
    """A Content-Disposition for a download named ``name`` (RFC 6266): the exact name as RFC 8187 UTF-8 in
    ``filename*``, which every current browser reads, and an ASCII stand-in in ``filename`` for older clients.
    A header is Latin-1 on the wire, so the name itself never goes there (any other character was a 500)."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._-+") else "_" for c in name)[:200]
    return f"attachment; filename=\"{fallback or 'download'}\"; filename*=UTF-8''{quote(name, safe='')}"


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The body, refused (413) as soon as it is over ``limit``: a JSON route need not hold 100 MiB to learn
    that it was sent too much."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large(f"{what} is {int(declared)} bytes; the limit is {limit}", limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(f"{what} is over the limit of {limit} bytes", limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: Request, *, part_limit: int, max_fields: int = 8) -> FormData:
    """The multipart form: one file part (bounded by the upload limit) and a few text fields, each at most
    ``part_limit`` bytes (413 above; Starlette says 400 for it). A body cut short before its closing boundary
    is refused (422): python-multipart drops the part it was in without a word, so a truncated upload was
    accepted as a submission without its file."""
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary") or b""
    closing = b"--" + boundary + b"--"
    seen = not boundary  # (no boundary: the parser refuses the form itself)
    tail = b""

    async def watched() -> AsyncGenerator[bytes, None]:
        nonlocal seen, tail
        async for chunk in request.stream():
            if not seen:
                window = tail + chunk
                seen = closing in window
                tail = window[-(len(closing) - 1) :]
            yield chunk

    parser = MultiPartParser(request.headers, watched(), max_files=1, max_fields=max_fields, max_part_size=part_limit)
    try:
        form = await parser.parse()
    except MultiPartException as exc:  # as Request.form() answers it, but a field over its limit is a 413
        if "maximum size" in exc.message:
            raise too_large(f"a multipart text field is over the limit of {part_limit} bytes", part_limit) from None
        raise HTTPException(400, exc.message) from None
    if not seen:
        await form.close()
        raise InvalidInput("the multipart body ends before its closing boundary: it was cut short")
    return form


def anchoring_field(value: Any) -> Anchoring | None:
    """A multipart form's ``anchoring`` field: direct, merkle, or (absent or empty) none."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value not in {a.value for a in Anchoring}:
        raise InvalidInput("the multipart field 'anchoring' must be direct or merkle")
    return Anchoring(value)


def file_part(form: FormData, name: str = "file") -> UploadFile | None:
    """The form's file part ``name``, or None when there is none. A part of that name that is not a file (no
    filename, e.g. a browser's empty file input or a client that left the name out) is refused rather than
    dropped without a word."""
    part: Any = form.get(name)
    if part is None:
        return None
    if not isinstance(part, UploadFile) or not part.filename:
        raise InvalidInput(
            f"the multipart part '{name}' has no file name: send the document as a file part "
            f'(Content-Disposition: form-data; name="{name}"; filename="..."), or leave the part out'
        )
    return part
