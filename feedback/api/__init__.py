"""The REST review API: the review loop over HTTP, beside capture in `feedback serve`, under /v1/review.

JSON in and out; one error shape (`errors`); the queue paged by cursor; each route one library call, as
the acting user (`context`: a personal API token where the workspace has users), so roles hold exactly as
in the library; a rate and a body limit (`limits`, `[server]` of feedback.toml). The OpenAPI schema the
server serves at /openapi.json is checked in beside this file (openapi.json).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from ..workspace import Workspace
from . import errors, loop, review
from .context import Current
from .limits import Guard

PREFIX = "/v1/review"
SCHEMA_PATH = Path(__file__).with_name("openapi.json")


def warm() -> None:
    """Import now, as a server process starts, what its first decision would otherwise import holding the store
    (pandas, which pyarrow loads on its first conversion of Python values): seconds under load, not per request."""
    import pandas  # noqa: F401


def mount(app: FastAPI, ws: Workspace) -> None:
    """Add the review API's routes, error handlers and limits to the server's app."""
    conf = ws.config["server"]
    current = Current(ws)
    errors.install(app)
    app.include_router(review.router(current), prefix=PREFIX)
    app.include_router(loop.router(current), prefix=PREFIX)
    app.add_middleware(Guard, prefix=PREFIX, max_body=int(conf["max_body_bytes"]),
                       rate=float(conf["rate_per_second"]), burst=float(conf["rate_burst"]))
