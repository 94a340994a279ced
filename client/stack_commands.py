"""Commands of the embedded stack: ``node up|down|status``, ``serve``, ``up`` and ``deploy``.

``up``, ``serve`` and ``node up`` record the URLs they serve in ``stack.json`` of the config directory, so
that every later command finds a stack started on other ports without being told.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from docchain.chain.errors import NodeError
from docchain.chain.node import LocalNode, NodeKind, RunningNode
from docchain.chain.typed_data import address_of
from docchain.chain.values import parse_hex, to_hex
from docchain.client import config, documents, stack
from docchain.client.api_client import ApiClient
from docchain.client.context import CliContext
from docchain.client.errors import CliError, ExitCode, UsageError
from docchain.client.options import (
    HostOpt,
    KeyOpt,
    KindOpt,
    NodePortOpt,
    PasswordFileOpt,
    PortOpt,
    command,
    new_app,
)

if TYPE_CHECKING:
    from web3 import Web3

    from docchain.chain.deploy import Deployment

app = new_app("Run the embedded stack.")
node_app = new_app("Start, stop and inspect the embedded local Ethereum node (anvil by default).")


def _kind(c: CliContext, kind: str | None) -> NodeKind:
    value = str(c.config.pick("node", kind))
    if value == "anvil":
        return "anvil"
    if value == "ganache":
        return "ganache"
    raise UsageError(f"--node must be anvil or ganache, got {value!r}")


def _node_json(node: LocalNode | RunningNode, directory: Path) -> dict[str, Any]:
    """One shape for a node this command started (LocalNode) and one found through its pidfile (RunningNode,
    which knows no config: reading ``node.config`` from it was issue 19's defect 12)."""
    kind = node.config.kind if isinstance(node, LocalNode) else node.kind
    return {
        "running": True,
        "rpcUrl": node.rpc_url,
        "kind": kind,
        "pid": node.pid,
        "dataDir": str(stack.node_dir(directory)),
    }


@command(
    node_app,
    "up",
    globals_used=("data_dir",),
    examples_=["docchain node up", "docchain node up --node ganache --node-port 8546"],
)
def node_up(
    ctx: typer.Context,
    kind: KindOpt = None,
    host: HostOpt = None,
    node_port: NodePortOpt = None,
) -> None:
    """Start the embedded node in the background; its chain is kept in the data dir across restarts."""
    c: CliContext = ctx.obj
    directory = c.data_path
    node_kind = _kind(c, kind)
    running = stack.find_node(directory)
    if running is not None:
        c.out.emit({**_node_json(running, directory), "started": False})
        c.out.say(f"the node is already running at {running.rpc_url}")
        return
    node = stack.start_node(
        directory, node_kind, str(c.config.pick("host", host)), int(c.config.pick("node_port", node_port))
    )
    config.record_stack(c.config_path, rpc=str(node.rpc_url), data=directory)
    c.out.emit({**_node_json(node, directory), "started": True})
    c.out.say(f"started {node_kind} at [bold]{node.rpc_url}[/] (state in {stack.node_dir(directory)})")


@command(node_app, "down", globals_used=("data_dir",), examples_=["docchain node down"])
def node_down(ctx: typer.Context) -> None:
    """Stop the embedded node started by `docchain node up` (its chain state is kept)."""
    c: CliContext = ctx.obj
    stopped = stack.stop_node(c.data_path)
    c.out.emit({"stopped": stopped})
    c.out.say("node stopped" if stopped else "no node was running")


@command(node_app, "status", globals_used=("data_dir",), examples_=["docchain node status --json"])
def node_status(ctx: typer.Context) -> None:
    """Show whether the embedded node runs, where, and its chain id and latest block."""
    from docchain.client import rpc as rpc_mod

    c: CliContext = ctx.obj
    directory = c.data_path
    node = stack.find_node(directory)
    if node is None:
        c.out.emit({"running": False})
        c.out.say("the embedded node is not running (start it with `docchain node up`)")
        raise typer.Exit(ExitCode.VERIFICATION_FAILED)
    w3 = rpc_mod.connect(node.rpc_url, 5.0)
    data = {**_node_json(node, directory), "chainId": int(w3.eth.chain_id), "latestBlock": int(w3.eth.block_number)}
    c.out.emit(data)
    c.out.fields("embedded node", list(data.items()))


def _embedded_rpc(directory: Path) -> str | None:
    node = stack.find_node(directory)
    return None if node is None else str(node.rpc_url)


def _check_storage(directory: Path) -> None:
    """The API's storage settings and backends, checked as the API checks them at its start, but before
    this command starts a node or deploys anything: a bad setting is exit 2, an unreachable backend 3."""
    from pydantic import ValidationError

    from docchain.api.__main__ import check_storage
    from docchain.api.settings import Settings

    try:
        settings = Settings(data_dir=directory)  # the other DOCCHAIN_* settings from the environment, as the API
    except ValidationError:
        return  # another setting is wrong: the API's start says which, in its own words
    problem = check_storage(settings)
    if problem is not None:
        message, code = problem
        raise CliError(message, ExitCode(code))


def _dev_registry(c: CliContext, w3: Web3, directory: Path) -> tuple[Deployment, bool]:
    """The embedded node's registry, deployed by its dev account #0 when none is recorded: (deployment,
    whether it was deployed now)."""
    from docchain.chain import deploy as deployments
    from docchain.chain.sender import TxSender
    from docchain.client.verifying import record_trusted

    deployment, fresh = deployments.ensure_deployed(TxSender(w3, parse_hex(stack.DEV_RELAYER_KEY)), directory)
    record_trusted(deployment, c.trusted_deployments)
    return deployment, fresh


@command(
    app,
    "serve",
    globals_used=("rpc", "data_dir"),
    examples_=[
        "docchain node up && docchain serve",
        "docchain serve --workers 2      # two API processes on one port",
        "DOCCHAIN_RELAYER_KEYSTORE=relayer.json \\",
        "DOCCHAIN_RELAYER_PASSWORD_FILE=pw docchain serve --rpc https://node.example",
    ],
)
def serve(
    ctx: typer.Context,
    host: HostOpt = None,
    port: PortOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            envvar="DOCCHAIN_WORKERS",
            min=1,
            max=64,
            help="API processes serving the port, for more cores (one anchoring pipeline for all) [default: 1].",
        ),
    ] = None,
) -> None:
    """Run the docchain API in the foreground (Ctrl-C stops it gracefully).

    Without --rpc it uses the embedded node of the data dir (`docchain node up`) and, unless
    DOCCHAIN_RELAYER_KEY or DOCCHAIN_RELAYER_KEYSTORE is set, that dev node's account #0 as relayer
    (which also deploys the registry there if none is recorded yet).
    Other API settings are read from DOCCHAIN_* variables (see docs/operations.md).
    """
    c: CliContext = ctx.obj
    c.out.json_mode = False  # a server's log, not a result
    directory = c.data_path
    h, p = str(c.config.pick("host", host)), int(c.config.pick("port", port))
    relayer = None
    _check_storage(directory.absolute())
    if c.rpc is None:
        url = _embedded_rpc(directory)
        if url is None:
            raise UsageError("no --rpc given and no embedded node running: start one with `docchain node up`")
        if not stack.has_relayer_configured():
            relayer = stack.DEV_RELAYER_KEY
            c.out.say("relayer: the embedded dev node's account #0")
            from docchain.client import rpc as rpc_mod

            deployment, fresh = _dev_registry(c, rpc_mod.connect(url, 10.0), directory)
            if fresh:
                c.out.say(f"deployed the registry at {deployment.address} with that account")
    else:
        url = c.rpc_url()
        if not stack.has_relayer_configured():
            raise UsageError("set DOCCHAIN_RELAYER_KEY or DOCCHAIN_RELAYER_KEYSTORE (+ _PASSWORD_FILE) for a relayer")
    stack.check_port(h, p)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # a supervisor's SIGTERM stops the API like Ctrl-C does, and exits 0

    signal.signal(signal.SIGTERM, on_term)
    api: stack.ApiProcess | None = None
    try:
        env = stack.api_env(rpc_url=url, data_dir=directory, relayer_key=relayer)
        if workers is not None:
            env["DOCCHAIN_WORKERS"] = str(workers)
        api = stack.ApiProcess.start(host=h, port=p, env=env, log_path=None)
        config.record_stack(c.config_path, api=api.url, rpc=url, data=directory)
        c.out.say(f"serving the docchain API at [bold]{api.url}[/] on {url}  (Ctrl-C to stop)")
        code = api.process.wait()
    except KeyboardInterrupt:
        # Ctrl-C: the terminal delivered SIGINT to the child too. SIGTERM: only this process got it. Either
        # way the API is sent SIGTERM (if it still runs) and given time to flush its batch.
        if api is not None:
            api.stop()
        return
    if code in (ExitCode.USAGE, ExitCode.UNAVAILABLE):  # it refused to start, and said why on stderr above
        raise CliError(f"the API did not start (status {code}): see its line above", ExitCode(code))
    if code != 0:  # the API exits 0 after a graceful stop, whichever signal asked for it
        raise CliError(f"the API exited with status {code}", ExitCode.UNAVAILABLE)


