"""Reading a file a person names (a receipt, a credential, a certificate, a salt, a key): bounded whatever the
file is. The size the file system reports bounds nothing for a device or a pipe (``/dev/zero`` reports 0 and
never ends), so at most ``limit`` + 1 bytes are read and a longer file is refused."""

from __future__ import annotations

from pathlib import Path

from docchain.chain.errors import InvalidInput


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """The bytes of ``path``, or :class:`InvalidInput` naming ``what`` when it cannot be read or holds more than
    ``limit`` bytes."""
    try:
        with open(path, "rb") as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {path}: {exc.strerror}") from exc
    if len(data) > limit:
        raise InvalidInput(f"{what} {path} is larger than {limit} bytes")
    return data
