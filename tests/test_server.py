"""The HTTP endpoint, run as a real uvicorn server in a subprocess."""

import os
import subprocess
import sys
import time

import httpx
import pytest

from feedback import ingest_spool
from conftest import REPO, free_port, prediction, set_config

TOKEN = "s3cret-token"


@pytest.fixture
def server(ws):
    ws = set_config(ws, "max_body_bytes", 20_000)
    port = free_port()
    env = {**os.environ, "FEEDBACK_CAPTURE_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "feedback", "serve", "-w", str(ws.root), "--port", str(port)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(proc.stdout.read().decode())
    yield ws, url
    proc.terminate()
    proc.wait(timeout=10)


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_a_single_event_is_accepted_into_the_spool_not_the_store(server):
    ws, url = server
    response = httpx.post(f"{url}/v1/events", json=prediction(event_id="h-1"), headers=AUTH)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "rejected": 0, "results": [
        {"index": 0, "status": "accepted", "event_id": "h-1", "item_id": "req-1"}]}
    assert ws.store().value("SELECT count(*) FROM events") == 0


def test_a_batch_gets_a_result_per_event_and_the_good_ones_land(server):
    ws, url = server
    batch = [prediction("a"), {"type": "correction", "item_id": "a"}, prediction("b", label="card_linking")]
    response = httpx.post(f"{url}/v1/events", json={"events": batch}, headers=AUTH)
    body = response.json()
    assert response.status_code == 202 and (body["accepted"], body["rejected"]) == (2, 1)
    assert body["results"][1] == {"index": 1, "status": "rejected", "reason": "missing_field", "field": "correction",
                                  "message": "field 'correction': is required for a correction event"}
    assert httpx.post(f"{url}/v1/events", json=[prediction("c")], headers=AUTH).json()["accepted"] == 1
    deadline = time.monotonic() + 10  # the server's segment seals by age (segment_max_seconds)
    while ws.store().value("SELECT count(*) FROM events") < 3 and time.monotonic() < deadline:
        ingest_spool(ws)
        time.sleep(0.2)
    assert sorted(r["item_id"] for r in ws.store().rows("SELECT item_id FROM events")) == ["a", "b", "c"]


def test_accepted_means_spooled_and_the_status_endpoint_tells_what_ingest_made_of_it(server):
    ws, url = server
    httpx.post(f"{url}/v1/events", json=prediction("a", event_id="ev-1"), headers=AUTH)
    assert httpx.get(f"{url}/v1/events/ev-1", headers=AUTH).json() == {"event_id": "ev-1", "status": "pending"}
    reused = httpx.post(f"{url}/v1/events", json=prediction("b", event_id="ev-1", label="card_linking"), headers=AUTH)
    assert reused.json()["results"][0]["status"] == "accepted"  # the contract holds; the store decides later
    deadline = time.monotonic() + 10
    while ws.store().value("SELECT count(*) FROM quarantine") == 0 and time.monotonic() < deadline:
        ingest_spool(ws)
        time.sleep(0.2)
    answer = httpx.get(f"{url}/v1/events/ev-1", headers=AUTH).json()
    assert (answer["status"], answer["reason"]) == ("quarantined", "duplicate_event_conflict")
    assert httpx.get(f"{url}/v1/events/ev-1").status_code == 401


def test_token_is_required_when_configured(server):
    _, url = server
    assert httpx.post(f"{url}/v1/events", json=prediction()).status_code == 401
    wrong = httpx.post(f"{url}/v1/events", json=prediction(), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"


def test_body_size_is_limited_and_bad_json_is_a_clear_400(server):
    _, url = server
    big = [prediction(f"r{i}", text="x" * 500) for i in range(100)]
    response = httpx.post(f"{url}/v1/events", json=big, headers=AUTH)
    assert response.status_code == 413 and "send smaller batches" in response.json()["detail"]

    def chunks():
        for _ in range(30):
            yield b"x" * 1000

    assert httpx.post(f"{url}/v1/events", content=chunks(), headers=AUTH).status_code == 413
    bad = httpx.post(f"{url}/v1/events", content=b"{not json", headers=AUTH)
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["detail"]


def test_schema_is_served(server):
    _, url = server
    assert httpx.get(f"{url}/v1/schema").json()["title"].startswith("feedback-workbench capture event, v1")
