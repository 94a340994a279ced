# The part of rlp (pyrlp 4+) docchain uses: the package ships no types. chain/evidence.py encodes and decodes
# block headers, accounts and trie values with it.
from typing import Any

from rlp.exceptions import DecodingError as DecodingError
from rlp.exceptions import DeserializationError as DeserializationError
from rlp.exceptions import EncodingError as EncodingError
from rlp.exceptions import RLPException as RLPException
from rlp.exceptions import SerializationError as SerializationError

def encode(obj: object, sedes: object = None, infer_serializer: bool = True, cache: bool = True) -> bytes: ...
def decode(rlp: bytes, sedes: object = None, strict: bool = True, recursive_cache: bool = False) -> Any: ...
