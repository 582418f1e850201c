"""Turns on the store, with real processes: waiters get in in arrival order, a holder past the deadline is
named, a killed holder lets go, an outside `duckdb.connect` is named, and a forked child takes its own turn."""

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from feedback.errors import StoreBusy, StoreError
from feedback.store import Store
from conftest import REPO

#: Takes the store in a transaction, logs "<name> <time>" to the log, and holds it for `hold` seconds or,
#: with hold < 0, until the file `go` exists; an inserted row shows whether its transaction committed.
HOLDER = textwrap.dedent("""
    import pathlib, sys, time
    from feedback.store import Store
    path, name, hold, log, go = sys.argv[1], sys.argv[2], float(sys.argv[3]), pathlib.Path(sys.argv[4]), pathlib.Path(sys.argv[5])
    with Store(path, busy_timeout=60).atomic() as tx:
        with log.open("a") as f:
            f.write(f"{name} {time.time()}\\n")
        tx.execute("INSERT INTO marks VALUES (?)", [name])
        if hold >= 0:
            time.sleep(hold)
        else:
            while not go.exists():
                time.sleep(0.01)
""")

#: Holds the file with a plain DuckDB connection, as a data scientist's notebook would, until `go` exists.
OUTSIDE = textwrap.dedent("""
    import pathlib, sys, time
    import duckdb
    con = duckdb.connect(sys.argv[1])
    pathlib.Path(sys.argv[2]).touch()
    while not pathlib.Path(sys.argv[3]).exists():
        time.sleep(0.01)
    con.close()
""")


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "feedback.duckdb", busy_timeout=60)
    with store.atomic() as tx:
        tx.execute("CREATE TABLE marks (name VARCHAR)")
    return store


def script(tmp_path, name: str, text: str):
    """The script as a file, so that a holder is named after it (`holder.py`) as a real program would be."""
    path = tmp_path / name
    path.write_text(text)
    return path


