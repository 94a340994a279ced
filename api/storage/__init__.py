"""Document storage: one interface (base.py), backends (local.py, s3.py, ipfs.py), and the replicated
set a deployment names in ``DOCCHAIN_STORAGE``."""

from docchain.api.storage.local import LocalStorage

__all__ = ["LocalStorage"]
