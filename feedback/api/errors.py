"""One error shape for every route of the server: {"status", "reason", "field", "message"}.

`reason` is a stable code a client can branch on; `field` names the request field at fault (a body
key, a query or path parameter, `decisions[3].label` inside a list), or is null. Library errors map
here, in one place: a role that may not act 403, another reviewer's claim or a stale `expect` 409, an
unknown item, decision or release 404, anything else the library refuses 422.
"""

from __future__ import annotations

from contextlib import contextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from ..errors import FeedbackError, NotFound, StoreBusy
from ..release.releases import GateFailed
from ..review.decisions import ClaimHeld, StaleDecision
from ..roles import PermissionDenied
from .responses import JSON

#: library error -> (status, reason, the field it is about when the route does not say)
LIBRARY = [(PermissionDenied, 403, "forbidden", None), (ClaimHeld, 409, "claim_held", "item_id"),
           (StaleDecision, 409, "stale", "expect"), (GateFailed, 409, "gate_failed", None),
           (NotFound, 404, "not_found", None), (StoreBusy, 503, "store_busy", None),
           (FeedbackError, 422, "rejected", None)]


class Problem(BaseModel):
    """Every error's body."""
    status: int
    reason: str
    field: str | None
    message: str


#: The errors every review route may answer with, for the OpenAPI schema.
PROBLEMS = {status: {"model": Problem, "description": text} for status, text in [
    (401, "no or an unknown API token (`unauthenticated`)"), (403, "the acting user's role may not (`forbidden`)"),
    (404, "no such item, decision or release (`not_found`)"),
    (409, "another reviewer's claim (`claim_held`), a stale `expect` (`stale`), a failing gate (`gate_failed`)"),
    (413, "the body is over [server] max_body_bytes (`body_too_large`)"),
    (422, "a missing or invalid field (`missing_field`, `invalid`, `invalid_label`), or the library refused "
          "(`rejected`)"),
    (429, "over [server] rate_per_second (`rate_limited`; see Retry-After)")]}


class ApiError(Exception):
    """A refusal of the API itself (not signed in, a bad cursor, a label the taxonomy refuses)."""

    def __init__(self, status: int, reason: str, message: str, field: str | None = None, headers=None):
        super().__init__(message)
        self.status, self.reason, self.field, self.headers = status, reason, field, headers


@contextmanager
def about(field: str):
    """A library error raised in the block is about this request field (unless its kind names another)."""
    try:
        yield
    except FeedbackError as exc:
        exc.api_field = field
        raise


def problem(status: int, reason: str, message: str, field: str | None = None, headers=None, **extra) -> JSON:
    return JSON({"status": status, "reason": reason, "field": field, "message": message, **extra},
                status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Translate `ApiError`, the library's errors, FastAPI's validation errors and its own refusals (a body it
    cannot parse at all, an unknown route or method) into the one shape."""

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError):
        return problem(exc.status, exc.reason, str(exc), exc.field, exc.headers)

    @app.exception_handler(FeedbackError)
    async def library_error(request: Request, exc: FeedbackError):
        status, reason, field = next((s, r, f) for kind, s, r, f in LIBRARY if isinstance(exc, kind))
        field = field or getattr(exc, "api_field", None) or next(iter(request.path_params), None)
        return problem(status, reason, str(exc), field, {"Retry-After": "1"} if status == 503 else None)

    @app.exception_handler(HTTPException)
    async def refused(_request: Request, exc: HTTPException):
        reason, field = {400: ("bad_json", "body"), 404: ("not_found", None),
                         405: ("method_not_allowed", None)}.get(exc.status_code, ("refused", None))
        return problem(exc.status_code, reason, str(exc.detail), field, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError):
        error = exc.errors()[0]
        if error["type"] == "json_invalid":
            return problem(400, "bad_json", f"the body is not valid JSON: {error.get('ctx', {}).get('error', '')}"
                           .rstrip(": "), "body")
        field = dotted(error["loc"])
        reason = "missing_field" if error["type"] == "missing" else "invalid"
        message = f"field {field!r}: {error['msg']}" if field != "body" else f"the body: {error['msg']}"
        return problem(422, reason, message, field)


def dotted(loc) -> str:
    """('body', 'decisions', 3, 'label') -> 'decisions[3].label'; ('query', 'limit') -> 'limit'."""
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc) or ["body"]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
