"""Real processes: producers and ingest at once, and ingest killed with SIGKILL at random instants."""

import random
import signal
import subprocess
import sys
import textwrap
import time

from feedback import ingest_spool
from conftest import REPO, set_config

PRODUCER = textwrap.dedent("""
    import pathlib, sys, time
    from feedback import Client
    workspace, name, n, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), pathlib.Path(sys.argv[4])
    client = Client(workspace)
    accepted = i = 0
    while i < n or (stop.name and not stop.exists()):
        if stop.name and i % 20 == 0:
            time.sleep(0.01)
        accepted += client.prediction(f"{name}-{i % 500}", text=f"text {i} from {name}", label="card_arrival",
                                      score=0.5, event_id=f"{name}-{i}")
        i += 1
    client.close()
    print(accepted)
""")

INGEST = textwrap.dedent("""
    import sys
    import feedback.capture.ingest
    from feedback import Workspace
    feedback.capture.ingest.GROUP_BYTES = 60_000  # many small transactions: many instants to die between
    feedback.capture.ingest.ingest_spool(Workspace(sys.argv[1]))
""")


def python(script, *args):
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_exactly_once(ws, expected: int):
    row = ws.store().rows("SELECT count(*) AS n, count(DISTINCT event_id) AS d, max(seq) AS top FROM events")[0]
    assert row == {"n": expected, "d": expected, "top": expected}


def test_four_producers_and_an_ingest_loop_at_once(ws, tmp_path):
    ws = set_config(ws, "segment_max_bytes", 30_000)
    stop = tmp_path / "stop"
    producers = [python(PRODUCER, ws.root, f"p{k}", 2000, stop) for k in range(4)]
    try:
        for _ in range(3):  # the producers keep writing until these rounds are done
            loop = subprocess.run([sys.executable, "-m", "feedback", "ingest", "-w", ws.root, "--json"],
                                  cwd=REPO, capture_output=True, text=True, timeout=120)
            assert loop.returncode == 0, loop.stderr
            status = subprocess.run([sys.executable, "-m", "feedback", "status", "-w", ws.root, "--json"],
                                    cwd=REPO, capture_output=True, text=True, timeout=120)
            assert status.returncode == 0, status.stderr
    finally:
        stop.touch()
    accepted = sum(int(p.communicate(timeout=60)[0]) for p in producers)
    assert all(p.returncode == 0 for p in producers)
    ingest_spool(ws)
    assert accepted >= 8000
    assert_exactly_once(ws, accepted)


def test_ingest_killed_at_random_instants_loses_and_doubles_nothing(ws):
    ws = set_config(ws, "segment_max_bytes", 20_000)
    producers = [python(PRODUCER, ws.root, f"k{k}", 6000, "") for k in range(4)]
    accepted = sum(int(p.communicate()[0]) for p in producers)
    rng = random.Random(20261122)
    kills = 0
    for _ in range(12):
        proc = python(INGEST, ws.root)
        time.sleep(rng.uniform(0.3, 2.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    ingest_spool(ws)
    assert kills >= 3, "ingest finished before any kill: make the data larger"
    assert accepted == 24_000
    assert_exactly_once(ws, accepted)
    assert not list((ws.path("spool") / "sealed").iterdir())


LOOP = textwrap.dedent("""
    import pathlib, sys, time
    from feedback import Workspace, ingest_spool
    ws, stop = Workspace(sys.argv[1]), pathlib.Path(sys.argv[2])
    runs = 0
    while not stop.exists() or runs == 0:
        ingest_spool(ws)
        runs += 1
    print(runs)
""")


def test_two_ingest_loops_at_once_store_every_event_once_and_neither_fails(ws, tmp_path):
    ws = set_config(ws, "segment_max_bytes", 20_000)
    stop = tmp_path / "stop"
    loops = [python(LOOP, ws.root, stop) for _ in range(2)]
    producers = [python(PRODUCER, ws.root, f"q{k}", 3000, "") for k in range(2)]
    accepted = sum(int(p.communicate(timeout=120)[0]) for p in producers)
    stop.touch()
    for loop in loops:
        out, err = loop.communicate(timeout=120)
        assert loop.returncode == 0, err
        assert int(out) >= 1
    ingest_spool(ws)
    assert accepted == 6000
    assert_exactly_once(ws, accepted)
    assert ws.store().value("SELECT count(*) - count(DISTINCT source) FROM ingested_sources") == 0
    assert not list((ws.path("spool") / "sealed").iterdir())
