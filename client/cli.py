"""The ``docchain`` command line: sign documents, register them on Ethereum, verify them anywhere.

Every command validates its inputs before any network call, prints a table (or one JSON document with
``--json``), and ends with one of the exit statuses of :mod:`docchain.client.errors`; errors are one
line on stderr (``--verbose`` adds the traceback).
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from docchain.chain.errors import InvalidInput
from docchain.chain.receipt import Receipt, parse_receipt, read_receipt, receipt_path, write_receipt
from docchain.chain.typed_data import address_of
from docchain.chain.values import parse_address, parse_hash32, to_hex
from docchain.client import documents, keys
from docchain.client.api_client import ApiClient
from docchain.client.config import Config, data_dir, normalise_url
from docchain.client.errors import (
    CliError,
    ExitCode,
    UsageError,
    VerificationFailed,
    error_object,
    exit_code_for,
    one_line,
)
from docchain.client.output import Output, short, when
from docchain.client.output import reset as reset_output

EXIT_STATUS_HELP = """
Exit status: 0 ok · 1 verification failed (invalid, not registered, signed by others, file mismatch,
revoked, untrusted registry) · 2 usage or bad input (arguments, file, hash, address, config) ·
3 network or chain unavailable (API or node unreachable or timed out, server error, reverted
transaction) · 130 interrupted. With --json an error is one JSON object on stdout:
{"error": {"code": 3, "kind": "unavailable", "message": "..."}}.
"""

_TRUE = {"1", "true", "t", "yes", "y", "on"}
T = TypeVar("T")


@dataclass
class _State:
    verbose: bool = False
    json: bool | None = None  # None until a command has parsed its options
    argv: tuple[str, ...] = ()

    def json_mode(self) -> bool:
        """--json as parsed, or, for an error before parsing ended (an unknown option), as written."""
        if self.json is not None:
            return self.json
        return "--json" in self.argv or os.environ.get("DOCCHAIN_JSON", "").strip().lower() in _TRUE


STATE = _State()


def _fail(code: ExitCode, message: str, exc: BaseException | None = None, details: Any = None) -> typer.Exit:
    """Report an error once, as the table says (one line on stderr; with --json, the error object on
    stdout), and the Exit that ends the command with ``code``."""
    if STATE.verbose and exc is not None:
        traceback.print_exception(exc)
    Output(STATE.json_mode()).fail(message, error_object(code, message, details))
    return typer.Exit(code)


def _usage_fail(exc: TyperException) -> typer.Exit:
    """A usage error found by Click itself (unknown option, missing argument, bad value): exit 2, in one
    line that points at the command's --help, and as the JSON error object with --json."""
    message = one_line(Exception(exc.format_message())).rstrip(".")
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return _fail(ExitCode.USAGE, message, exc)


