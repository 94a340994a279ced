"""Everything that reasons about the chain: hashing, EIP-712 typed data, receipts, the registry binding,
deployment, the transaction sender and the local development node. Imports neither ``api`` nor ``client``."""

import sys as _sys

# py_ecc (imported by eth_keyfile and web3) raises the recursion limit to 100,000 when first imported. With it,
# input nested deep enough (a JSON body of 100,000 brackets sent to the API, or a node's answer) overflows the C
# stack and kills the process instead of raising RecursionError. Imported here first, so that its raise happens
# now, and the limit put back.
_limit = _sys.getrecursionlimit()
import py_ecc  # noqa: E402, F401

_sys.setrecursionlimit(_limit)
