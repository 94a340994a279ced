"""The options many commands share, declared once, and the Click classes that give every command the
same error handling.

Global options (``--api``, ``--rpc``, ``--config-dir``, ``--data-dir``, ``--timeout``, ``--retries``,
``--json``, ``--verbose``) are parameters of the root callback only (:mod:`docchain.client.cli`). The root
group copies them onto every sub-command, so ``docchain --json status X`` and ``docchain status X --json``
both work, as they always did; each copy stores its value in the invocation's
:class:`~docchain.client.context.CliContext` (``ctx.obj``) rather than in the command's arguments.
"""

from __future__ import annotations

import copy
import traceback
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup
from typer.exceptions import TyperException

from docchain.client.context import CliContext
from docchain.client.errors import ExitCode, error_object, exit_code_for, one_line

GLOBAL_PANEL = "Global options (also before the command)"
ALWAYS_SHOWN = frozenset({"json", "verbose", "config_dir"})
"""Global options every command's --help lists; the others only where the command uses them."""

HELP_WIDTH = 80


def _store(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """Put a global option's value into the invocation's context, unless a stronger source set it already
    (the command line beats the environment, which beats nothing)."""
    source = ctx.get_parameter_source(param.name or "")
    if isinstance(ctx.obj, CliContext) and param.name and source is not None:
        ctx.obj.set(param.name, value, source.name)
    return value


# ---------------------------------------------------------------------- global options (root callback only)

ApiOpt = Annotated[
    str | None,
    typer.Option(
        "--api",
        envvar="DOCCHAIN_API",
        metavar="URL",
        callback=_store,
        rich_help_panel=GLOBAL_PANEL,
        help="docchain API base URL [default: the one `docchain up` recorded, else http://127.0.0.1:8000].",
    ),
]
RpcOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--rpc",
        envvar="DOCCHAIN_RPC",
        metavar="URL",
        callback=_store,
        rich_help_panel=GLOBAL_PANEL,
        help="Ethereum JSON-RPC URL [default: the one `docchain up` recorded, else http://127.0.0.1:8545]. "
        "`verify` checks through the node only when --rpc is on the command line (or with --via rpc). "
        "Repeatable for `verify --offline`, which asks each node whether the bundle's block is canonical; "
        "every other command uses the first.",
    ),
]
ConfigDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--config-dir",
        envvar="DOCCHAIN_CONFIG_DIR",
        metavar="DIR",
        callback=_store,
        rich_help_panel=GLOBAL_PANEL,
        help="Keys, config.toml, trusted deployments, and stack.json (what `docchain up` serves) "
        "[default: user config dir].",
    ),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="DOCCHAIN_DATA_DIR",
        metavar="DIR",
        callback=_store,
        rich_help_panel=GLOBAL_PANEL,
        help="Embedded stack data: node state, deployments.json, database [default: user data dir].",
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        envvar="DOCCHAIN_TIMEOUT",
        min=0.1,
        metavar="SECONDS",
        callback=_store,
        rich_help_panel=GLOBAL_PANEL,
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
        metavar="N",
        callback=_store,
        rich_help_panel=GLOBAL_PANEL,
        help="Retries of idempotent calls on connection failures [default: 3].",
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        envvar="DOCCHAIN_JSON",
        callback=_store,
        rich_help_panel=GLOBAL_PANEL,
        help="Print one JSON document (for scripts).",
    ),
]
VerboseOpt = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        envvar="DOCCHAIN_VERBOSE",
        callback=_store,
        rich_help_panel=GLOBAL_PANEL,
        help="Show tracebacks of errors.",
    ),
]

# ---------------------------------------------------------------------- options of several commands

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
        help="Read the key's password from FILE (else $DOCCHAIN_PASSWORD, else a prompt, once the API or "
        "node answers).",
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
WaitTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--wait-timeout",
        envvar="DOCCHAIN_WAIT_TIMEOUT",
        min=1,
        metavar="SECONDS",
        help="Give up waiting after this long.",
    ),
]


class Anchoring(StrEnum):
    """How the API anchors a submission (its ``anchoring`` field)."""

    DIRECT = "direct"
    MERKLE = "merkle"


AnchoringOpt = Annotated[
    Anchoring | None,
    typer.Option(
        "--anchoring",
        # no environment variable: DOCCHAIN_ANCHORING is the server's default, which a submission naming none
        # gets, and an operator's export of it must not change what the CLI's --direct accepts
        case_sensitive=False,
        help="direct: a record of its own on chain; merkle: a leaf of a tree whose root alone goes on chain "
        "(cheaper; the receipt carries the proof) [default: the API's].",
    ),
]
SignerOpt = Annotated[
    str | None,
    typer.Option("--signer", envvar="DOCCHAIN_SIGNER", metavar="ADDRESS", help="The signer's address."),
]
KindOpt = Annotated[
    str | None,
    typer.Option("--node", envvar="DOCCHAIN_NODE", metavar="anvil|ganache", help="Local node [default: anvil]."),
]
NodePortOpt = Annotated[
    int | None,
    typer.Option(
        "--node-port", envvar="DOCCHAIN_NODE_PORT", min=1, max=65535, help="Local node's JSON-RPC port [default: 8545]."
    ),
]
HostOpt = Annotated[
    str | None,
    typer.Option("--host", envvar="DOCCHAIN_HOST", help="Interface to listen on [default: 127.0.0.1]."),
]
PortOpt = Annotated[
    int | None,
    typer.Option("--port", envvar="DOCCHAIN_PORT", min=1, max=65535, help="API port [default: 8000]."),
]


# ---------------------------------------------------------------------- errors, mapped once


