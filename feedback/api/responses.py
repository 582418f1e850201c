"""JSON out: orjson, times as ISO 8601 in UTC with a `Z` (the store keeps naive UTC), as the CLI's --json."""

from __future__ import annotations

import functools

import orjson
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse


def _default(value):
    """What orjson cannot write itself (a path, a decimal): as text."""
    return str(value)


class JSON(JSONResponse):
    media_type = "application/json"

    def render(self, content) -> bytes:
        return orjson.dumps(content, default=_default, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
                            | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


class Router(APIRouter):
    """An APIRouter whose routes return plain data, written by `JSON` as it is (FastAPI's own encoder would
    turn times into text first, without the `Z`, and take longer)."""

    def add_api_route(self, path: str, endpoint, **kwargs) -> None:
        status = kwargs.get("status_code") or 200

        @functools.wraps(endpoint)
        def answer(*args, **kw):
            out = endpoint(*args, **kw)
            return out if isinstance(out, Response) else JSON(out, status_code=status)

        kwargs.setdefault("response_class", JSON)
        super().add_api_route(path, answer, **kwargs)
