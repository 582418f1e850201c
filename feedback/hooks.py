"""Hooks: a new release (or a drift alert) starts what comes next, such as the next training run.

`[hooks]` in feedback.toml:

    [hooks]
    on_release = "./train.sh"                    # a shell command, run with the event in its environment
    on_drift = "notify-oncall"
    webhooks = ["https://ci.example.com/feedback"]   # POSTed the event as JSON, for both events
    secret_env = "FEEDBACK_WEBHOOK_SECRET"       # signs each body: X-Feedback-Signature: sha256=<HMAC>
    timeout = 21600                              # seconds a command may run: 6 hours, room for a training run
    webhook_timeout = 10                         # seconds per webhook attempt
    attempts = 3                                 # a webhook is tried again, with backoff, after a failure

A command sees `FEEDBACK_EVENT` (release, drift), `FEEDBACK_PAYLOAD` (the event as JSON) and, for a
release, `FEEDBACK_RELEASE_PATH`, `FEEDBACK_RELEASE_ID`, `FEEDBACK_RELEASE_VERSION`. Hooks run after
the change is committed, so a failing hook never undoes it; every attempt is recorded in `hook_runs`
(`feedback hooks --log`).

The command that fires a hook waits for it: the default timeout is long enough for a training run, and
the command knows the outcome, so it can say when a hook failed or timed out (`failures`). A process
that must not wait (the app) fires them on a thread (`fire(..., background=True)`); their attempts are
recorded when they end. Each attempt is logged with the time it ended, so a training run that fails
hours after a `feedback check` is counted by the next one; `failed_hooks` reads the failures back for
`feedback check` and the app.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

from .workspace import Workspace

DEFAULTS = {"on_release": None, "on_drift": None, "webhooks": [], "secret_env": "FEEDBACK_WEBHOOK_SECRET",
            "timeout": 21600.0, "webhook_timeout": 10.0, "attempts": 3}
EVENTS = ("release", "drift")


def fire(ws: Workspace, event: str, payload: dict, *, background: bool = False) -> list[dict]:
    """Run the hooks of `event` and record every attempt; return the attempts. Never raises.

    With `background`, they run on a thread of this process and `[]` is returned at once.
    """
    if background:
        threading.Thread(target=fire, args=(ws, event, payload), name=f"feedback-hooks-{event}").start()
        return []
    cfg = {**DEFAULTS, **ws.config.get("hooks", {})}
    body = json.dumps({"event": event, **payload}, default=str, sort_keys=True).encode()
    attempts = []
    command = cfg.get(f"on_{event}")
    if command:
        attempts.append(_run(command, event, payload, body, float(cfg["timeout"])))
    secret = os.environ.get(cfg["secret_env"] or "", "")
    for url in cfg["webhooks"] or []:
        attempts += _post(url, event, body, secret, float(cfg["webhook_timeout"]), max(1, int(cfg["attempts"])))
    if attempts:
        with ws.store().atomic() as tx:
            for a in attempts:
                tx.execute("INSERT INTO hook_runs VALUES (?, ?, ?, ?, ?, ?, ?)", [a[k] for k in _COLUMNS])
    return attempts


def hook_log(ws: Workspace, *, limit: int = 50) -> list[dict]:
    """The latest hook attempts, newest first."""
    return ws.store().rows("SELECT * FROM hook_runs ORDER BY ran_at DESC, attempt DESC LIMIT ?", [limit])


def failed_hooks(ws: Workspace, *, since: datetime | None = None, event: str | None = None) -> list[dict]:
    """The hooks that failed (their last attempt) since a UTC time, for one event or all, oldest first."""
    return failures(ws.store().rows(
        "SELECT * FROM hook_runs WHERE (?::TIMESTAMP IS NULL OR ran_at >= ?) AND (?::VARCHAR IS NULL OR event = ?) "
        "ORDER BY ran_at, attempt", [since, since, event, event]))


def failures(attempts: list[dict]) -> list[dict]:
    """The hooks whose last attempt failed (a command once, a webhook after its retries), in order of firing,
    each with `name`: `on_release`, `on_drift` or `webhook`."""
    firings: list[dict] = []  # the latest attempt of each firing
    current: dict[tuple, int] = {}  # each hook's latest firing, by its place in `firings`
    for a in attempts:
        key = (a["event"], a["hook"], a["target"])
        at = current.get(key)
        if at is not None and a["attempt"] == firings[at]["attempt"] + 1:
            firings[at] = a
        else:
            current[key] = len(firings)
            firings.append(a)
    return [{**a, "name": f"on_{a['event']}" if a["hook"] == "command" else "webhook"}
            for a in firings if a["status"] != "ok"]


def describe(failure: dict) -> str:
    """One line for a failed hook: which, its target, what happened, and where to look."""
    return (f"the {failure['name']} hook {failure['target']!r} failed ({failure['detail']}); "
            "see `feedback hooks --log`")


def signature(body: bytes, secret: str) -> str:
    """The value of X-Feedback-Signature for a body: what a receiver computes to trust it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _run(command: str, event: str, payload: dict, body: bytes, timeout: float) -> dict:
    env = {**os.environ, "FEEDBACK_EVENT": event, "FEEDBACK_PAYLOAD": body.decode()}
    if event == "release":
        env.update(FEEDBACK_RELEASE_PATH=str(payload.get("location", "")),
                   FEEDBACK_RELEASE_ID=str(payload.get("release_id", "")),
                   FEEDBACK_RELEASE_VERSION=str(payload.get("version", "")))
    try:  # a session of its own, so that a timeout stops the command's children too (a trainer's workers)
        proc = subprocess.Popen(command, shell=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    except OSError as exc:
        return _attempt(event, "command", command, 1, "failed", str(exc))
    with proc:
        try:
            output = proc.communicate(timeout=timeout)[0]
        except subprocess.TimeoutExpired:
            _stop(proc)
            return _attempt(event, "command", command, 1, "failed", f"timed out after {timeout:g} s")
    output = output.strip()[-500:]
    return _attempt(event, "command", command, 1, "ok" if proc.returncode == 0 else "failed",
                    f"exit {proc.returncode}" + (f": {output}" if output else ""))


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the command's process group, SIGKILL after 5 s."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
            proc.communicate(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _post(url: str, event: str, body: bytes, secret: str, timeout: float, tries: int) -> list[dict]:
    headers = {"Content-Type": "application/json", "X-Feedback-Event": event, "User-Agent": "feedback-workbench"}
    if secret:
        headers["X-Feedback-Signature"] = signature(body, secret)
    attempts = []
    for attempt in range(1, tries + 1):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers, method="POST"),
                                        timeout=timeout) as answer:
                attempts.append(_attempt(event, "webhook", url, attempt, "ok", f"HTTP {answer.status}"))
                return attempts
        except urllib.error.HTTPError as exc:
            detail = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            detail = str(getattr(exc, "reason", exc))
        attempts.append(_attempt(event, "webhook", url, attempt, "failed", detail))
        if attempt < tries:
            time.sleep(0.5 * 2 ** (attempt - 1))
    return attempts


_COLUMNS = ("event", "hook", "target", "ran_at", "attempt", "status", "detail")  # hook_runs, in order


def _attempt(event: str, hook: str, target: str, attempt: int, status: str, detail: str) -> dict:
    """An attempt that just ended; `ran_at` is when it ended, so a check counts a long run that failed after it began."""
    return dict(zip(_COLUMNS, (event, hook, target, _now(), attempt, status, detail)))


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
