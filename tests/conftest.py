import re
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedback import init_workspace, Workspace
from feedback.cli import main
from feedback.config_file import toml_value

LABELS = ["card_arrival", "card_linking", "refund_not_showing_up", "lost_or_stolen_card"]


@pytest.fixture
def ws(tmp_path, store_url) -> Workspace:
    """A workspace with a fixed taxonomy of four labels."""
    return init_workspace(tmp_path / "ws", dataset="test", labels=LABELS, store=store_url)


@pytest.fixture
def open_ws(tmp_path, store_url) -> Workspace:
    """A workspace with an open taxonomy."""
    return init_workspace(tmp_path / "open-ws", dataset="test", store=store_url)


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


def configure(ws: Workspace, section: str, **values) -> Workspace:
    """Set keys in one section of feedback.toml (adding a missing key or section) and reload the workspace."""
    path = ws.root / "feedback.toml"
    text = path.read_text()
    if not re.search(rf"^\[{re.escape(section)}\]$", text, flags=re.M):
        text = text.rstrip("\n") + f"\n\n[{section}]\n"
    start = re.search(rf"^\[{re.escape(section)}\]$", text, flags=re.M).end()
    end = next(re.compile(r"^\[", flags=re.M).finditer(text, start), None)
    end = end.start() if end else len(text)
    body = text[start:end]
    for key, value in values.items():
        line = f"{key} = {toml_value(value)}"
        body, n = re.subn(rf"^{re.escape(key)} = .*$", lambda _: line, body, flags=re.M)
        body = body if n else "\n" + line + body
    path.write_text(text[:start] + body + text[end:])
    return Workspace(ws.root)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prediction(item_id="req-1", label="card_arrival", text="where is my card?", **extra):
    return {"type": "prediction", "item_id": item_id, "input": {"text": text},
            "prediction": {"label": label, "score": 0.9, "model": "clf", "model_version": "v1"}, **extra}


REPO = Path(__file__).resolve().parent.parent


# The store's two backends. A test module marked `pytestmark = pytest.mark.backends` runs each of its tests
# that use a workspace (`ws`, `open_ws`, `store_url`) once on the embedded file and once on PostgreSQL: a
# throwaway server for the session (initdb + pg_ctl in a temporary folder, on a loopback port), a schema of
# its own for each test.
def pytest_generate_tests(metafunc):
    if "store_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("backends"):
        metafunc.parametrize("store_backend", ["duckdb", "postgres"], indirect=True)


@pytest.fixture
def store_backend(request) -> str:
    return getattr(request, "param", "duckdb")


@pytest.fixture(scope="session")
def pg_server():
    import tempfile

    from feedback.store.local_server import LocalServer

    server = LocalServer(tempfile.mkdtemp(prefix="feedback-pg-"), durable=False).start()
    server.create_database("tests")
    yield server
    server.stop()


_SCHEMAS = iter(range(1, 1 << 30))


@pytest.fixture
def pg_url(pg_server) -> str:
    """A PostgreSQL store URL on a schema of its own."""
    import psycopg

    schema = f"t{next(_SCHEMAS)}"
    with psycopg.connect(pg_server.url("tests"), autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
    return pg_server.url("tests") + f"?options=-csearch_path%3D{schema}"


@pytest.fixture
def store_url(request, store_backend) -> str | None:
    """The store URL for a new workspace: None (the embedded file) or a PostgreSQL schema of its own."""
    return request.getfixturevalue("pg_url") if store_backend == "postgres" else None
