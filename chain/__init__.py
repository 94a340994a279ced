"""Everything that reasons about the chain: hashing, EIP-712 typed data, receipts, the registry binding,
deployment, the transaction sender and the local development node. Imports neither ``api`` nor ``client``."""