def fail(
    obj: CliContext, code: ExitCode, message: str, exc: BaseException | None = None, details: Any = None
) -> typer.Exit:
    """Report an error once (one line on stderr; with --json, the error object on stdout) and return the
    Exit that ends the command with ``code``."""
    if obj.verbose and exc is not None:
        traceback.print_exception(exc)
    obj.out.fail(message, error_object(code, message, details))
    return typer.Exit(code)


def _usage_fail(obj: CliContext, exc: TyperException) -> typer.Exit:
    """A usage error found by Click itself (unknown option, missing argument, bad value): exit 2, in one
    line that points at the command's --help, and as the JSON error object with --json."""
    message = one_line(Exception(exc.format_message())).rstrip(".")
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return fail(obj, ExitCode.USAGE, message, exc)


def _is_help_request(exc: BaseException) -> bool:
    return type(exc).__name__ == "NoArgsIsHelpError"  # `docchain keys`: the help, as Click prints it


class DocchainCommand(TyperCommand):
    """A command that takes the global options too. ``uses`` names those it shows in its --help (the rest
    it accepts, hidden, so a global option works after any command)."""

    uses: ClassVar[frozenset[str]] = frozenset()

    def invoke(self, ctx: Any) -> Any:
        # every option is parsed now (--config-dir included): a malformed config.toml fails every command
        # the same way, before it does anything
        if isinstance(ctx.obj, CliContext):
            ctx.obj.config  # noqa: B018 - loaded (and checked) for its errors
        return super().invoke(ctx)


def uses(*names: str) -> type[DocchainCommand]:
    """The command class for a command that uses the global options ``names``."""
    return type("DocchainCommand", (DocchainCommand,), {"uses": frozenset(names)})


def _with_globals(command: Any, globals_: list[Any]) -> None:
    """Copy the root's global options onto ``command`` and, for a group, onto each of its commands."""
    shown = ALWAYS_SHOWN | getattr(command, "uses", frozenset())
    own = {p.name for p in command.params}
    for param in globals_:
        if param.name in own:
            continue
        clone = copy.copy(param)
        clone.expose_value = False  # the value goes to ctx.obj, through the option's callback
        clone.hidden = param.name not in shown
        command.params.append(clone)
    for sub in getattr(command, "commands", {}).values():
        _with_globals(sub, globals_)


class DocchainGroup(TyperGroup):
    """Maps every exception to its exit status once, for all commands and sub-commands, Click's own usage
    errors and Ctrl-C included. The innermost group handles an error; the outer ones see only its Exit.
    The root group (the one whose callback declares the global options) lends them to every command."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        globals_ = [p for p in self.params if getattr(p, "rich_help_panel", None) == GLOBAL_PANEL]
        if globals_:
            for sub in self.commands.values():
                _with_globals(sub, globals_)

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        obj: CliContext = extra.get("obj")  # type: ignore[assignment]  # set just below when it is not one
        if parent is None and not isinstance(obj, CliContext):
            # a new invocation (tests run many in one process): a new context, nothing carried over
            obj = extra["obj"] = CliContext.start(tuple(args))
        elif parent is not None:
            obj = parent.obj
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except TyperException as exc:
            if _is_help_request(exc):
                raise
            raise _usage_fail(obj, exc) from None

    def invoke(self, ctx: Any) -> Any:
        obj: CliContext = ctx.obj
        try:
            return super().invoke(ctx)
        except typer.Exit:
            raise
        except typer.Abort as exc:
            # Click's prompts turn both Ctrl-C and end of input into Abort (keys.prompt_secret tells them
            # apart for its own prompts); it would end with status 1 and "Aborted!".
            if isinstance(exc.__context__, EOFError):
                raise fail(obj, ExitCode.USAGE, "no input: stdin ended at a prompt", exc) from None
            raise fail(obj, ExitCode.INTERRUPTED, "interrupted", exc) from None
        except TyperException as exc:
            if _is_help_request(exc):
                raise
            raise _usage_fail(obj, exc) from None
        except KeyboardInterrupt as exc:
            raise fail(obj, ExitCode.INTERRUPTED, "interrupted", exc) from None
        except Exception as exc:
            raise fail(obj, exit_code_for(exc), one_line(exc), exc, getattr(exc, "details", None)) from None


class DefaultCommandGroup(DocchainGroup):
    """A group that runs :attr:`default_command` when its first argument names none of its commands, so that
    ``docchain receipt FILE`` stays ``docchain receipt get FILE`` beside ``docchain receipt upgrade R``."""

    default_command: ClassVar[str] = ""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return list(super().parse_args(ctx, args))


def new_app(help_text: str, *, default_command: str | None = None, **kwargs: Any) -> typer.Typer:
    """A Typer app (group) with docchain's error handling and 80-column help; ``default_command``: the command
    that runs when the first argument names none of the group's (:class:`DefaultCommandGroup`)."""
    cls: type[DocchainGroup] = DocchainGroup
    if default_command is not None:
        cls = type("DefaultCommandGroup", (DefaultCommandGroup,), {"default_command": default_command})
    return typer.Typer(
        cls=cls,
        help=help_text,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": HELP_WIDTH},
        **kwargs,
    )


def examples(*lines: str) -> str:
    """A command's "Examples:" epilog: one invocation per line, kept as written (a fenced block, so Markdown
    neither joins nor re-wraps them)."""
    return "**Examples:**\n\n```sh\n" + "\n".join(lines) + "\n```"


def command(
    app: typer.Typer, name: str, *, examples_: Iterable[str], globals_used: Iterable[str] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a command on ``app`` with its examples and the global options its help shows."""
    return app.command(name, cls=uses(*globals_used), epilog=examples(*examples_))
