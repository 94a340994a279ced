"""A faster JSON response for the hot routes: orjson (same compact output as Starlette's JSONResponse)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except (TypeError, orjson.JSONEncodeError):  # e.g. an integer wider than 64 bits: the standard encoder
            return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