class DocchainGroup(TyperGroup):
    """Maps every exception to its exit status once, for all commands and sub-commands, Click's own usage
    errors and Ctrl-C included. The innermost group handles an error; the outer ones see only its Exit."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        if parent is None:  # a new invocation (tests run many in one process): nothing carries over
            STATE.verbose, STATE.json, STATE.argv = "--verbose" in args or "-v" in args, None, tuple(args)
            reset_output()
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except TyperException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # `docchain keys`: the help, as Click prints it
                raise
            raise _usage_fail(exc) from None

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except typer.Exit:
            raise
        except typer.Abort as exc:
            # Click's prompts turn both Ctrl-C and end of input into Abort (keys.prompt_secret tells them
            # apart for its own prompts); it would end with status 1 and "Aborted!".
            if isinstance(exc.__context__, EOFError):
                raise _fail(ExitCode.USAGE, "no input: stdin ended at a prompt", exc) from None
            raise _fail(ExitCode.INTERRUPTED, "interrupted", exc) from None
        except TyperException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                raise
            raise _usage_fail(exc) from None
        except KeyboardInterrupt as exc:
            raise _fail(ExitCode.INTERRUPTED, "interrupted", exc) from None
        except Exception as exc:
            raise _fail(exit_code_for(exc), one_line(exc), exc, getattr(exc, "details", None)) from None


def _app(help_text: str, **kwargs: Any) -> typer.Typer:
    return typer.Typer(
        cls=DocchainGroup,
        help=help_text,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
        **kwargs,
    )


app = _app(
    "**docchain** — sign documents and prove on Ethereum who signed them, when, and that they are "
    "unchanged.\n\n"
    "Start here: `docchain up` runs a local node, the registry and the API, and signs a sample document.\n\n"
    "Then: `docchain keys new alice` · `docchain submit contract.pdf --wait` · "
    "`docchain verify contract.pdf`.\n\n"
    "Settings come from flags, then environment variables (shown in each --help), then "
    '`config.toml` in the config directory ($DOCCHAIN_CONFIG_DIR), e.g. `api = "http://host:8000"`.\n\n'
    + EXIT_STATUS_HELP
)
keys_app = _app("Manage signing keys: encrypted keystores in the config directory; keys never leave this machine.")
node_app = _app("Start, stop and inspect the embedded local Ethereum node (anvil by default).")
inspect_app = _app("Look at the registry on chain, like an explorer in the terminal (talks to the node directly).")
app.add_typer(keys_app, name="keys")
app.add_typer(node_app, name="node")
app.add_typer(inspect_app, name="inspect")

# ---------------------------------------------------------------------- shared options

JsonOpt = Annotated[bool, typer.Option("--json", envvar="DOCCHAIN_JSON", help="Print one JSON document (for scripts).")]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", envvar="DOCCHAIN_VERBOSE", help="Show tracebacks of errors.")
]
ApiOpt = Annotated[
    str | None,
    typer.Option(
        "--api",
        envvar="DOCCHAIN_API",
        metavar="URL",
        help="docchain API base URL [default: http://127.0.0.1:8000].",
    ),
]
RpcOpt = Annotated[
    str | None,
    typer.Option(
        "--rpc",
        envvar="DOCCHAIN_RPC",
        metavar="URL",
        help="Ethereum JSON-RPC URL [default: http://127.0.0.1:8545].",
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        envvar="DOCCHAIN_TIMEOUT",
        min=0.1,
        metavar="SECONDS",
        help="Network timeout per request [default: 10].",
    ),
]
RetriesOpt = Annotated[
    int | None,
    typer.Option(
        "--retries",
        envvar="DOCCHAIN_RETRIES",
        min=0,
        max=10,
        help="Retries of idempotent calls on connection failures [default: 3].",
    ),
]
KeyOpt = Annotated[
    str | None,
    typer.Option(
        "--key",
        "-k",
        envvar="DOCCHAIN_KEY",
        metavar="NAME",
        help="Signing key (see `docchain keys list`); default: the only one.",
    ),
]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        envvar="DOCCHAIN_PASSWORD_FILE",
        metavar="FILE",
        help="Read the key's password from FILE (else $DOCCHAIN_PASSWORD, else a prompt).",
    ),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="DOCCHAIN_DATA_DIR",
        metavar="DIR",
        help="Embedded stack data: node state, deployments.json, database [default: user data dir].",
    ),
]
RegistryOpt = Annotated[
    str | None,
    typer.Option(
        "--registry",
        envvar="DOCCHAIN_REGISTRY",
        metavar="ADDRESS",
        help="Registry contract address [default: the one recorded in the data dir for the chain].",
    ),
]
ForceOpt = Annotated[
    bool, typer.Option("--force", envvar="DOCCHAIN_FORCE", help="Replace existing receipt/output files.")
]


@dataclass
class Ctx:
    out: Output
    config: Config

    @classmethod
    def make(cls, json_mode: bool, verbose: bool) -> Ctx:
        STATE.verbose, STATE.json = verbose, json_mode
        return cls(Output(json_mode), Config.load())

    def api(self, api: str | None, timeout: float | None, retries: int | None) -> ApiClient:
        url = normalise_url(self.config.pick("api", api), "the API URL (--api / DOCCHAIN_API)")
        return ApiClient(
            url,
            timeout=float(self.config.pick("timeout", timeout)),
            retries=int(self.config.pick("retries", retries)),
        )

    def rpc_url(self, rpc: str | None) -> str:
        return normalise_url(self.config.pick("rpc", rpc), "the RPC URL (--rpc / DOCCHAIN_RPC)")

    def timeout(self, timeout: float | None) -> float:
        return float(self.config.pick("timeout", timeout))

    def unlock(self, key: str | None, password_file: Path | None) -> tuple[str, bytes]:
        name = keys.default_key_name(self.config.pick("key", key))
        keys.info(name)  # fail on an unknown name before asking for a password
        private = keys.unlock(name, keys.read_password(password_file, prompt=f"Password for key {name!r}"))
        return name, private


def _parse_time(value: str | None, what: str) -> int | None:
    """ISO-8601 date/time (UTC unless it says otherwise) or unix seconds."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{what} must be an ISO-8601 date such as 2025-01-31 or unix seconds, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


# ---------------------------------------------------------------------- keys


