"""Whether a process on this host still runs: how spool segments and release builds tell abandoned from busy."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """True while process `pid` exists (also when it belongs to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
