"""The error hierarchy shared by every layer. Edges (API, CLI) map these once to HTTP / exit codes."""

from __future__ import annotations


class DocchainError(Exception):
    """Base class of every error docchain raises on purpose."""


class InvalidInput(DocchainError):
    """A value supplied by a user (hex string, address, file, receipt) is malformed."""


class NodeError(DocchainError):
    """The Ethereum node could not be started, reached or used."""


class NodeBinaryMissing(NodeError):
    """The node executable (anvil, ganache) is not installed where docchain looks for it."""


class PortInUse(NodeError):
    """The TCP port chosen for the local node is already taken by another process."""


class ChainError(DocchainError):
    """A transaction or call failed on chain."""


class ContractRevert(ChainError):
    """The registry reverted with one of its custom errors.

    ``name`` is the Solidity error name (``InvalidSignature``), ``args`` its decoded arguments.
    """

    def __init__(self, name: str, args: tuple[object, ...] = ()) -> None:
        self.name = name
        self.args_ = args
        shown = ", ".join(a.hex() if isinstance(a, bytes) else str(a) for a in args)
        super().__init__(f"{name}({shown})")


class TransactionTimeout(ChainError):
    """A sent transaction was not mined within the allotted time."""


class NotDeployed(ChainError):
    """No registry is recorded for this chain id in the deployments file."""


class RegistrationNotFound(DocchainError):
    """The signed registration behind an on-chain record cannot be read back: its transaction is unknown, did
    not call the registry directly (a multisig, a forwarder) or does not carry that registration."""


class VerificationError(DocchainError):
    """A proof failed at a named step (``step``: hash, signature, record, confirmations, revocation)."""

    def __init__(self, step: str, detail: str) -> None:
        self.step = step
        self.detail = detail
        super().__init__(f"{step}: {detail}")