@command(
    app,
    "up",
    globals_used=("data_dir",),
    examples_=[
        "docchain up",
        "docchain up --no-serve --json    # the whole check once, then stop",
        "docchain up --port 8080 --node-port 8546 --node ganache",
    ],
)
def up(
    ctx: typer.Context,
    serve_: Annotated[
        bool,
        typer.Option(
            "--serve/--no-serve",
            envvar="DOCCHAIN_SERVE",
            help="Keep serving until Ctrl-C, or stop everything and exit.",
        ),
    ] = True,
    kind: KindOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    node_port: NodePortOpt = None,
    confirmations: Annotated[
        int,
        typer.Option(
            "--confirmations",
            envvar="DOCCHAIN_CONFIRMATIONS",
            min=1,
            help="Blocks on top of an anchor before it counts as confirmed.",
        ),
    ] = 1,
) -> None:
    """Bring up the whole embedded stack and prove it works: the first command to run.

    Starts the local node (background, state in the data dir), deploys the registry and its
    envelopes once, starts the API, then signs, submits, anchors and verifies a sample document,
    printing each step.
    Then serves until Ctrl-C, which stops the API and then the node. The API and node URLs are
    recorded in the config directory (stack.json), so later commands find them on any port.
    """
    from web3.types import RPCEndpoint

    from docchain.chain.receipt import receipt_path, write_receipt
    from docchain.chain.verify import Question
    from docchain.client import rpc as rpc_mod
    from docchain.client import verifying

    c: CliContext = ctx.obj
    directory = c.data_path.absolute()
    node_kind = _kind(c, kind)
    h, p = str(c.config.pick("host", host)), int(c.config.pick("port", port))
    n_port = int(c.config.pick("node_port", node_port))
    stack.check_port(h, p)
    directory.mkdir(parents=True, exist_ok=True)
    _check_storage(directory)
    report: dict[str, Any] = {"dataDir": str(directory)}

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # a supervisor's SIGTERM cleans up like Ctrl-C does

    signal.signal(signal.SIGTERM, on_term)
    started_node = False
    api: stack.ApiProcess | None = None
    try:
        node: LocalNode | RunningNode | None = stack.find_node(directory)
        if node is None:
            c.out.step(f"starting {node_kind} on port {n_port} (chain state in {stack.node_dir(directory)})")
            node = stack.start_node(directory, node_kind, "127.0.0.1", n_port)
            started_node = True
        else:
            c.out.step(f"reusing the running node at {node.rpc_url}")
        rpc_url = str(node.rpc_url)
        report["rpcUrl"] = rpc_url
        w3 = rpc_mod.connect(rpc_url, 10.0)

        deployment, fresh = _dev_registry(c, w3, directory)
        c.out.step(
            ("deployed" if fresh else "found") + f" the registry at {deployment.address} on chain {deployment.chain_id}"
        )
        if deployment.envelopes is not None:  # ensure_deployed records them beside every registry
            c.out.step(f"envelopes (multi-party signing) at {deployment.envelopes.address}")
            report["envelopes"] = deployment.envelopes.address
        report["registry"] = deployment.address
        report["chainId"] = deployment.chain_id

        c.out.step(f"starting the API on {h}:{p} (log: {directory / 'api.log'})")
        api = stack.ApiProcess.start(
            host=h,
            port=p,
            log_path=directory / "api.log",
            env=stack.api_env(
                rpc_url=rpc_url,
                data_dir=directory,
                relayer_key=stack.DEV_RELAYER_KEY,
                confirmations=confirmations,
            ),
        )
        api.wait_ready()
        report["apiUrl"] = api.url
        report["recorded"] = str(config.record_stack(c.config_path, api=api.url, rpc=rpc_url, data=directory))

        sample = stack.sample_document(directory)
        signer_key = parse_hex(stack.DEV_SIGNER_KEY)
        signer = address_of(signer_key)
        with ApiClient(api.url, timeout=10.0) as client:
            domain = documents.domain_from_api(client.chain())
            doc_hash = documents.hash_files([sample])[0].doc_hash
            c.out.step(f"sample document {sample.name}: SHA-256 {to_hex(doc_hash)}")
            registration, signature = documents.sign_registration(domain, doc_hash, signer_key, signer, metadata={})
            c.out.step(f"signed it (EIP-712) as {signer}; the key stayed here, only the signature is sent")
            accepted = client.submit({"registration": registration.to_json(), "signature": to_hex(signature)})
            c.out.step(f"submitted: {accepted.get('state')} (submission {accepted.get('id')})")
            state = client.wait_for(
                str(accepted["id"]), until=time.monotonic() + 60, states={"anchored", "confirmed", "failed"}
            )
            if state.get("state") not in ("anchored", "confirmed"):
                raise CliError(
                    f"the sample was not anchored: {state.get('state')} {state.get('error') or ''}",
                    ExitCode.UNAVAILABLE,
                )
            # the API's DOCCHAIN_ANCHORING (passed through from this environment) chose the sample's mode
            under = f" under Merkle root {state.get('merkleRoot')}" if state.get("anchoring") == "merkle" else ""
            c.out.step(f"anchored{under} in block {state.get('blockNumber')} by transaction {state.get('txHash')}")
            depth = w3.eth.block_number - int(state["blockNumber"]) + 1
            if depth < confirmations:
                # the local node mines a block per transaction, none while idle: the sample's further
                # confirmations come from empty blocks mined here, then the API confirms it
                for _ in range(confirmations - depth):
                    w3.manager.request_blocking(RPCEndpoint("evm_mine"), [])
                c.out.step(
                    f"mined {confirmations - depth} empty block(s): the sample needs {confirmations} confirmations"
                )
                state = client.wait_for(
                    str(accepted["id"]), until=time.monotonic() + 60, states={"confirmed", "failed"}
                )
            report["anchoring"] = state.get("anchoring")
            report["merkleRoot"] = state.get("merkleRoot")
            from docchain.chain.receipt import parse_receipt

            receipt = parse_receipt(client.receipt(to_hex(doc_hash), signer))
            target = receipt_path(sample)
            write_receipt(receipt, target)
            c.out.step(f"receipt written to {target}")
            via_api = client.verify(to_hex(doc_hash), signer, receipt.to_json())
            c.out.step(f"verified through the API: {str(via_api.get('title')).upper()}")
        # pinned to the registry this stack deployed, as the operator's own `docchain verify --rpc` is
        independent = verifying.verify_with_node(
            rpc_url,
            10.0,
            Question(doc_hash, signer, receipt, confirmations),
            deployment.address,
            "the local stack's deployment",
            c.trusted_deployments,
        )
        c.out.step(f"verified independently (receipt + node only): {independent.title.upper()}")
        verifying.show(c.out, independent.to_json())
        report.update(
            sample=str(sample),
            receipt=str(target),
            docHash=to_hex(doc_hash),
            signer=signer,
            txHash=state.get("txHash"),
            blockNumber=state.get("blockNumber"),
            apiVerdict=via_api.get("outcome"),
            rpcVerdict=independent.outcome.value,
        )
        if via_api.get("outcome") != "valid" or not independent.ok:
            raise CliError("the sample document did not verify", ExitCode.VERIFICATION_FAILED)

        c.out.emit(report)
        if not serve_:
            c.out.step("--no-serve: stopping")
            return
        c.out.say(f"\n[bold green]docchain is up:[/] API [bold]{api.url}[/] (docs: {api.url}/docs), node {rpc_url}")
        c.out.say(
            "try: docchain keys new alice && docchain submit FILE --wait --key alice\n"
            "Ctrl-C stops the API, then the node."
        )
        try:
            code = api.process.wait()
        except KeyboardInterrupt:
            c.out.say("")
            c.out.step("stopping")
            return
        raise CliError(f"the API exited unexpectedly with status {code}; see {api.log_path}", ExitCode.UNAVAILABLE)
    finally:
        if api is not None:
            api.stop()
            c.out.step("API stopped")
        if started_node:
            try:
                stack.stop_node(directory)
                c.out.step("node stopped")
            except NodeError as exc:
                c.out.warn(f"could not stop the node: {exc}")


