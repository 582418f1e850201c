import re
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedback import init_workspace, Workspace
from feedback.cli import main

LABELS = ["card_arrival", "card_linking", "refund_not_showing_up", "lost_or_stolen_card"]


@pytest.fixture
def ws(tmp_path) -> Workspace:
    """A workspace with a fixed taxonomy of four labels."""
    return init_workspace(tmp_path / "ws", dataset="test", labels=LABELS)


@pytest.fixture
def open_ws(tmp_path) -> Workspace:
    """A workspace with an open taxonomy."""
    return init_workspace(tmp_path / "open-ws", dataset="test")


@pytest.fixture
def cli():
    runner = CliRunner()

    def run(*args, env=None, input=None):
        return runner.invoke(main, [str(a) for a in args], env=env, input=input, catch_exceptions=False)

    return run


def set_config(ws: Workspace, key: str, value) -> Workspace:
    """Change one `key = value` line of feedback.toml and reload the workspace."""
    path = ws.root / "feedback.toml"
    text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", path.read_text(), flags=re.M)
    assert n == 1, key
    path.write_text(text)
    return Workspace(ws.root)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prediction(item_id="req-1", label="card_arrival", text="where is my card?", **extra):
    return {"type": "prediction", "item_id": item_id, "input": {"text": text},
            "prediction": {"label": label, "score": 0.9, "model": "clf", "model_version": "v1"}, **extra}


REPO = Path(__file__).resolve().parent.parent
