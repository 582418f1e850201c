"""Who is acting, on which workspace, and where a page left off: what every route of the review API takes.

The workspace is read once and again whenever feedback.toml changes (a label added, a taxonomy
change), so every server process sees what the CLI and the app see. The store is never held between
requests: each route makes library calls, and each call opens the store for its unit of work, as the
CLI and the app do (several server processes, and the app beside them, take turns or, on PostgreSQL,
work side by side); a short request holds the store once for all its calls (`held`).
"""

from __future__ import annotations

import base64
import hashlib
import threading

import orjson
from fastapi import Request

from .. import roles
from ..roles import PermissionDenied
from ..workspace import CONFIG_NAME, Workspace
from .errors import ApiError

USER_HEADER = "x-feedback-user"


class Current:
    """The workspace as feedback.toml says now (re-read when the file changes)."""

    def __init__(self, ws: Workspace):
        self._ws, self._seen = ws, self._mark(ws)
        self._lock = threading.Lock()

    def __call__(self) -> Workspace:
        mark = self._mark(self._ws)
        if mark != self._seen:
            with self._lock:
                if mark != self._seen:
                    self._ws, self._seen = Workspace(self._ws.root), mark
        return self._ws

    @staticmethod
    def _mark(ws: Workspace) -> tuple:
        found = (ws.root / CONFIG_NAME).stat()
        return found.st_mtime_ns, found.st_size, found.st_ino


def held(current: Current):
    """A dependency that holds the store through a short request, so the request's units of work (the token's
    lookup, the role's check, the decision) join one opening of the embedded file instead of opening it each
    (on PostgreSQL a unit costs no opening: the routes leave it out there). Never for a route that computes."""

    def hold():
        with current().store().connect():
            yield

    return hold


def acting(ws: Workspace, request: Request) -> roles.Actor:
    """The request's actor: the user of its bearer API token (one lookup in the store); without one, in an open
    workspace, whoever `X-Feedback-User` names (an admin, as everyone there), else the server's local user."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        if scheme.lower() == "bearer" and token.strip():
            return roles.authenticate_token(ws, token.strip())
        return roles.actor(ws, request.headers.get(USER_HEADER) or roles.local_actor().name)
    except PermissionDenied as exc:
        message = str(exc) if token else ("this workspace has users: send `Authorization: Bearer <token>` with a "
                                          "personal API token (`feedback token create`)")
        raise ApiError(401, "unauthenticated", message, "authorization", {"WWW-Authenticate": "Bearer"}) from None


def cursor_for(offset: int, query: dict) -> str:
    """An opaque cursor: the next page's position in the queue as ordered, bound to the query's filters."""
    return base64.urlsafe_b64encode(orjson.dumps({"o": offset, "q": _digest(query)})).decode().rstrip("=")


def offset_of(cursor: str | None, query: dict) -> int:
    """The position a cursor of `cursor_for` holds; refused when it is malformed or made for other filters."""
    if not cursor:
        return 0
    try:
        state = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset, digest = int(state["o"]), state["q"]
    except (ValueError, TypeError, KeyError):
        raise ApiError(422, "invalid", "field 'cursor': not a cursor this API gave; start again without one",
                       "cursor") from None
    if digest != _digest(query) or offset < 0:
        raise ApiError(422, "invalid", "field 'cursor': it belongs to a page with other filters or sort; "
                       "keep the filters, or start again without a cursor", "cursor")
    return offset


def _digest(query: dict) -> str:
    return hashlib.blake2b(orjson.dumps(query, option=orjson.OPT_SORT_KEYS, default=str), digest_size=8).hexdigest()
