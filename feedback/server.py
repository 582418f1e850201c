"""The HTTP server of `feedback serve`: the capture endpoint, and beside it the review API (`feedback.api`).

Capture: events in, spool lines out; capture never opens the store.

POST /v1/events takes one event, a JSON list of events, or {"events": [...]} and
answers 202 with a result per event (accepted with its event_id, or rejected with
reason, field and message). Accepted means spooled: checked against the contract and
safely written, not yet in the store, where ingest may still quarantine it (an event_id
already stored with other content, a label outside a fixed taxonomy). GET
/v1/events/{event_id} says where it stands later. A bearer token is required when the
environment variable named by `server.token_env` (default FEEDBACK_CAPTURE_TOKEN) is set.

The review API (/v1/review/...) acts as the user of a personal API token and opens the store for each
request's unit of work. Errors of both have one shape: {"status", "reason", "field", "message"}.
Several worker processes: `feedback serve --workers 4` (or `uvicorn --factory
feedback.server:from_environment --workers 4` with $FEEDBACK_WORKSPACE set).
"""

from __future__ import annotations

import hmac
import json
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .api import mount, warm
from .api.errors import problem
from .capture.client import Client
from .capture.contract import SCHEMA_PATH, parse_batch
from .capture.quarantine import event_status
from .errors import InvalidEvent
from .processes import check_can_listen
from .workspace import Workspace, find_workspace


def create_app(ws: Workspace) -> FastAPI:
    """The ASGI app for one workspace."""
    conf = ws.config["server"]
    token = os.environ.get(conf["token_env"]) or None
    limit = int(conf["max_body_bytes"])
    client = Client(ws)

    @asynccontextmanager
    async def lifespan(_app):
        warm()
        yield
        client.close()

    app = FastAPI(title="feedback-workbench", version="1", lifespan=lifespan,
                  description="Capture (/v1/events) and the review API (/v1/review).")

    @app.get("/healthz")
    def healthz():
        return {"ok": True, "stats": client.stats}

    @app.get("/v1/schema")
    def schema():
        return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))

    def refused(request: Request) -> JSONResponse | None:
        if token and not hmac.compare_digest(request.headers.get("authorization", ""), f"Bearer {token}"):
            return _problem(401, "unauthenticated", "missing or wrong bearer token", "authorization",
                            headers={"WWW-Authenticate": "Bearer"})
        return None

    @app.get("/v1/events/{event_id}")
    def event(event_id: str, request: Request):
        """Where an accepted (spooled) event stands now: stored, quarantined with its reason, or pending."""
        return refused(request) or {"event_id": event_id, **event_status(ws, [event_id])[event_id]}

    @app.post("/v1/events", status_code=202)
    async def post_events(request: Request):
        if problem := refused(request):
            return problem
        if int(request.headers.get("content-length") or 0) > limit:
            return _problem(413, "body_too_large", f"body over {limit:,} bytes; send smaller batches", "body")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return _problem(413, "body_too_large", f"body over {limit:,} bytes; send smaller batches", "body")
        try:
            batch = parse_batch(bytes(body))
        except InvalidEvent as exc:
            return _problem(400, "bad_json", f"body is not valid JSON: {exc}", "body")
        results = []
        for index, event in enumerate(batch):
            if isinstance(event, InvalidEvent):
                accepted, detail = False, {"reason": event.reason, "field": event.field, "message": str(event)}
            else:
                accepted, detail = client.capture_checked(event)
            results.append({"index": index, "status": "accepted" if accepted else "rejected", **detail})
        accepted = sum(r["status"] == "accepted" for r in results)
        return {"accepted": accepted, "rejected": len(results) - accepted, "results": results}

    mount(app, ws)
    return app


def from_environment() -> FastAPI:
    """The app for the workspace `find_workspace` finds ($FEEDBACK_WORKSPACE): uvicorn's `--factory` target."""
    return create_app(find_workspace())


def _problem(status: int, reason: str, message: str, field: str | None, headers: dict | None = None) -> JSONResponse:
    """The server's error shape, with capture's `detail` (the message) kept for its clients of before."""
    return problem(status, reason, message, field, headers, detail=message)


def run(ws: Workspace, *, host: str, port: int, workers: int = 1) -> None:
    """Serve until interrupted, in `workers` processes; a host or port it cannot listen on is a `FeedbackError`,
    said before starting."""
    import uvicorn

    check_can_listen(host, port)
    if workers == 1:
        uvicorn.run(create_app(ws), host=host, port=port, log_level="info")
        return
    os.environ["FEEDBACK_WORKSPACE"] = str(ws.root)  # each worker process builds its app from it
    uvicorn.run("feedback.server:from_environment", factory=True, workers=workers, host=host, port=port,
                log_level="info")
