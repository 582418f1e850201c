"""The team store on a real PostgreSQL server: several "machines" (workspace folders whose configs point at one
database), moving a file workspace there, run locks across processes, and reviewer processes side by side."""

import json
import subprocess
import sys
import textwrap
from collections import Counter

import pytest

from feedback import Client, ingest_files, init_workspace, Workspace
from feedback.errors import StoreError, WorkspaceError
from feedback.learn.jobs import JobBusy, job_lock
from feedback.review import StaleDecision, decide, history, next_item, queue_page
from feedback.roles import Actor
from conftest import LABELS, REPO

ANN, BOB = Actor("ann", "reviewer"), Actor("bob", "reviewer")


def events_file(path, n, *, start=0, corrected=True):
    """`n` predictions, each with a user correction that disagrees (so every item is queued)."""
    lines = []
    for i in range(start, start + n):
        lines.append({"type": "prediction", "item_id": f"req-{i}", "event_id": f"p-{i}",
                      "input": {"text": f"where is my card, request {i}?"},
                      "prediction": {"label": LABELS[i % 4], "score": 0.4 + (i % 50) / 100, "model_version": "v1"}})
        if corrected:
            lines.append({"type": "correction", "item_id": f"req-{i}", "event_id": f"c-{i}",
                          "correction": {"label": LABELS[(i + 1) % 4], "by": "user"}})
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    return path


def machine(tmp_path, name, url) -> Workspace:
    """Another machine's workspace: its own folder and config, the same team store."""
    return init_workspace(tmp_path / name, dataset="test", labels=LABELS, store=url)


def test_two_machines_share_one_store_and_a_stale_write_is_refused(tmp_path, pg_url):
    one, two = machine(tmp_path, "one", pg_url), machine(tmp_path, "two", pg_url)
    ingest_files(one, [events_file(tmp_path / "e.jsonl", 20)])
    assert [r["item_id"] for r in queue_page(two)] == [r["item_id"] for r in queue_page(one)]
    first, second = next_item(one, ANN), next_item(two, BOB)
    assert first["item_id"] != second["item_id"]
    seen = first["last_decision_id"]  # bob read ann's item as she claimed it
    decide(one, ANN, first["item_id"], LABELS[0])
    with pytest.raises(StaleDecision, match="ann"):
        decide(two, BOB, first["item_id"], LABELS[1], based_on=seen, check_stale=True)
    assert [h["label"] for h in history(two, first["item_id"]) if h["kind"] == "decision:label"] == [LABELS[0]]


def test_init_takes_a_store_url_and_refuses_a_password_in_it(tmp_path, cli, pg_url):
    done = cli("init", tmp_path / "ws", "--label", "a", "--store", pg_url)
    assert done.exit_code == 0 and "store postgresql://" in done.output
    assert Workspace(tmp_path / "ws").store_url == pg_url
    assert "feedback.duckdb" not in {p.name for p in (tmp_path / "ws").iterdir()}
    with pytest.raises(WorkspaceError, match="PGPASSWORD"):
        init_workspace(tmp_path / "other", store="postgresql://feedback:secret@127.0.0.1:1/db")
    refused = cli("init", tmp_path / "third", "--store", "mysql://x@y/z")
    assert refused.exit_code == 1 and "postgresql://USER@HOST:PORT/DB" in refused.output


def test_a_file_workspace_moves_to_postgresql_with_its_whole_history(tmp_path, cli, pg_url):
    ws = init_workspace(tmp_path / "ws", dataset="test", labels=LABELS)
    path = events_file(tmp_path / "e.jsonl", 300)
    path.write_text(path.read_text() + '{"type": "prediction", "item_id": "x", "prediction": {"label": "nope"}}\n')
    ingest_files(ws, [path])
    held = next_item(ws, ANN)
    decide(ws, ANN, held["item_id"], LABELS[2], note="moved")
    next_item(ws, BOB)
    before = {"page": queue_page(ws, limit=500), "history": history(ws, held["item_id"])}
    counts = {t: ws.store().value(f"SELECT count(*) FROM {t}") for t in ("events", "decisions", "claims", "quarantine")}

    moved = cli("store", "migrate", "--to", pg_url, "-w", ws.root, "--json")
    assert moved.exit_code == 0, moved.output
    report = json.loads(moved.output)["tables"]
    assert {t: report[t]["rows"] for t in counts} == counts and counts["quarantine"] == 1
    ws = Workspace(ws.root)
    assert ws.store_url == pg_url
    assert {"page": queue_page(ws, limit=500), "history": history(ws, held["item_id"])} == before
    decide(ws, BOB, next_item(ws, BOB)["item_id"], LABELS[0])  # and work goes on there

    again = cli("store", "migrate", "--to", pg_url, "-w", ws.root)
    assert again.exit_code == 1 and "already keeps its store in" in again.output
    other = init_workspace(tmp_path / "other", dataset="test", labels=LABELS)
    full = cli("store", "migrate", "--to", pg_url, "-w", other.root)
    assert full.exit_code == 1 and "already holds rows" in full.output and f"events {counts['events']:,}" in full.output
    assert Workspace(other.root).store_url is None


