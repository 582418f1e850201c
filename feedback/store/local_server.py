"""A throwaway PostgreSQL server in a folder, for tests, benchmarks and trying the team store on one machine.

    with LocalServer(tmp / "pg") as server:
        init_workspace(tmp / "ws", store=server.url("feedback"))

It runs the machine's own PostgreSQL programs (Debian's `postgresql` package) on a loopback port, with
trust authentication for its one user and its data in the folder; it never touches the machine's
own cluster. As root, the programs run as the `postgres` user, since PostgreSQL refuses root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

from ..errors import StoreError

USER = "feedback"


def _bindir() -> Path:
    """The folder of `initdb` and `pg_ctl`: Debian keeps them out of PATH, under /usr/lib/postgresql/N/bin."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise StoreError("PostgreSQL's programs (initdb, pg_ctl) are not installed: `apt-get install postgresql`")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """A PostgreSQL server whose cluster lives in `folder`; `start` makes and starts it, `stop` stops it."""

    def __init__(self, folder: str | Path, *, port: int | None = None, durable: bool = True):
        self.folder = Path(folder).resolve()
        self.port = port or _free_port()
        self.durable = durable  # False: no fsync (tests), as a throwaway server can afford
        self.bin = _bindir()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> "LocalServer":
        data = self.folder / "data"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._own(self.folder)
        if not (data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(data), "-l", str(self.folder / "server.log"), "-o", options, "-w", "start")
        return self

    def create_database(self, name: str) -> str:
        """Create a database on the server and return its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if (self.folder / "data" / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop")

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _own(self, folder: Path) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(folder, user.pw_uid, user.pw_gid)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder)
        if done.returncode:
            raise StoreError(f"{program} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-2000:]}")
