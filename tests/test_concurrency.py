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
    import sys, time
    from feedback import Client
    workspace, name, n, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    client = Client(workspace)
    accepted = 0
    for i in range(n):
        if i % 20 == 0:
            time.sleep(pause)
        accepted += client.prediction(f"{name}-{i % 500}", text=f"text {i} from {name}", label="card_arrival",
                                      score=0.5, event_id=f"{name}-{i}")
    client.close()
    print(accepted)
""")

INGEST = textwrap.dedent("""
    import sys
    import feedback.ingest
    from feedback import Workspace
    feedback.ingest.GROUP_BYTES = 60_000  # many small transactions: many instants to die between
    feedback.ingest.ingest_spool(Workspace(sys.argv[1]))
""")


def python(script, *args):
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_exactly_once(ws, expected: int):
    row = ws.store().rows("SELECT count(*) AS n, count(DISTINCT event_id) AS d, max(seq) AS top FROM events")[0]
    assert row == {"n": expected, "d": expected, "top": expected}


def test_four_producers_and_an_ingest_loop_at_once(ws):
    ws = set_config(ws, "segment_max_bytes", 30_000)
    producers = [python(PRODUCER, ws.root, f"p{k}", 5000, 0.03) for k in range(4)]
    rounds = 0
    while any(p.poll() is None for p in producers) or rounds == 0:
        loop = subprocess.run([sys.executable, "-m", "feedback", "ingest", "-w", ws.root, "--json"],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
        assert loop.returncode == 0, loop.stderr
        status = subprocess.run([sys.executable, "-m", "feedback", "status", "-w", ws.root, "--json"],
                                cwd=REPO, capture_output=True, text=True, timeout=120)
        assert status.returncode == 0, status.stderr
        rounds += 1
    accepted = sum(int(p.communicate()[0]) for p in producers)
    assert all(p.returncode == 0 for p in producers)
    ingest_spool(ws)
    assert accepted == 20_000 and rounds >= 2
    assert_exactly_once(ws, accepted)


def test_ingest_killed_at_random_instants_loses_and_doubles_nothing(ws):
    ws = set_config(ws, "segment_max_bytes", 20_000)
    producers = [python(PRODUCER, ws.root, f"k{k}", 6000, 0) for k in range(4)]
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
