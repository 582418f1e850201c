"""The capture SDK: record production events without ever slowing or breaking the caller.

    client = feedback.Client("path/to/workspace")
    client.prediction("req-123", text="where is my card?", label="card_arrival", score=0.91)
    client.correction("req-123", label="card_delivery_estimate", by="user-42")

Every call validates the event, appends one line to this process's spool segment
and returns True, in microseconds. It never opens the store and never raises: a bad
event or a failed write (a full disk) returns False, is logged, and is counted in
`client.stats`. Safe from many threads; each process writes its own segment. Values
straight from numpy and scikit-learn (`numpy.str_` labels, `float32` scores, a row of
`predict_proba` with `classes=model.classes_`) are taken as the numbers and strings they are.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from pathlib import Path

from ..errors import InvalidEvent
from ..workspace import ENV_VAR, Workspace, find_workspace
from . import contract
from .spool import SegmentWriter

log = logging.getLogger("feedback.capture")


class Client:
    """Captures events into a workspace's spool."""

    def __init__(self, workspace: str | Path | Workspace | None = None):
        ws = workspace if isinstance(workspace, Workspace) else find_workspace(workspace)
        conf = ws.config["capture"]
        self._encode = contract.encoder(**contract.limits(conf))
        self._spool = ws.path("spool")
        self._writer_options = {"max_bytes": conf["segment_max_bytes"], "max_seconds": conf["segment_max_seconds"]}
        self._writer = SegmentWriter(self._spool, **self._writer_options)
        self._count_lock = threading.Lock()
        self._refusals = {"rejected": 0, "dropped": 0}
        atexit.register(self.close)
        after_fork = weakref.WeakMethod(self._after_fork)
        os.register_at_fork(after_in_child=lambda: (method := after_fork()) and method())

    @property
    def stats(self) -> dict[str, int]:
        """Events accepted (spooled by this process), rejected (bad) and dropped (the write failed)."""
        return {"accepted": self._writer.lines, **self._refusals}

    def capture(self, event: dict) -> bool:
        """Record one event (a dict of the v1 contract). True when it is safely spooled."""
        try:
            self._writer.append(self._encode(event)[2])
        except Exception as exc:  # never raise into the caller's request path
            self._refused(exc)
            return False
        return True

    def capture_checked(self, event: dict) -> tuple[bool, dict]:
        """Record one event; return (accepted, detail) where detail names the event or the problem."""
        try:
            event_id, item_id, line = self._encode(event)
            self._writer.append(line)
        except Exception as exc:
            return False, self._refused(exc)
        return True, {"event_id": event_id, "item_id": item_id}

    def prediction(self, item_id: str | None, *, text: str | None = None, label: str, score: float | None = None,
                   probs=None, classes=None, model: str | None = None, model_version: str | None = None,
                   features: dict | None = None, **extra) -> bool:
        """Record what the model predicted for one request.

        `probs` is {label: probability}, or a row of `predict_proba` with `classes=model.classes_`:

            client.prediction(req_id, text=text, label=model.classes_[row.argmax()], score=row.max(),
                              probs=row, classes=model.classes_, model_version="v3")
        """
        if classes is not None and probs is not None:
            try:
                probs = _by_class(probs, classes)
            except (InvalidEvent, TypeError) as exc:
                self._refused(exc)
                return False
        prediction = {"label": label, "score": score, "probs": probs, "model": model, "model_version": model_version}
        return self.capture({"type": "prediction", "item_id": item_id, "input": _input(text, features),
                             "prediction": prediction, **extra})

    def correction(self, item_id: str, *, label: str, by: str | None = None, note: str | None = None, **extra) -> bool:
        """Record a user's correction of the prediction for `item_id`."""
        return self.capture({"type": "correction", "item_id": item_id,
                             "correction": {"label": label, "by": by, "note": note}, **extra})

    def error(self, item_id: str | None, *, kind: str, message: str | None = None, text: str | None = None,
              features: dict | None = None, **extra) -> bool:
        """Record a failed request."""
        return self.capture({"type": "error", "item_id": item_id, "input": _input(text, features),
                             "error": {"kind": kind, "message": message}, **extra})

    def item(self, item_id: str | None, *, text: str | None = None, features: dict | None = None, **extra) -> bool:
        """Record an input with no prediction (unlabeled production data the sampler may pick)."""
        return self.capture({"type": "item", "item_id": item_id, "input": _input(text, features), **extra})

    def flush(self) -> None:
        """Seal the current segment so the next ingest takes everything captured so far."""
        self._writer.seal()

    def close(self) -> None:
        """Seal this process's segment, so the next ingest takes its events."""
        self._writer.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _after_fork(self) -> None:
        """A forked child never shares its parent's segment, and counts its own events."""
        self._writer = SegmentWriter(self._spool, **self._writer_options)
        self._count_lock = threading.Lock()
        self._refusals = {"rejected": 0, "dropped": 0}

    def _refused(self, exc: Exception) -> dict:
        """Count and log an event that was not spooled; return what went wrong."""
        dropped = isinstance(exc, OSError)
        with self._count_lock:
            self._refusals["dropped" if dropped else "rejected"] += 1
        if isinstance(exc, InvalidEvent):
            log.warning("event rejected (%s): %s", exc.reason, exc)
            return {"reason": exc.reason, "field": exc.field, "message": str(exc)}
        if dropped:
            log.error("event not spooled: %s", exc)
            return {"reason": "spool_write_failed", "field": None, "message": str(exc)}
        log.exception("event rejected: checking it failed unexpectedly")  # a bug: report it with this traceback
        return {"reason": "unexpected_error", "field": None, "message": f"{type(exc).__name__}: {exc}"}


def _by_class(probs, classes) -> dict:
    """A probability row aligned with the model's classes, as {class: probability}."""
    names, values = list(classes), list(probs)
    if len(names) != len(values):
        raise InvalidEvent("invalid_value", f"has {len(values)} probabilities for {len(names)} classes", "prediction.probs")
    return dict(zip(map(str, names), values))


def _input(text, features) -> dict | None:
    if text is None and features is None:
        return None
    return {"text": text, "features": features}


_default: dict[str, Client] = {}


def capture_event(event: dict) -> bool:
    """Record one event with the default client (the workspace from $FEEDBACK_WORKSPACE or the current folder)."""
    client = _default.get("client")
    if client is None:
        try:
            client = _default.setdefault("client", Client())
        except Exception as exc:  # never raise into the caller's request path
            log.error("feedback capture is not configured (%s); set %s", exc, ENV_VAR)
            return False
    return client.capture(event)