def start(path, *args):
    return subprocess.Popen([sys.executable, str(path), *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def lock_entries(store: Store) -> tuple[int, int]:
    """(holders, waiters) of the store's turn, from /proc/locks (a waiter's line has '->')."""
    found = os.stat(store.path.with_name(store.path.name + ".lock"))
    file = f"{os.major(found.st_dev):02x}:{os.minor(found.st_dev):02x}:{found.st_ino}"
    held = waiting = 0
    for line in open("/proc/locks"):
        fields = line.split()
        if fields[1] == "->":
            kind, where = fields[2], fields[6]
        else:
            kind, where = fields[1], fields[5]
        if kind == "FLOCK" and where == file:
            held += fields[1] != "->"
            waiting += fields[1] == "->"
    return held, waiting


def wait_for(condition, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def holding(store: Store, tmp_path, name="holder", hold=-1.0):
    """A holder process that has taken the turn (it holds it until `tmp_path / 'go'` exists, by default)."""
    log = tmp_path / "log"
    proc = start(script(tmp_path, f"{name}.py", HOLDER), store.path, name, hold, log, tmp_path / "go")
    wait_for(lambda: log.exists() and name in log.read_text(), f"{name} to take the store")
    return proc


def finish(*procs):
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err


def test_waiters_get_in_in_the_order_they_arrived(store, tmp_path):
    holder = holding(store, tmp_path)
    waiters = []
    for k, name in enumerate("ABCD", start=1):  # each one queued in the kernel before the next starts
        waiters.append(start(tmp_path / "holder.py", store.path, name, 0.2, tmp_path / "log", tmp_path / "go"))
        wait_for(lambda: lock_entries(store)[1] >= k, f"waiter {name} to queue")
    assert lock_entries(store) == (1, 4)
    (tmp_path / "go").touch()
    finish(holder, *waiters)
    entries = [line.split() for line in (tmp_path / "log").read_text().splitlines()]
    names = [name for name, _ in entries]
    order = "".join(names[1:])
    assert names[0] == "holder" and sorted(order) == list("ABCD")
    # the kernel wakes the queue in arrival order; on a loaded machine two neighbours may swap, never more
    assert sum(a > b for i, a in enumerate(order) for b in order[i + 1:]) <= 1, order
    times = [float(t) for _, t in entries]
    assert all(later - earlier >= 0.19 for earlier, later in zip(times[1:], times[2:]))  # one at a time
    assert sorted(r["name"] for r in store.rows("SELECT name FROM marks")) == ["A", "B", "C", "D", "holder"]


def test_a_holder_past_the_deadline_is_named_in_store_busy(store, tmp_path):
    holder = holding(store, tmp_path)
    impatient = Store(store.path, busy_timeout=1)
    started = time.monotonic()
    with pytest.raises(StoreBusy) as caught:
        impatient.value("SELECT count(*) FROM marks")
    waited = time.monotonic() - started
    message = str(caught.value)
    assert f"the store {store.path} is busy: pid {holder.pid} (holder.py " in message
    assert "has held it for over 1 s; try again, or stop that process if it hangs" in message
    assert 0.9 < waited < 5
    assert lock_entries(store) == (1, 1)  # the helper keeps this process's place in the queue, for a next caller
    (tmp_path / "go").touch()
    finish(holder)
    wait_for(lambda: lock_entries(store) == (0, 0), "the helper to let go of a turn nobody wanted any more")
    assert impatient.value("SELECT count(*) FROM marks") == 1  # the next caller gets in as usual


def test_a_holder_killed_with_sigkill_lets_the_waiter_in_and_commits_nothing(store, tmp_path):
    holder = holding(store, tmp_path)
    got = {}

    def wait():
        got["marks"] = store.rows("SELECT name FROM marks")
        got["at"] = time.monotonic()

    waiter = threading.Thread(target=wait)
    waiter.start()
    wait_for(lambda: lock_entries(store)[1] == 1, "the waiter to queue")
    holder.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    holder.wait()
    waiter.join(30)
    assert not waiter.is_alive()
    assert got["at"] - killed < 3
    assert got["marks"] == []  # the killed transaction left nothing behind
    assert lock_entries(store) == (0, 0)


def test_an_outside_duckdb_connection_is_named_and_once_closed_lets_the_store_in(store, tmp_path):
    ready, go = tmp_path / "ready", tmp_path / "go"
    outside = start(script(tmp_path, "notebook.py", OUTSIDE), store.path, ready, go)
    wait_for(ready.exists, "the outside connection")
    with pytest.raises(StoreBusy) as caught:
        Store(store.path, busy_timeout=1).value("SELECT 1")
    message = str(caught.value)
    assert f"the store {store.path} is busy: process {outside.pid} (" in message
    assert ("has it open outside feedback (a duckdb.connect?) and held it for over 1 s; close that connection, "
            "or analyse a copy of the file or a release instead") in message
    threading.Timer(1.0, go.touch).start()
    assert store.value("SELECT count(*) FROM marks") == 0  # waits (well within the deadline) for the close
    finish(outside)


def test_a_child_forked_in_a_unit_of_work_neither_shares_nor_cuts_the_parents_turn(store):
    with store.atomic() as tx:
        tx.execute("INSERT INTO marks VALUES ('parent')")
        pid = os.fork()
        if pid == 0:  # the child: DuckDB cannot open a file its parent had open at the fork, and says so
            code = 3
            try:
                Store(store.path, busy_timeout=0.5).value("SELECT 1")
                code = 1
            except StoreError as exc:
                code = 0 if "forked while its parent had the store" in str(exc) else 2
            finally:
                os._exit(code)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        assert lock_entries(store) == (1, 0)  # the child's exit did not cut the parent's turn short
        other = subprocess.run([sys.executable, "-c", "import sys; from feedback.store import Store; "
                                "Store(sys.argv[1], busy_timeout=0.5).value('SELECT 1')", str(store.path)],
                               cwd=REPO, capture_output=True, text=True, timeout=60)
        assert "StoreBusy" in other.stderr and f"pid {os.getpid()} " in other.stderr
    assert store.value("SELECT count(*) FROM marks") == 1


def _child_marks(path: str, name: str, go) -> None:
    go.wait()
    with Store(path, busy_timeout=30).atomic() as tx:
        tx.execute("INSERT INTO marks VALUES (?)", [name])


def test_forked_children_wait_for_the_parents_turn_and_then_get_in(store):
    context = multiprocessing.get_context("fork")
    go = context.Event()
    store.value("SELECT 1")  # the parent has used the store before it forks
    children = [context.Process(target=_child_marks, args=(str(store.path), f"child-{k}", go)) for k in range(3)]
    for child in children:
        child.start()
    with store.atomic() as tx:
        tx.execute("INSERT INTO marks VALUES ('parent')")
        go.set()
        wait_for(lambda: lock_entries(store)[1] == 3, "the children to queue")
        assert tx.value("SELECT count(*) FROM marks") == 1  # still the parent's turn
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    assert sorted(r["name"] for r in store.rows("SELECT name FROM marks")) == ["child-0", "child-1", "child-2", "parent"]
    assert lock_entries(store) == (0, 0)
