"""``docchain keys new|import|list|show``: encrypted keystores in the config directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from docchain.chain.files import read_bounded
from docchain.client import keys
from docchain.client.context import CliContext
from docchain.client.errors import UsageError
from docchain.client.options import PasswordFileOpt, command, new_app

app = new_app("Manage signing keys: encrypted keystores in the config directory; keys never leave this machine.")

KdfIterationsOpt = Annotated[
    int | None,
    typer.Option(
        "--kdf-iterations",
        envvar="DOCCHAIN_KDF_ITERATIONS",
        min=2,
        hidden=True,
        help="scrypt work factor (lower only for tests).",
    ),
]


def _show(c: CliContext, info: keys.KeyInfo, said: str) -> None:
    c.out.emit({"name": info.name, "address": info.address, "path": str(info.path)})
    c.out.say(f"{said} key [bold]{info.name}[/] with address [bold]{info.address}[/]\nkeystore: {info.path}")


@command(
    app,
    "new",
    examples_=[
        "docchain keys new alice",
        "DOCCHAIN_PASSWORD_FILE=~/.alice-pass docchain keys new alice --json",
    ],
)
def keys_new(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the key, e.g. alice.")],
    password_file: PasswordFileOpt = None,
    kdf_iterations: KdfIterationsOpt = None,
) -> None:
    """Create a new signing key, encrypted with a password."""
    c: CliContext = ctx.obj
    keys.check_name(name)
    if any(k.name == name for k in keys.list_keys(c.keys_dir)):
        raise UsageError(f"a key named {name!r} already exists; choose another name")
    password = keys.read_password(password_file, confirm=True, prompt=f"New password for {name!r}")
    if not password:
        raise UsageError("the password must not be empty")
    info = keys.save(name, os.urandom(32), password, iterations=kdf_iterations, directory=c.keys_dir)
    _show(c, info, "created")


@command(
    app,
    "import",
    examples_=[
        "docchain keys import bob       # asks for the key, hidden",
        "docchain keys import bob --key-file bob.hex --password-file bob.pass",
    ],
)
def keys_import(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the key.")],
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            envvar="DOCCHAIN_IMPORT_KEY_FILE",
            metavar="FILE",
            help="File holding the hex private key (else a hidden prompt).",
        ),
    ] = None,
    password_file: PasswordFileOpt = None,
    kdf_iterations: KdfIterationsOpt = None,
) -> None:
    """Import an existing private key (hex) into an encrypted keystore."""
    c: CliContext = ctx.obj
    keys.check_name(name)
    if key_file is not None:
        text = read_bounded(key_file, keys.MAX_SECRET_FILE_BYTES, "key file").decode(errors="replace")
    else:
        text = keys.prompt_secret(
            "Private key (hex)", missing="no private key given: pass --key-file FILE or type it at the prompt"
        )
    private = keys.parse_private_key(text)
    password = keys.read_password(password_file, confirm=True, prompt=f"New password for {name!r}")
    info = keys.save(name, private, password, iterations=kdf_iterations, directory=c.keys_dir)
    _show(c, info, "imported")


@command(app, "list", examples_=["docchain keys list", "docchain keys list --json"])
def keys_list(ctx: typer.Context) -> None:
    """List the signing keys and their addresses."""
    c: CliContext = ctx.obj
    found = keys.list_keys(c.keys_dir)
    c.out.emit([{"name": k.name, "address": k.address, "path": str(k.path)} for k in found])
    if not found:
        c.out.say("no keys yet: create one with `docchain keys new NAME`")
        return
    c.out.table(None, ["name", "address"], [(k.name, k.address) for k in found])
    c.out.say(f"keystores in {c.keys_dir}")


@command(app, "show", examples_=["docchain keys show alice", "docchain keys show alice --json"])
def keys_show(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Show a key's address and keystore file (never the private key)."""
    c: CliContext = ctx.obj
    info = keys.info(name, c.keys_dir)
    c.out.emit({"name": info.name, "address": info.address, "path": str(info.path)})
    c.out.fields(None, [("name", info.name), ("address", info.address), ("keystore", info.path)])
