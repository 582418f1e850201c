"""What this host's processes hold: whether one still runs (how spool segments and release builds tell
abandoned from busy), and whether an address is free to listen on (before a server starts)."""

from __future__ import annotations

import os
import socket

from .errors import FeedbackError


def alive(pid: int) -> bool:
    """True while process `pid` exists (also when it belongs to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_can_listen(host: str, port: int) -> None:
    """Raise `FeedbackError` saying why a server could not listen on host:port (a bad host, a port in use)."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError, OverflowError) as exc:
        raise FeedbackError(f"cannot listen on {host}:{port}: {host!r} is not a host name or address here ({exc})") from None
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            hint = "pass another --port, or stop what holds it" if exc.errno == 98 else "check --host"
            raise FeedbackError(f"cannot listen on {host}:{port}: {exc.strerror}; {hint}") from None
