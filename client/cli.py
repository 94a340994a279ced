"""The ``docchain`` command line: sign documents, register them on Ethereum, verify them anywhere.

This module is the root group only: its callback declares the global options, and each command group
lives in its own module (``*_commands.py``), registered here. Every command validates its inputs before
any network call, prints a table (or one JSON document with ``--json``), and ends with one of the exit
statuses of :mod:`docchain.client.errors`; errors are one line on stderr (``--verbose`` adds the
traceback).
"""

from __future__ import annotations

from docchain.client import (
    certificate_commands,
    envelope_commands,
    get_commands,
    inspect_commands,
    keys_commands,
    query_commands,
    receipt_commands,
    stack_commands,
    submit_commands,
    verify_commands,
)
from docchain.client.errors import ExitCode
from docchain.client.options import (
    ApiOpt,
    ConfigDirOpt,
    DataDirOpt,
    JsonOpt,
    RetriesOpt,
    RpcOpt,
    TimeoutOpt,
    VerboseOpt,
    new_app,
)

EXIT_STATUS_HELP = """
Exit status: 0 ok · 1 verification failed (invalid, not registered, signed by others, file mismatch,
revoked, untrusted registry) · 2 usage or bad input (arguments, file, hash, address, config) ·
3 network or chain unavailable (API or node unreachable or timed out, server error, reverted
transaction) · 130 interrupted. With --json an error is one JSON object on stdout:
{"error": {"code": 3, "kind": "unavailable", "message": "..."}}.
"""

app = new_app(
    "**docchain** — sign documents and prove on Ethereum who signed them, when, and that they are "
    "unchanged.\n\n"
    "Start here: `docchain up` runs a local node, the registry and the API, and signs a sample document; "
    "later commands find them through the URLs it records, on any port.\n\n"
    "Settings come from flags, then environment variables (shown in each --help), then "
    '`config.toml` in the config directory, e.g. `api = "http://host:8000"`, then what `docchain up` '
    "recorded.\n\n" + EXIT_STATUS_HELP,
    epilog="**Examples:**\n\n```sh\ndocchain up\ndocchain keys new alice\ndocchain submit contract.pdf --wait\n"
    "docchain verify contract.pdf\ndocchain --api http://host:8000 --json status contract.pdf\n```",
)


@app.callback()
def root(
    api: ApiOpt = None,
    rpc: RpcOpt = None,
    config_dir: ConfigDirOpt = None,
    data_dir: DataDirOpt = None,
    timeout: TimeoutOpt = None,
    retries: RetriesOpt = None,
    json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """The global options: each one's callback stores it in the invocation's context (ctx.obj)."""


app.add_typer(keys_commands.app, name="keys")
app.add_typer(stack_commands.node_app, name="node")
app.add_typer(inspect_commands.app, name="inspect")
app.add_typer(envelope_commands.app, name="envelope")
app.add_typer(certificate_commands.app)
for module in (submit_commands, verify_commands, query_commands, get_commands, receipt_commands, stack_commands):
    app.add_typer(module.app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # before or after a command ran (imports, exit): no message, the status only
        raise SystemExit(ExitCode.INTERRUPTED) from None