HOLDER = textwrap.dedent("""
    import sys, time
    from feedback import Workspace
    from feedback.learn.jobs import job_lock
    with job_lock(Workspace(sys.argv[1]), "sample"):
        print("held", flush=True)
        sys.stdin.readline()
""")


def test_run_locks_hold_across_machines_and_go_with_their_process(tmp_path, pg_url):
    one, two = machine(tmp_path, "one", pg_url), machine(tmp_path, "two", pg_url)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(one.root)], cwd=REPO, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(JobBusy, match=f"pid {holder.pid}"):
            with job_lock(two, "sample"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with job_lock(two, "sample"):  # the server let go of the killed process's lock
        pass


REVIEWER = textwrap.dedent("""
    import json, pathlib, sys, time
    from feedback import Workspace
    from feedback.review import decide, next_item
    from feedback.roles import Actor
    ws, me, stop = Workspace(sys.argv[1]), Actor(sys.argv[2], "reviewer"), pathlib.Path(sys.argv[3])
    labels = sorted(ws.taxonomy.names)
    decided = []
    while True:  # until the queue is empty once the other workers are done
        item = next_item(ws, me)
        if item is None:
            if stop.exists():
                break
            time.sleep(0.2)
            continue
        decide(ws, me, item["item_id"], labels[len(decided) % 4], based_on=item["last_decision_id"], check_stale=True)
        decided.append(item["item_id"])
    print(json.dumps(decided))
""")

WORKER = textwrap.dedent("""
    import json, pathlib, subprocess, sys
    from feedback import Workspace, ingest_files
    ws, folder, rounds = Workspace(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])
    for k in range(rounds):
        path = folder / f"more-{k}.jsonl"
        path.write_text("".join(json.dumps({"type": "prediction", "item_id": f"new-{k}-{i}", "input": {"text": f"new {k} {i}"},
                                            "prediction": {"label": "card_arrival", "score": 0.99, "model_version": "v2"}}) + "\\n"
                                for i in range(50)))
        ingest_files(ws, [path])
        run = subprocess.run([sys.executable, "-m", "feedback", "sample", "-w", str(ws.root), "--budget", "10", "--json"],
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        print(json.loads(run.stdout)["status"], flush=True)
""")


def test_four_reviewer_machines_decide_every_item_once_beside_an_ingest_worker_and_the_sampler(tmp_path, pg_url):
    """2,000 queued items, 4 reviewer processes with workspaces of their own on one database, an ingest worker
    and the sampler adding items meanwhile: every queued item decided once, by the one reviewer who claimed it."""
    first = machine(tmp_path, "ingest", pg_url)
    ingest_files(first, [events_file(tmp_path / "e.jsonl", 2000)])
    stop = tmp_path / "workers-done"
    reviewers = [subprocess.Popen([sys.executable, "-c", REVIEWER, str(machine(tmp_path, f"m{k}", pg_url).root),
                                   f"rev{k}", str(stop)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
                 for k in range(4)]
    worker = subprocess.run([sys.executable, "-c", WORKER, str(first.root), str(tmp_path), "4"], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    stop.touch()
    assert worker.returncode == 0, worker.stderr
    outputs = [r.communicate(timeout=600) for r in reviewers]
    assert all(r.returncode == 0 for r in reviewers), [err for _, err in outputs]
    decided = [item for out, _ in outputs for item in json.loads(out)]

    assert all(json.loads(out) for out, _ in outputs)  # every reviewer got work
    assert len(decided) == len(set(decided)) >= 2000
    assert {f"req-{i}" for i in range(2000)} <= set(decided)
    rows = first.store().rows("SELECT item_id, count(*) AS n, count(DISTINCT reviewer) AS by FROM decisions GROUP BY 1")
    assert {r["item_id"] for r in rows} == set(decided) and {(r["n"], r["by"]) for r in rows} == {(1, 1)}
    claimers = first.store().rows("SELECT item_id, count(DISTINCT reviewer) AS n FROM claims GROUP BY 1 HAVING count(DISTINCT reviewer) > 1")
    assert claimers == []
    assert Counter(worker.stdout.split())["done"] >= 1  # the sampler queued new items for the reviewers
    left = queue_page(first, limit=5)
    assert [r for r in left if r["status"] in ("new", "in review", "skipped")] == []


def test_each_process_role_does_its_work_and_nothing_else(tmp_path, cli, pg_url):
    """The roles of `feedback store grants`: ingest cannot rewrite decisions, reviewers cannot write events."""
    import psycopg

    owner = machine(tmp_path, "owner", pg_url)
    schema = pg_url.rsplit("%3D", 1)[1]
    sql = cli("store", "grants", "--schema", schema, "--prefix", schema).output
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute(sql)
    ingest, reviewer, sampler, loop = (machine(tmp_path, kind, pg_url.replace("feedback@", f"{schema}_{kind}@"))
                                       for kind in ("ingest", "reviewer", "sampler", "loop"))
    assert ingest_files(ingest, [events_file(tmp_path / "e.jsonl", 30)]).events == 60
    item = next_item(reviewer, ANN)
    decide(reviewer, ANN, item["item_id"], LABELS[0])
    run = cli("sample", "-w", sampler.root, "--budget", "5", "--json")
    assert run.exit_code == 0, run.output
    with Client(loop) as client:  # the loop's own machine captures too
        client.prediction("req-loop", text="a card question", label=LABELS[0], score=0.4)
    looped = cli("run", "-w", loop.root, "--json")
    assert looped.exit_code == 0, looped.output

    refused = {"ingest rewrites a decision": (ingest, "UPDATE decisions SET label = 'x'"),
               "ingest forges a decision": (ingest, "INSERT INTO decisions (decision_id) VALUES ('d-forged')"),
               "ingest claims an item": (ingest, "INSERT INTO claims (item_id) VALUES ('req-1')"),
               "a reviewer writes an event": (reviewer, "INSERT INTO events (event_id) VALUES ('e-forged')"),
               "a reviewer deletes a decision": (reviewer, "DELETE FROM decisions"),
               "the sampler decides": (sampler, "INSERT INTO decisions (decision_id) VALUES ('d-forged')"),
               "the loop decides": (loop, "INSERT INTO decisions (decision_id) VALUES ('d-forged')")}
    for what, (ws, statement) in refused.items():
        with pytest.raises(StoreError, match="permission denied"), ws.store().atomic() as tx:
            tx.execute(statement)
    assert owner.store().value("SELECT count(*) FROM decisions") == 1


def test_a_writer_past_the_deadline_makes_others_wait_then_say_store_busy(tmp_path, pg_url):
    import threading

    from feedback.errors import StoreBusy
    from conftest import set_config

    ws = set_config(machine(tmp_path, "one", pg_url), "busy_timeout", 0.5)
    holding, done = threading.Event(), threading.Event()

    def writer():
        with ws.store().atomic():
            holding.set()
            done.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    holding.wait(10)
    try:
        with pytest.raises(StoreBusy, match="held its lock for over 0.5 s"), ws.store().atomic():
            pass
        assert ws.store().value("SELECT count(*) FROM events") == 0  # a plain read never waits for a writer
    finally:
        done.set()
        thread.join()
    with ws.store().atomic() as tx:
        assert tx.value("SELECT 1") == 1


def test_arrow_goes_in_and_comes_back_the_same(pg_url):
    """COPY both ways: empty text is not NULL, lists, quotes and newlines in text, timestamps, doubles."""
    import datetime as dt

    import pyarrow as pa

    from feedback.store.postgres import PgStore

    data = pa.table({"s": ["", None, 'a "q", b\nline2', "ünï ✓ ?%"], "f": [0.1, 1 / 3, None, 1e-300],
                     "t": pa.array([dt.datetime(2026, 1, 1, 12, 0, 0, 123456), None, dt.datetime(1999, 1, 1),
                                    dt.datetime(2026, 1, 1)], pa.timestamp("us")),
                     "b": [True, False, None, True], "l": [["a", 'b"c'], [], None, ["x,y", None]],
                     "i": [1, None, 2**40, -3]})
    store = PgStore(pg_url)
    store.migrate()
    with store.atomic() as tx:
        tx.execute("CREATE TABLE t (n BIGINT, s VARCHAR, f DOUBLE, t TIMESTAMP, b BOOLEAN, l VARCHAR[], i BIGINT)")
        tx.insert("t", data.add_column(0, "n", pa.array(range(4), pa.int64())))
    back = store.arrow("SELECT s, f, t, b, l, i FROM t WHERE n >= ? AND s IS DISTINCT FROM '?' ORDER BY n", [0])
    assert back.equals(data)
    with store.connect() as tx, tx.registered(data) as name:
        assert tx.rows(f"SELECT count(*) AS n, count(s) AS texts, sum(len(l)) AS listed FROM {name}") == \
            [{"n": 4, "texts": 3, "listed": 4}]


def test_a_failed_transaction_leaves_nothing_and_a_nested_one_joins_its_parent(pg_url):
    from feedback.errors import StoreError
    from feedback.store.postgres import PgStore

    store = PgStore(pg_url)
    store.migrate()
    with pytest.raises(StoreError, match="no_such_table"), store.atomic() as tx:
        tx.execute("INSERT INTO gold VALUES ('a', 'x', 'me', now())")
        tx.execute("SELECT * FROM no_such_table")
    with store.atomic() as outer:
        outer.execute("INSERT INTO gold VALUES ('b', 'x', 'me', now())")
        with store.atomic() as inner:
            assert inner.value("SELECT count(*) FROM gold") == 1  # the parent's uncommitted row
    assert [r["item_id"] for r in store.rows("SELECT item_id FROM gold")] == ["b"]


def test_a_forked_child_uses_the_store_on_its_own_connection_and_the_parent_keeps_its_own(pg_url):
    import os

    from feedback.store.postgres import PgStore

    store = PgStore(pg_url)
    parent = store.value("SELECT pg_backend_pid()")
    child = os.fork()
    if child == 0:
        os._exit(0 if store.value("SELECT pg_backend_pid()") != parent else 1)
    assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0
    assert store.value("SELECT pg_backend_pid()") == parent
