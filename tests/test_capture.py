"""The SDK: fast appends to the spool, never raising into the caller, safe across threads and processes."""

import subprocess
import sys
import textwrap
import threading

from feedback import Client, ingest_spool
from feedback.capture import client as capture_module
from conftest import prediction, set_config
import pytest

pytestmark = pytest.mark.backends


def test_bad_events_return_false_and_are_counted_not_raised(ws, caplog):
    client = Client(ws)
    assert client.capture(prediction()) is True
    assert client.capture({"type": "nope"}) is False
    assert client.capture("not a dict") is False
    assert client.prediction("x", text="t", label="card_arrival", score=float("nan")) is False
    assert client.stats == {"accepted": 1, "rejected": 3, "dropped": 0}
    assert "event rejected (invalid_value): field 'prediction.score'" in caplog.text


def test_capture_checked_explains_the_rejection(ws):
    ok, detail = Client(ws).capture_checked({"type": "correction", "item_id": "x", "correction": {}})
    assert not ok and detail == {"reason": "missing_field", "field": "correction.label",
                                 "message": "field 'correction.label': is required"}


def test_segments_rotate_by_size_and_a_reader_sees_only_whole_segments(ws):
    ws = set_config(ws, "segment_max_bytes", 2000)
    client = Client(ws)
    for i in range(50):
        client.capture(prediction(f"r{i}"))
    sealed = list((ws.path("spool") / "sealed").iterdir())
    assert len(sealed) >= 5
    for segment in sealed:
        assert segment.read_bytes().endswith(b"\n")
    client.close()
    assert ingest_spool(ws).events == 50


def test_segments_seal_by_age_without_further_captures(ws):
    import time

    ws = set_config(ws, "segment_max_seconds", 0.2)
    client = Client(ws)
    client.capture(prediction())
    deadline = time.monotonic() + 5
    while not list((ws.path("spool") / "sealed").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(list((ws.path("spool") / "sealed").iterdir())) == 1


def test_many_threads_capture_every_event_once(ws):
    ws = set_config(ws, "segment_max_bytes", 50_000)
    client = Client(ws)

    def produce(t):
        for i in range(1000):
            client.capture(prediction(f"t{t}-{i}", event_id=f"t{t}-{i}"))

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    ingest_spool(ws)
    row = ws.store().rows("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events")[0]
    assert row == {"n": 8000, "d": 8000}


def test_a_full_disk_never_raises_and_what_was_accepted_is_kept(ws):
    """The file size limit (RLIMIT_FSIZE) makes the kernel refuse writes, as a full disk does."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {str(ws.root.parent.parent)!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        from feedback import Client
        client = Client({str(ws.root)!r})
        results = [client.prediction(f"r{{i}}", text="x" * 200, label="card_arrival") for i in range(300)]
        client.close()
        print(sum(results), client.stats["accepted"], client.stats["dropped"])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    ok, accepted, dropped = map(int, out.stdout.split())
    assert ok == accepted and 0 < accepted < 300 and accepted + dropped == 300
    assert "not spooled" in out.stderr
    report = ingest_spool(ws)
    assert report.events == accepted


def test_forked_children_write_their_own_segments(ws):
    import os

    client = Client(ws)
    client.capture(prediction("parent-1"))
    pid = os.fork()
    if pid == 0:
        client.capture(prediction("child-1"))
        client.close()
        os._exit(0)
    os.waitpid(pid, 0)
    client.capture(prediction("parent-2"))
    client.close()
    assert len(list((ws.path("spool") / "sealed").iterdir())) == 2
    assert ingest_spool(ws).events == 3


def test_module_level_capture_uses_the_workspace_from_the_environment(ws, monkeypatch):
    monkeypatch.setenv("FEEDBACK_WORKSPACE", str(ws.root))
    monkeypatch.setattr(capture_module, "_default", {})
    assert capture_module.capture_event(prediction()) is True
    capture_module._default["client"].close()
    assert ingest_spool(ws).events == 1


def test_module_level_capture_without_a_workspace_returns_false(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("FEEDBACK_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(capture_module, "_default", {})
    assert capture_module.capture_event(prediction()) is False
    assert "not configured" in caplog.text
