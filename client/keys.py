"""Encrypted signing keys: Web3 Secret Storage (eth-account) JSON keystores in ``<config dir>/keys``.

The private key is decrypted in memory only when a command signs, and never leaves the client.
The password comes from ``--password-file``, else ``$DOCCHAIN_PASSWORD``, else an interactive prompt.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from docchain.chain.errors import InvalidInput
from docchain.chain.files import read_bounded
from docchain.chain.typed_data import address_of
from docchain.chain.values import parse_address, parse_hex
from docchain.client.config import keys_dir
from docchain.client.errors import UsageError

MAX_SECRET_FILE_BYTES = 4096  # a key in hex, a password: a line each
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class KeyInfo:
    name: str
    address: str
    path: Path


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(
            f"invalid key name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def _path(name: str, directory: Path | None = None) -> Path:
    return (directory or keys_dir()) / f"{check_name(name)}.json"


def list_keys(directory: Path | None = None) -> list[KeyInfo]:
    folder = directory or keys_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            address = parse_address(str(data["address"]))
        except (OSError, ValueError, KeyError, InvalidInput):
            continue  # not a keystore: ignore rather than fail every listing
        found.append(KeyInfo(path.stem, address, path))
    return found


def info(name: str, directory: Path | None = None) -> KeyInfo:
    path = _path(name, directory)
    for key in list_keys(path.parent):
        if key.name == name:
            return key
    available = ", ".join(k.name for k in list_keys(path.parent)) or "none; create one with `docchain keys new NAME`"
    raise UsageError(f"no key named {name!r} in {path.parent} (available: {available})")


def default_key_name(requested: str | None, directory: Path | None = None) -> str:
    """``requested`` if given, else the only key there is."""
    if requested:
        return requested
    keys = list_keys(directory)
    if len(keys) == 1:
        return keys[0].name
    if not keys:
        raise UsageError("no signing key yet: create one with `docchain keys new NAME`")
    raise UsageError(f"several keys exist ({', '.join(k.name for k in keys)}): choose one with --key or DOCCHAIN_KEY")


def save(
    name: str,
    private_key: bytes,
    password: str,
    *,
    iterations: int | None = None,
    directory: Path | None = None,
) -> KeyInfo:
    """Encrypt and store a key; an existing keystore is never replaced."""
    path = _path(name, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    from eth_account import Account  # imported when used: with eth_keyfile it adds ~0.6 s to every CLI start

    keystore = Account.encrypt(private_key, password, kdf="scrypt", iterations=iterations)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"a key named {name!r} already exists ({path}); choose another name") from None
    with os.fdopen(fd, "w") as out:
        json.dump(keystore, out)
        out.write("\n")
    return KeyInfo(name, address_of(private_key), path)


def parse_private_key(text: str) -> bytes:
    key = parse_hex(text.strip(), length=32, what="private key")
    if not 0 < int.from_bytes(key, "big") < 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141:
        raise UsageError("private key is out of the secp256k1 range")
    return key


def unlock(name: str, password: str, directory: Path | None = None) -> bytes:
    """Decrypt the keystore; a wrong password is a one-line usage error."""
    from eth_account import Account

    key = info(name, directory)
    try:
        return bytes(Account.decrypt(json.loads(key.path.read_text()), password))
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise UsageError(f"wrong password for key {name!r}") from None
        raise UsageError(f"cannot decrypt key {name!r}: {exc}") from exc


def given_password(password_file: Path | None) -> str | None:
    """The password from a file (first line), else ``$DOCCHAIN_PASSWORD``; None if it must be typed."""
    if password_file is not None:
        text = read_bounded(password_file, MAX_SECRET_FILE_BYTES, "the password file").decode(errors="replace")
        lines = text.splitlines()
        return lines[0] if lines else ""
    return os.environ.get("DOCCHAIN_PASSWORD")


def read_password(password_file: Path | None, *, confirm: bool = False, prompt: str = "Password") -> str:
    """Password from a file (first line), else ``$DOCCHAIN_PASSWORD``, else a hidden prompt."""
    given = given_password(password_file)
    if given is not None:
        return given
    return prompt_secret(
        prompt, confirm=confirm, missing="no password given: pass --password-file FILE or set DOCCHAIN_PASSWORD"
    )


@dataclass
class SigningKey:
    """A key chosen for signing, opened in two steps: :meth:`open` checks what needs no network (the name,
    and a password from a file or the environment), :meth:`unlock` asks for a password still missing.
    Commands call ``unlock`` once the API or node has answered, so nobody types a password in vain."""

    name: str
    address: str
    directory: Path | None
    private: bytes | None = None

    @classmethod
    def open(cls, name: str, password_file: Path | None, directory: Path | None = None) -> SigningKey:
        found = info(name, directory)  # fail on an unknown name before any password
        password = given_password(password_file)
        private = None if password is None else unlock(name, password, directory)
        return cls(found.name, found.address, directory, private)

    def unlock(self) -> bytes:
        if self.private is None:
            password = prompt_secret(
                f"Password for key {self.name!r}",
                missing="no password given: pass --password-file FILE or set DOCCHAIN_PASSWORD",
            )
            self.private = unlock(self.name, password, self.directory)
        return self.private


def prompt_secret(prompt: str, *, confirm: bool = False, missing: str) -> str:
    """A hidden prompt, written to stderr so that ``--json`` output stays one document on stdout.

    Click answers both Ctrl-C and end of input with ``Abort`` (raised ``from None``, the original kept as
    its ``__context__``): Ctrl-C becomes ``KeyboardInterrupt`` again (exit 130) and end of input the usage
    error ``missing`` (exit 2), since a script that forgot the secret must fail, not hang.
    """
    import typer

    try:
        return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True))
    except typer.Abort as exc:
        if isinstance(exc.__context__, EOFError):
            raise UsageError(missing) from None
        raise KeyboardInterrupt from None