@keys_app.command("new")
def keys_new(
    name: Annotated[str, typer.Argument(help="A name for the key, e.g. alice.")],
    password_file: PasswordFileOpt = None,
    kdf_iterations: Annotated[
        int | None,
        typer.Option(
            "--kdf-iterations",
            envvar="DOCCHAIN_KDF_ITERATIONS",
            min=2,
            hidden=True,
            help="scrypt work factor (lower only for tests).",
        ),
    ] = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Create a new signing key, encrypted with a password.

    Examples:

        docchain keys new alice

        DOCCHAIN_PASSWORD_FILE=~/.alice-pass docchain keys new alice --json
    """
    c = Ctx.make(json_out, verbose)
    keys.check_name(name)
    if any(k.name == name for k in keys.list_keys()):
        raise UsageError(f"a key named {name!r} already exists; choose another name")
    password = keys.read_password(password_file, confirm=True, prompt=f"New password for {name!r}")
    if not password:
        raise UsageError("the password must not be empty")
    private = os.urandom(32)
    info = keys.save(name, private, password, iterations=kdf_iterations)
    c.out.emit({"name": info.name, "address": info.address, "path": str(info.path)})
    c.out.say(f"created key [bold]{info.name}[/] with address [bold]{info.address}[/]\nkeystore: {info.path}")


@keys_app.command("import")
def keys_import(
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
    kdf_iterations: Annotated[
        int | None, typer.Option("--kdf-iterations", envvar="DOCCHAIN_KDF_ITERATIONS", min=2, hidden=True)
    ] = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Import an existing private key (hex) into an encrypted keystore.

    Examples:

        docchain keys import bob                       # asks for the key, hidden

        docchain keys import bob --key-file bob.hex --password-file bob.pass
    """
    c = Ctx.make(json_out, verbose)
    keys.check_name(name)
    if key_file is not None:
        try:
            text = key_file.read_text()
        except OSError as exc:
            raise UsageError(f"cannot read {key_file}: {exc.strerror}") from exc
    else:
        text = keys.prompt_secret(
            "Private key (hex)", missing="no private key given: pass --key-file FILE or type it at the prompt"
        )
    private = keys.parse_private_key(text)
    password = keys.read_password(password_file, confirm=True, prompt=f"New password for {name!r}")
    info = keys.save(name, private, password, iterations=kdf_iterations)
    c.out.emit({"name": info.name, "address": info.address, "path": str(info.path)})
    c.out.say(f"imported key [bold]{info.name}[/] with address [bold]{info.address}[/]")


@keys_app.command("list")
def keys_list(json_out: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """List the signing keys and their addresses.

    Example:

        docchain keys list --json
    """
    c = Ctx.make(json_out, verbose)
    found = keys.list_keys()
    c.out.emit([{"name": k.name, "address": k.address, "path": str(k.path)} for k in found])
    if not found:
        c.out.say("no keys yet: create one with `docchain keys new NAME`")
        return
    c.out.table(None, ["name", "address", "keystore"], [(k.name, k.address, k.path) for k in found])


@keys_app.command("show")
def keys_show(
    name: Annotated[str, typer.Argument(help="The key's name.")],
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show a key's address and keystore file (never the private key).

    Example:

        docchain keys show alice
    """
    c = Ctx.make(json_out, verbose)
    info = keys.info(name)
    c.out.emit({"name": info.name, "address": info.address, "path": str(info.path)})
    c.out.fields(None, [("name", info.name), ("address", info.address), ("keystore", info.path)])


# ---------------------------------------------------------------------- submit


def _in_parallel(call: Callable[[int], T], count: int, one_done: Callable[[], None] = lambda: None) -> list[T]:
    """``call(0..count-1)`` on up to 8 threads, in order; ``one_done`` after each finishes.

    Daemon threads, not a ThreadPoolExecutor: on Ctrl-C the main thread leaves at once, while an executor
    (and the interpreter's exit, which joins its threads) would wait for every long-poll in flight, up to
    a minute, before the command could end with 130.
    """
    results: list[T | None] = [None] * count
    done: queue.Queue[tuple[int, BaseException | None]] = queue.Queue()
    pending = iter(range(count))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                index = next(pending, None)
            if index is None:
                return
            try:
                results[index] = call(index)
            except BaseException as exc:  # handed to the main thread, which raises it
                done.put((index, exc))
                return
            done.put((index, None))

    for _ in range(min(8, count)):
        threading.Thread(target=work, daemon=True).start()
    for _ in range(count):
        _, exc = done.get()
        if exc is not None:
            raise exc
        one_done()
    return results  # type: ignore[return-value]  # every slot is filled once all are done


def _check_receipt_targets(paths: list[Path], force: bool) -> None:
    for path in paths:
        target = receipt_path(path)
        if target.exists() and not force:
            raise UsageError(f"{target} already exists; pass --force to replace it")


def _save_receipt(receipt: Receipt, path: Path, force: bool) -> Path:
    target = receipt_path(path)
    write_receipt(receipt, target, overwrite=force)
    return target


@app.command()
def submit(
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE...", help="Files to sign and register.", show_default=False)
    ],
    key: KeyOpt = None,
    password_file: PasswordFileOpt = None,
    store: Annotated[
        bool,
        typer.Option("--store", envvar="DOCCHAIN_STORE", help="Upload the file so the API keeps a copy."),
    ] = False,
    note: Annotated[
        str | None,
        typer.Option(
            "--note", envvar="DOCCHAIN_NOTE", help="A note signed with the document (its hash goes on chain)."
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            "-w",
            envvar="DOCCHAIN_WAIT",
            help="Wait until anchored on chain and write FILE.docchain.json.",
        ),
    ] = False,
    wait_timeout: Annotated[
        float,
        typer.Option(
            "--wait-timeout",
            envvar="DOCCHAIN_WAIT_TIMEOUT",
            min=1,
            metavar="SECONDS",
            help="Give up waiting after this long.",
        ),
    ] = 120.0,
    direct: Annotated[
        bool,
        typer.Option(
            "--direct",
            envvar="DOCCHAIN_DIRECT",
            help="Send the transaction yourself via --rpc (you pay gas); no API.",
        ),
    ] = False,
    rpc: RpcOpt = None,
    registry: RegistryOpt = None,
    data_dir_opt: DataDirOpt = None,
    force: ForceOpt = False,
    api: ApiOpt = None,
    timeout: TimeoutOpt = None,
    retries: RetriesOpt = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Hash FILE(s) locally, sign them with your key and register them on chain.

    The private key never leaves this machine: only the hash and the EIP-712 signature are sent.
    Several files are submitted concurrently. With --wait (or --direct), the receipt is written
    next to each file as FILE.docchain.json (never replacing one unless --force).

    Examples:

        docchain submit contract.pdf --wait

        docchain submit *.pdf --key alice --note "Q3 reports" --store --wait --json

        docchain submit report.pdf --direct --rpc http://127.0.0.1:8545    # no API, you pay gas
    """
    c = Ctx.make(json_out, verbose)
    paths = documents.check_files(files)
    if wait or direct:
        _check_receipt_targets(paths, force)
    if direct and store:
        raise UsageError("--store needs the API; it cannot be combined with --direct")
    metadata = documents.metadata_for(note)
    if direct:
        rpc_url = c.rpc_url(rpc)
        reg_addr = parse_address(registry, "--registry") if registry else None
    else:
        client = c.api(api, timeout, retries)
    _, private = c.unlock(key, password_file)
    signer = address_of(private)
    hashed = documents.hash_files(paths, show_progress=not json_out)

    results: list[dict[str, Any]] = []
    if direct:
        from docchain.client import rpc as rpc_mod

        w3 = rpc_mod.connect(rpc_url, c.timeout(timeout))
        address = rpc_mod.registry_address(w3, reg_addr, data_dir(data_dir_opt))
        from docchain.chain.registry import Registry

        domain = Registry(w3, address).domain
        for item in hashed:
            registration, signature = documents.sign_registration(
                domain, item.doc_hash, private, signer, metadata=metadata
            )
            receipt = rpc_mod.submit_direct(
                w3,
                address,
                private,
                registration,
                signature,
                file_name=item.path.name,
                file_size=item.size,
                timeout=wait_timeout,
            )
            target = _save_receipt(receipt, item.path, force)
            results.append(
                {
                    "file": str(item.path),
                    "docHash": item.hex,
                    "signer": signer,
                    "state": "anchored",
                    "txHash": to_hex(receipt.tx_hash),
                    "blockNumber": receipt.block_number,
                    "receipt": str(target),
                }
            )
    else:
        with client:
            domain = documents.domain_from_api(client.chain())
            signed = [
                documents.sign_registration(domain, h.doc_hash, private, signer, metadata=metadata) for h in hashed
            ]

            def send(index: int) -> dict[str, Any]:
                registration, signature = signed[index]
                body: dict[str, Any] = {
                    "registration": registration.to_json(),
                    "signature": to_hex(signature),
                    "fileName": hashed[index].path.name,
                    "fileSize": hashed[index].size,
                }
                if metadata:
                    body["metadata"] = metadata
                return client.submit(body, hashed[index].path if store else None)

            accepted = _in_parallel(send, len(hashed))
            for item, answer in zip(hashed, accepted, strict=True):
                results.append(
                    {
                        "file": str(item.path),
                        "docHash": item.hex,
                        "signer": signer,
                        "id": answer.get("id"),
                        "state": answer.get("state"),
                    }
                )
            if wait:
                deadline = time.monotonic() + wait_timeout

                def finish(index: int) -> dict[str, Any]:
                    row = results[index]
                    state = client.wait_for(str(row["id"]), until=deadline)
                    row.update(
                        state=state.get("state"),
                        txHash=state.get("txHash"),
                        blockNumber=state.get("blockNumber"),
                        error=state.get("error"),
                    )
                    if state.get("state") in ("anchored", "confirmed"):
                        receipt = parse_receipt(client.receipt(row["docHash"], signer))
                        if (receipt.doc_hash, receipt.signer) != (
                            hashed[index].doc_hash,
                            signer,
                        ) or receipt.signature != signed[index][1]:
                            raise CliError(
                                "the API returned a receipt for another document or signature", ExitCode.UNAVAILABLE
                            )
                        receipt = dataclasses.replace(
                            receipt, file_name=hashed[index].path.name, file_size=hashed[index].size
                        )
                        row["receipt"] = str(_save_receipt(receipt, hashed[index].path, force))
                    return row

                with c.out.waiting("waiting for the anchor", total=len(hashed)) as one_done:
                    _in_parallel(finish, len(hashed), one_done)

    failed = [r for r in results if r["state"] == "failed"]
    error = None
    if failed:
        error = CliError(
            f"{len(failed)} submission(s) failed: {failed[0].get('error') or 'see docchain status'}",
            ExitCode.UNAVAILABLE,
            details=results,
        )
    elif wait and any(r["state"] not in ("anchored", "confirmed") for r in results):
        error = CliError(
            f"not anchored within {wait_timeout:g}s; check later with `docchain status`",
            ExitCode.UNAVAILABLE,
            details=results,
        )
    if error is None:  # with --json, the rows of a failed run travel in the error object (stdout holds one)
        c.out.emit(results)
    c.out.table(
        f"signed by {signer}",
        ["file", "sha256", "state", "tx", "block", "receipt"],
        [
            (
                r["file"],
                short(r["docHash"], 8),
                r["state"],
                short(r.get("txHash"), 6),
                r.get("blockNumber"),
                r.get("receipt"),
            )
            for r in results
        ],
    )
    if error is not None:
        raise error


# ---------------------------------------------------------------------- verify


def _receipt_for(path: Path | None, receipt_opt: Path | None) -> Path | None:
    """The receipt to check: ``--receipt``, else the one beside the file, if any."""
    candidate = receipt_opt or (receipt_path(path) if path is not None else None)
    if candidate is None or not candidate.exists():
        if receipt_opt is not None:
            raise UsageError(f"no such receipt: {receipt_opt}")
        return None
    return candidate


@app.command()
def verify(
    target: Annotated[str, typer.Argument(metavar="FILE|HASH", help="The document (or its 0x SHA-256).")],
    receipt_opt: Annotated[
        Path | None,
        typer.Option(
            "--receipt",
            "-r",
            envvar="DOCCHAIN_RECEIPT",
            metavar="FILE",
            help="Receipt to check [default: FILE.docchain.json if present].",
        ),
    ] = None,
    signer: Annotated[
        str | None,
        typer.Option("--signer", envvar="DOCCHAIN_SIGNER", metavar="ADDRESS", help="Expected signer."),
    ] = None,
    rpc: RpcOpt = None,
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            envvar="DOCCHAIN_REGISTRY",
            metavar="ADDRESS",
            help="Trust only this registry [default: the one the local stack recorded, else docchain's published "
            "deployment for the chain, else any registry running released docchain code].",
        ),
    ] = None,
    confirmations: Annotated[
        int | None,
        typer.Option(
            "--confirmations",
            envvar="DOCCHAIN_CONFIRMATIONS",
            min=1,
            help="Confirmations required with --rpc [default: 1].",
        ),
    ] = None,
    api: ApiOpt = None,
    timeout: TimeoutOpt = None,
    retries: RetriesOpt = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Verify who signed a document, when, and that it is unchanged.

    Without --rpc, the docchain API checks it. With --rpc URL (or DOCCHAIN_RPC), verification is
    independent: only the file, the receipt and an Ethereum node are used, no docchain server. The
    registry named by a receipt is trusted only if its code is a released docchain registry and, when a
    registry is pinned (--registry, or a recorded deployment for the chain), only if it is that one. Each
    step (file, chain, registry, signature, record, anchor, confirmations, revocation) is printed, then
    the verdict.

    Exit status: 0 valid · 1 verification failed (revoked, not registered, signed by others, file
    mismatch, invalid at a step) · 2 bad input · 3 network or chain unavailable.

    Examples:

        docchain verify contract.pdf

        docchain verify contract.pdf --signer 0xAbC… --json

        docchain verify contract.pdf --rpc https://any-node.example     # uses contract.pdf.docchain.json

        docchain verify contract.pdf --rpc https://node.example --registry 0x5FbDB2315678afecb367f032d93F642f64180aa3
    """
    from docchain.chain.verify import Question, receipt_refused
    from docchain.client import verifying

    c = Ctx.make(json_out, verbose)
    expected = parse_address(signer, "--signer") if signer else None
    pinned = c.config.pick("registry", registry)
    pinned = parse_address(pinned, "--registry") if pinned else None
    source = "DOCCHAIN_REGISTRY" if registry and os.environ.get("DOCCHAIN_REGISTRY") == registry else "--registry"
    if pinned and not registry:
        source = f"the config file ({c.config.source})"
    doc_hash, path = documents.hash_or_file(target)
    receipt_file = _receipt_for(path, receipt_opt)
    receipt: Receipt | None = None
    result: dict[str, Any] | None = None
    try:
        receipt = None if receipt_file is None else read_receipt(receipt_file)
    except InvalidInput as exc:
        # evidence that fails, not a usage mistake: said as the verdict of the receipt step
        result = {**receipt_refused(doc_hash, f"{receipt_file}: {exc}").to_json(), "mode": "local"}
    if result is None and rpc is not None:
        question = Question(doc_hash, expected, receipt, int(c.config.pick("confirmations", confirmations)))
        verdict = verifying.verify_with_node(c.rpc_url(rpc), c.timeout(timeout), question, pinned, source)
        result = {**verdict.to_json(), "mode": "rpc"}
    elif result is None:
        with c.api(api, timeout, retries) as client:
            result = {
                **client.verify(to_hex(doc_hash), expected, None if receipt is None else receipt.to_json()),
                "mode": "api",
            }
        trusted = (result.get("trust") or {}).get("registry")
        if pinned and trusted and trusted != pinned:
            raise VerificationFailed(f"the API verified against registry {trusted}, not the pinned {pinned} ({source})")
    c.out.emit(result)
    c.out.say(f"document {to_hex(doc_hash)}" + (f" ({path})" if path else ""))
    verifying.show(c.out, result)
    if result.get("signers"):
        c.out.table("signers on record", SIGNER_COLUMNS, _signer_rows(result["signers"]))
    if result.get("outcome") != "valid":
        raise typer.Exit(ExitCode.VERIFICATION_FAILED)


# ---------------------------------------------------------------------- status, list, get


def _signer_rows(signers: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            s.get("signer"),
            s.get("state"),
            short(s.get("txHash"), 6),
            s.get("blockNumber"),
            when(s.get("timestamp")),
            s.get("confirmations"),
            when(s.get("revokedAt")) if s.get("revokedAt") else "-",
        )
        for s in signers
    ]


SIGNER_COLUMNS = ["signer", "state", "tx", "block", "time", "confirmations", "revoked"]


@app.command()
def status(
    target: Annotated[str, typer.Argument(metavar="HASH|FILE", help="A 0x SHA-256 or a file to hash.")],
    api: ApiOpt = None,
    timeout: TimeoutOpt = None,
    retries: RetriesOpt = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show a document's signers and their states (pending → submitted → anchored → confirmed).

    Examples:

        docchain status contract.pdf

        docchain status 0x3a7b…e1 --json
    """
    c = Ctx.make(json_out, verbose)
    doc_hash, _ = documents.hash_or_file(target)
    with c.api(api, timeout, retries) as client:
        doc = client.document(to_hex(doc_hash))
    c.out.emit(doc)
    c.out.say(f"document {doc.get('docHash')}  stored: {'yes' if doc.get('stored') else 'no'}")
    c.out.table(None, SIGNER_COLUMNS, _signer_rows(doc.get("signers", [])))


@app.command("list")
def list_documents(
    signer: Annotated[
        str | None,
        typer.Option(
            "--signer",
            envvar="DOCCHAIN_SIGNER",
            metavar="ADDRESS",
            help="Only documents this address signed.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", envvar="DOCCHAIN_SINCE", metavar="DATE", help="ISO-8601 date/time or unix seconds."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", envvar="DOCCHAIN_UNTIL", metavar="DATE", help="ISO-8601 date/time or unix seconds."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", envvar="DOCCHAIN_LIMIT", min=1, max=1000, help="Page size.")] = 50,
    cursor: Annotated[
        str | None, typer.Option("--cursor", envvar="DOCCHAIN_CURSOR", help="Continue from a previous page.")
    ] = None,
    api: ApiOpt = None,
    timeout: TimeoutOpt = None,
    retries: RetriesOpt = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """List registered documents, newest first, by signer and time.

    Examples:

        docchain list --signer 0xAbC… --since 2025-01-01

        docchain list --json --limit 200
    """
    c = Ctx.make(json_out, verbose)
    address = parse_address(signer, "--signer") if signer else None
    start, end = _parse_time(since, "--since"), _parse_time(until, "--until")
    with c.api(api, timeout, retries) as client:
        page = client.documents(signer=address, since=start, until=end, limit=limit, cursor=cursor)
    c.out.emit(page)
    rows = [
        (
            item.get("docHash"),
            item.get("signer"),
            item.get("state"),
            item.get("blockNumber"),
            when(item.get("timestamp")),
        )
        for item in page.get("items", [])
    ]
    c.out.table(None, ["sha256", "signer", "state", "block", "time"], rows)
    if page.get("nextCursor"):
        c.out.say(f"more: --cursor {page['nextCursor']}")


@app.command()
def get(
    doc: Annotated[str, typer.Argument(metavar="HASH", help="The document's 0x SHA-256.")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", envvar="DOCCHAIN_OUTPUT", metavar="FILE", help="Where to write it."),
    ],
    force: ForceOpt = False,
    api: ApiOpt = None,
    timeout: TimeoutOpt = None,
    retries: RetriesOpt = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Download a stored document and check that its SHA-256 is the one asked for.

    Example:

        docchain get 0x3a7b…e1 -o contract.pdf
    """
    import hashlib
    import tempfile

    c = Ctx.make(json_out, verbose)
    doc_hash = parse_hash32(doc, "document hash")
    if output.exists() and not force:
        raise UsageError(f"{output} already exists; pass --force to replace it")
    digest, size = hashlib.sha256(), 0
    directory = output.resolve().parent
    if not directory.is_dir():
        raise UsageError(f"no such directory: {directory}")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{output.name}.")
    try:
        with (
            c.api(api, timeout, retries) as client,
            os.fdopen(fd, "wb") as out,
            client.download(to_hex(doc_hash)) as resp,
        ):
            for chunk in resp.iter_bytes():
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if digest.digest() != doc_hash:
            raise VerificationFailed(
                f"the downloaded bytes hash to {to_hex(digest.digest())}, not {to_hex(doc_hash)}; nothing written"
            )
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    c.out.emit({"docHash": to_hex(doc_hash), "path": str(output), "size": size})
    c.out.say(f"wrote {output} ({size} bytes, SHA-256 checked)")


# ---------------------------------------------------------------------- revoke


@app.command()
def revoke(
    target: Annotated[str, typer.Argument(metavar="FILE|HASH", help="The document you signed, or its 0x SHA-256.")],
    key: KeyOpt = None,
    password_file: PasswordFileOpt = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            "-w",
            envvar="DOCCHAIN_WAIT",
            help="Wait until the revocation is on chain (exit 3 with the reason if the chain refuses it).",
        ),
    ] = False,
    wait_timeout: Annotated[
        float, typer.Option("--wait-timeout", envvar="DOCCHAIN_WAIT_TIMEOUT", min=1, metavar="SECONDS")
    ] = 120.0,
    api: ApiOpt = None,
    timeout: TimeoutOpt = None,
    retries: RetriesOpt = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Revoke your signature of a document (a signed EIP-712 Revocation, relayed by the API).

    Examples:

        docchain revoke contract.pdf --key alice --wait

        docchain revoke 0x3a7b…e1 --json
    """
    c = Ctx.make(json_out, verbose)
    doc_hash, _ = documents.hash_or_file(target)
    client = c.api(api, timeout, retries)
    _, private = c.unlock(key, password_file)
    signer = address_of(private)
    with client:
        domain = documents.domain_from_api(client.chain())
        nonce = client.nonce(signer)
        revocation, signature = documents.sign_revocation(domain, doc_hash, private, signer, nonce)
        answer = client.revoke(revocation.to_json(), to_hex(signature))
        if wait:
            answer = _wait_revoked(client, answer, to_hex(doc_hash), signer, revocation.nonce, wait_timeout)
    c.out.emit(answer)
    c.out.say(f"revocation of {to_hex(doc_hash)} by {signer}: {answer.get('state')}")


def _wait_revoked(
    client: ApiClient, answer: dict[str, Any], doc: str, signer: str, nonce: int, wait_timeout: float
) -> dict[str, Any]:
    """Follow the revocation request (GET .../revocations/{signer}) until it is mined and indexed. One the
    relayer gave up on (the chain refused it) ends the wait with its error: exit 3."""
    deadline = time.monotonic() + wait_timeout
    while True:
        requests = client.revocations(doc, signer).get("revocations", [])
        mine: dict[str, Any] = next((r for r in requests if r.get("nonce") == nonce), {})
        if mine.get("state") == "failed":
            reason = mine.get("error") or "no reason given"
            raise CliError(f"the revocation of {doc} by {signer} failed: {reason}", ExitCode.UNAVAILABLE)
        if mine.get("state") == "revoked":  # mined; wait for the index too, so `docchain status` agrees at once
            signers = client.document(doc).get("signers", [])
            entry: dict[str, Any] = next((s for s in signers if s.get("signer") == signer), {})
            if entry.get("revokedAt"):
                return {**answer, "state": "revoked", "txHash": mine.get("txHash"), "revokedAt": entry["revokedAt"]}
        if time.monotonic() > deadline:
            raise CliError(f"the revocation was not on chain within {wait_timeout:g}s", ExitCode.UNAVAILABLE)
        time.sleep(0.25)  # no notification stream for revocations; a gentle poll


# ---------------------------------------------------------------------- inspect (node directly)


def _registry_for(c: Ctx, rpc: str | None, registry: str | None, data_dir_opt: Path | None, timeout: float | None):  # type: ignore[no-untyped-def]
    from docchain.chain.registry import Registry
    from docchain.client import rpc as rpc_mod

    url = c.rpc_url(rpc)
    flag = parse_address(registry, "--registry") if registry else None
    w3 = rpc_mod.connect(url, c.timeout(timeout))
    return w3, Registry(w3, rpc_mod.registry_address(w3, flag, data_dir(data_dir_opt)))


def _event_table(c: Ctx, events: list[dict[str, Any]], title: str | None = None) -> None:
    c.out.table(
        title,
        ["block", "event", "document", "signer", "tx"],
        [(e["blockNumber"], e["kind"], short(e["docHash"], 8), e["signer"], short(e["txHash"], 6)) for e in events],
    )


@inspect_app.command("tx")
def inspect_tx(
    tx_hash: Annotated[str, typer.Argument(metavar="HASH", help="Transaction hash.")],
    rpc: RpcOpt = None,
    registry: RegistryOpt = None,
    data_dir_opt: DataDirOpt = None,
    timeout: TimeoutOpt = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show a transaction: status, gas, block, and the registry events it emitted.

    Example:

        docchain inspect tx 0x5c1e…90
    """
    from docchain.client import rpc as rpc_mod

    c = Ctx.make(json_out, verbose)
    raw = parse_hash32(tx_hash, "transaction hash")
    w3, reg = _registry_for(c, rpc, registry, data_dir_opt, timeout)
    tx, rcpt = rpc_mod.get_tx(w3, raw)
    events = [e.to_json() for e in reg.events_in(rcpt)]
    data = {
        "hash": to_hex(raw),
        "blockNumber": rcpt["blockNumber"],
        "from": tx["from"],
        "to": tx.get("to"),
        "status": "success" if rcpt["status"] == 1 else "reverted",
        "gasUsed": rcpt["gasUsed"],
        "toRegistry": tx.get("to") == reg.address,
        "events": events,
    }
    c.out.emit(data)
    c.out.fields(f"transaction {to_hex(raw)}", [(k, v) for k, v in data.items() if k != "events"])
    _event_table(c, events, "registry events")


@inspect_app.command("block")
def inspect_block(
    number: Annotated[int, typer.Argument(metavar="N", min=0, help="Block number.")],
    rpc: RpcOpt = None,
    registry: RegistryOpt = None,
    data_dir_opt: DataDirOpt = None,
    timeout: TimeoutOpt = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show a block: hash, time, transactions, and the registry events in it.

    Example:

        docchain inspect block 42
    """
    from docchain.client import rpc as rpc_mod

    c = Ctx.make(json_out, verbose)
    w3, reg = _registry_for(c, rpc, registry, data_dir_opt, timeout)
    block = rpc_mod.get_block(w3, number)
    events = [e.to_json() for e in reg.events(number, number)]
    data = {
        "number": number,
        "hash": to_hex(bytes(block["hash"])),
        "timestamp": block["timestamp"],
        "transactions": [to_hex(bytes(t["hash"])) for t in block["transactions"]],
        "events": events,
    }
    c.out.emit(data)
    c.out.fields(
        f"block {number}",
        [
            ("hash", data["hash"]),
            ("time", when(block["timestamp"])),
            ("transactions", len(data["transactions"])),
        ],
    )
    _event_table(c, events, "registry events")


@inspect_app.command("events")
def inspect_events(
    signer: Annotated[
        str | None,
        typer.Option("--signer", envvar="DOCCHAIN_SIGNER", metavar="ADDRESS", help="Only this signer's events."),
    ] = None,
    doc: Annotated[
        str | None,
        typer.Option("--doc", envvar="DOCCHAIN_DOC", metavar="HASH", help="Only this document's events."),
    ] = None,
    from_block: Annotated[
        int | None,
        typer.Option(
            "--from-block",
            envvar="DOCCHAIN_FROM_BLOCK",
            min=0,
            metavar="N",
            help="First block to scan [default: the registry's deployment block, when deployments.json in "
            "the data dir records this registry; else 0].",
        ),
    ] = None,
    rpc: RpcOpt = None,
    registry: RegistryOpt = None,
    data_dir_opt: DataDirOpt = None,
    timeout: TimeoutOpt = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """List the registry's Registered / Revoked events, decoded (eth_getLogs on the node).

    Examples:

        docchain inspect events --signer 0xAbC…

        docchain inspect events --doc 0x3a7b…e1 --rpc https://any-node.example --registry 0x5Fb…
    """
    c = Ctx.make(json_out, verbose)
    address = parse_address(signer, "--signer") if signer else None
    doc_hash = parse_hash32(doc, "--doc") if doc else None
    w3, reg = _registry_for(c, rpc, registry, data_dir_opt, timeout)
    title = None
    if from_block is None:
        # eth_getLogs from block 0 slows down with the chain's length; nothing of the registry predates it
        from docchain.chain.deploy import deployment_block

        from_block = deployment_block(data_dir(data_dir_opt), reg.chain_id, reg.address)
        if from_block is not None and from_block > int(w3.eth.block_number):
            # a record from before the chain was reset (a dev node without its state): not this chain's history
            from_block = None
        if from_block is not None:
            title = f"registry events since block {from_block} (its deployment)"
    events = [e.to_json() for e in reg.events(from_block or 0, doc_hash=doc_hash, signer=address)]
    c.out.emit(events)
    _event_table(c, events, title)


# ---------------------------------------------------------------------- deploy


@app.command()
def deploy(
    key: KeyOpt = None,
    password_file: PasswordFileOpt = None,
    rpc: RpcOpt = None,
    data_dir_opt: DataDirOpt = None,
    new: Annotated[
        bool,
        typer.Option("--new", envvar="DOCCHAIN_DEPLOY_NEW", help="Deploy a fresh registry even if one is recorded."),
    ] = False,
    timeout: TimeoutOpt = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Deploy the registry contract to --rpc, paid by your key, and record its address in the data dir.

    Idempotent: a registry already recorded for the chain (with code on chain) is reused unless --new.

    Examples:

        docchain deploy --rpc https://sepolia.example --key deployer

        docchain deploy --json
    """
    from docchain.chain import deploy as deployments
    from docchain.chain.sender import TxSender
    from docchain.client import rpc as rpc_mod
    from docchain.client import verifying

    c = Ctx.make(json_out, verbose)
    url = c.rpc_url(rpc)
    directory = data_dir(data_dir_opt)
    _, private = c.unlock(key, password_file)
    w3 = rpc_mod.connect(url, c.timeout(timeout))
    sender = TxSender(w3, private)
    if new:
        deployment, fresh = deployments.deploy(sender), True
        deployments.record(directory, deployment)
    else:
        deployment, fresh = deployments.ensure_deployed(sender, directory)
    verifying.record_trusted(deployment)
    data = {
        "chainId": deployment.chain_id,
        "address": deployment.address,
        "blockNumber": deployment.block_number,
        "txHash": deployment.tx_hash,
        "fresh": fresh,
        "deployments": str(directory / deployments.FILE_NAME),
    }
    c.out.emit(data)
    c.out.say(
        ("deployed" if fresh else "already deployed:")
        + f" registry {deployment.address} on chain {deployment.chain_id} (block {deployment.block_number})"
    )


# ---------------------------------------------------------------------- embedded stack

from docchain.client import stack_commands  # noqa: E402,F401  (registers node, serve, up)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # before or after a command ran (imports, exit): no message, the status only
        raise SystemExit(ExitCode.INTERRUPTED) from None
