"""A minimal forwarding contract, hand-assembled EVM bytecode, standing in for a multisig or a forwarder.

Called with ``0xf0f0f0f0 ‖ inner calldata``, it calls its target with the inner calldata and returns or reverts
with the target's answer. The transaction's calldata is then the wrapper's, not the registry's: what the
receipt route has to refuse cleanly. Hand-assembled (no opcode newer than Byzantium) so it needs no compiler
and runs on anvil and ganache alike.
"""

from __future__ import annotations

from docchain.chain.sender import TxSender

SELECTOR = bytes.fromhex("f0f0f0f0")


def _runtime(target: str) -> bytes:
    head = "".join(
        [
            "600436036004600037",  # calldatacopy(0, 4, calldatasize - 4)
            "60006000",  # retSize 0, retOffset 0
            "6004360360006000",  # argsSize calldatasize - 4, argsOffset 0, value 0
            "73" + target[2:],  # PUSH20 target
            "5af1",  # call(gas, target, ...)
            "3d600060003e",  # returndatacopy(0, 0, returndatasize)
        ]
    )
    ok = len(head) // 2 + 2 + 1 + 4  # the JUMPDEST after PUSH1 ok, JUMPI and the 4-byte revert
    tail = f"60{ok:02x}57" + "3d6000fd" + "5b3d6000f3"  # jumpi(ok, success); revert(...); ok: return(...)
    return bytes.fromhex(head + tail)


def deploy_forwarder(sender: TxSender, target: str) -> str:
    runtime = _runtime(target)
    init = bytes([0x60, len(runtime), 0x80, 0x60, 12, 0x60, 0x00, 0x39, 0x60, 0x00, 0xF3])
    init += bytes([0x00])  # pad to 12 bytes: the runtime starts at offset 12
    receipt = sender.transact(None, init + runtime)
    return str(receipt["contractAddress"])


def forward(sender: TxSender, forwarder: str, inner: bytes) -> bytes:
    """Send ``inner`` (registry calldata) through the forwarder; returns the transaction hash."""
    receipt = sender.transact(forwarder, SELECTOR + inner)
    return bytes(receipt["transactionHash"])
