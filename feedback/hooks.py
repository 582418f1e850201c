"""Hooks: a new release (or a drift alert) starts what comes next, such as the next training run.

`[hooks]` in feedback.toml:

    [hooks]
    on_release = "./train.sh"                    # a shell command, run with the event in its environment
    on_drift = "notify-oncall"
    webhooks = ["https://ci.example.com/feedback"]   # POSTed the event as JSON, for both events
    secret_env = "FEEDBACK_WEBHOOK_SECRET"       # signs each body: X-Feedback-Signature: sha256=<HMAC>
    timeout = 10                                 # seconds per attempt
    attempts = 3                                 # a webhook is tried again, with backoff, after a failure

A command sees `FEEDBACK_EVENT` (release, drift), `FEEDBACK_PAYLOAD` (the event as JSON) and, for a
release, `FEEDBACK_RELEASE_PATH`, `FEEDBACK_RELEASE_ID`, `FEEDBACK_RELEASE_VERSION`. Hooks run after
the change is committed, so a failing hook never undoes it; every attempt is recorded in `hook_runs`
(`feedback hooks --log`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

from .workspace import Workspace

DEFAULTS = {"on_release": None, "on_drift": None, "webhooks": [], "secret_env": "FEEDBACK_WEBHOOK_SECRET",
            "timeout": 10.0, "attempts": 3}
EVENTS = ("release", "drift")


def fire(ws: Workspace, event: str, payload: dict) -> list[dict]:
    """Run the hooks of `event` and record every attempt; return the attempts. Never raises."""
    cfg = {**DEFAULTS, **ws.config.get("hooks", {})}
    body = json.dumps({"event": event, **payload}, default=str, sort_keys=True).encode()
    attempts = []
    command = cfg.get(f"on_{event}")
    if command:
        attempts.append(_run(command, event, payload, body, float(cfg["timeout"])))
    secret = os.environ.get(cfg["secret_env"] or "", "")
    for url in cfg["webhooks"] or []:
        attempts += _post(url, event, body, secret, float(cfg["timeout"]), max(1, int(cfg["attempts"])))
    if attempts:
        with ws.store().atomic() as tx:
            for a in attempts:
                tx.execute("INSERT INTO hook_runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [event, a["hook"], a["target"], a["at"], a["attempt"], a["status"], a["detail"]])
    return attempts


def hook_log(ws: Workspace, *, limit: int = 50) -> list[dict]:
    """The latest hook attempts, newest first."""
    return ws.store().rows("SELECT * FROM hook_runs ORDER BY ran_at DESC, attempt DESC LIMIT ?", [limit])


def signature(body: bytes, secret: str) -> str:
    """The value of X-Feedback-Signature for a body: what a receiver computes to trust it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _run(command: str, event: str, payload: dict, body: bytes, timeout: float) -> dict:
    env = {**os.environ, "FEEDBACK_EVENT": event, "FEEDBACK_PAYLOAD": body.decode()}
    if event == "release":
        env.update(FEEDBACK_RELEASE_PATH=str(payload.get("location", "")),
                   FEEDBACK_RELEASE_ID=str(payload.get("release_id", "")),
                   FEEDBACK_RELEASE_VERSION=str(payload.get("version", "")))
    at = _now()
    try:
        done = subprocess.run(command, shell=True, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return _attempt("command", command, at, 1, "failed", f"timed out after {timeout:g} s")
    except OSError as exc:
        return _attempt("command", command, at, 1, "failed", str(exc))
    output = (done.stdout + done.stderr).strip()[-500:]
    return _attempt("command", command, at, 1, "ok" if done.returncode == 0 else "failed",
                    f"exit {done.returncode}" + (f": {output}" if output else ""))


def _post(url: str, event: str, body: bytes, secret: str, timeout: float, tries: int) -> list[dict]:
    headers = {"Content-Type": "application/json", "X-Feedback-Event": event, "User-Agent": "feedback-workbench"}
    if secret:
        headers["X-Feedback-Signature"] = signature(body, secret)
    attempts = []
    for attempt in range(1, tries + 1):
        at = _now()
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers, method="POST"),
                                        timeout=timeout) as answer:
                attempts.append(_attempt("webhook", url, at, attempt, "ok", f"HTTP {answer.status}"))
                return attempts
        except urllib.error.HTTPError as exc:
            detail = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            detail = str(getattr(exc, "reason", exc))
        attempts.append(_attempt("webhook", url, at, attempt, "failed", detail))
        if attempt < tries:
            time.sleep(0.5 * 2 ** (attempt - 1))
    return attempts


def _attempt(hook: str, target: str, at: datetime, attempt: int, status: str, detail: str) -> dict:
    return {"hook": hook, "target": target, "at": at, "attempt": attempt, "status": status, "detail": detail}


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