@command(
    app,
    "deploy",
    globals_used=("rpc", "data_dir", "timeout"),
    examples_=["docchain deploy --rpc https://sepolia.example --key deployer", "docchain deploy --json"],
)
def deploy(
    ctx: typer.Context,
    key: KeyOpt = None,
    password_file: PasswordFileOpt = None,
    new: Annotated[
        bool,
        typer.Option("--new", envvar="DOCCHAIN_DEPLOY_NEW", help="Deploy a fresh registry even if one is recorded."),
    ] = False,
) -> None:
    """Deploy the registry contract and its envelopes to --rpc, paid by your key, and record their addresses
    in the data dir.

    Idempotent: a registry already recorded for the chain (with code on chain) is reused unless --new; a
    registry recorded without envelopes gets them.
    """
    from docchain.chain import deploy as deployments
    from docchain.chain.sender import TxSender
    from docchain.client import rpc as rpc_mod
    from docchain.client import verifying

    c: CliContext = ctx.obj
    url = c.rpc_url()
    directory = c.data_path
    signing = c.signing_key(key, password_file)
    w3 = rpc_mod.connect(url, c.timeout_s())  # the node answers before a password is asked
    sender = TxSender(w3, signing.unlock())
    if new:
        deployment, fresh = deployments.deploy_envelopes(sender, deployments.deploy(sender)), True
        deployments.record(directory, deployment)
    else:
        deployment, fresh = deployments.ensure_deployed(sender, directory)
    verifying.record_trusted(deployment, c.trusted_deployments)
    data = {
        "chainId": deployment.chain_id,
        "address": deployment.address,
        "blockNumber": deployment.block_number,
        "txHash": deployment.tx_hash,
        "fresh": fresh,
        "envelopes": None if deployment.envelopes is None else dataclasses.asdict(deployment.envelopes),
        "deployments": str(directory / deployments.FILE_NAME),
    }
    c.out.emit(data)
    c.out.say(
        ("deployed" if fresh else "already deployed:")
        + f" registry {deployment.address} on chain {deployment.chain_id} (block {deployment.block_number})"
    )
    if deployment.envelopes is not None:
        c.out.say(f"envelopes {deployment.envelopes.address} (block {deployment.envelopes.block_number})")
