"""The long-running shells as real processes: they say when they cannot listen, and stop cleanly."""

import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from conftest import REPO, free_port


def feedback(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "feedback", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=120, **kwargs)


@pytest.fixture
def held_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_serve_on_a_bad_host_or_a_busy_port_says_why_and_exits_1(ws, held_port):
    bad = feedback("serve", "-w", ws.root, "--host", "999.1.1.1")
    assert bad.returncode == 1 and bad.stderr.startswith("Error: cannot listen on 999.1.1.1:8321: '999.1.1.1' is not")
    busy = feedback("serve", "-w", ws.root, "--port", held_port)
    assert busy.returncode == 1
    assert busy.stderr == f"Error: cannot listen on 127.0.0.1:{held_port}: Address already in use; pass another " \
                          "--port, or stop what holds it\n"


def test_demo_on_a_busy_port_exits_1(tmp_path, held_port):
    busy = feedback("demo", tmp_path / "demo", "--port", held_port)
    assert busy.returncode == 1 and "Address already in use" in busy.stderr


def test_terminating_the_demo_stops_the_app(tmp_path):
    port = free_port()
    demo = subprocess.Popen([sys.executable, "-m", "feedback", "demo", str(tmp_path / "demo"), "--port", str(port)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    health = f"http://127.0.0.1:{port}/_stcore/health"
    try:
        deadline = time.monotonic() + 90
        while not serving(health):
            assert time.monotonic() < deadline and demo.poll() is None, "the app never started"
            time.sleep(0.3)
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=30)
        deadline = time.monotonic() + 15
        while serving(health):
            assert time.monotonic() < deadline, "the app kept serving after the demo was terminated"
            time.sleep(0.2)
    finally:
        demo.kill()


def serving(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False
