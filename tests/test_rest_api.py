"""The REST review API (/v1/review) on real servers: `feedback serve` on the embedded store, and with two
worker processes on PostgreSQL, each a subprocess on a loopback port; users with personal API tokens."""

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from feedback import Client, ingest_spool, init_workspace
from feedback import roles
from feedback.api import SCHEMA_PATH
from feedback.review import queue_page
from conftest import LABELS, REPO, configure, free_port

API = "/v1/review"
REFUND, LOST = "refund_not_showing_up", "lost_or_stolen_card"
PASSWORD = "correct horse battery"
TEXTS = ["where is my new card", "my card has not arrived yet", "how do I link my card to the app",
         "I want my money back for this order", "the refund never reached my account", "cancel my order please",
         "why was I charged twice", "can I change my delivery address", "my card was stolen yesterday",
         "what is the exchange rate today"]


def workspace(root, *, items: int, store: str | None = None, users: dict, **server):
    """A workspace of `items` queued items (each a prediction and a disagreeing correction), `server` settings,
    and `users` ({name: role}, the first an admin), each with an API token; returns (ws, {name: token})."""
    ws = configure(init_workspace(root, dataset="test", labels=LABELS, store=store), "server", **server)
    with Client(ws.root) as client:
        for i in range(items):
            client.prediction(f"req-{i:04d}", text=f"{TEXTS[i % len(TEXTS)]} ({i})", label="card_arrival", score=0.4)
            client.correction(f"req-{i:04d}", label=REFUND)
    ingest_spool(ws)
    tokens, admin = {}, None
    for name, role in users.items():
        roles.add_user(ws, admin, name, role=role, password=PASSWORD)
        signed_in = roles.authenticate(ws, name, PASSWORD)
        admin = admin or signed_in
        tokens[name] = roles.create_token(ws, signed_in)["token"]
    return ws, tokens


def serve(command: list[str], env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([*command, "--port", str(port)], cwd=REPO, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail(proc.stdout.read().decode())


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=15)


class Api:
    """One user's client: `api.post("/decisions", json=...)` -> the response."""

    def __init__(self, url: str, token: str | None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url + API, headers=headers, timeout=30)

    def __getattr__(self, method):
        return getattr(self.http, method)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    ws, tokens = workspace(tmp_path_factory.mktemp("rest") / "ws", items=30,
                           users={"ada": "admin", "lena": "lead", "rob": "reviewer", "ria": "reviewer",
                                  "flood": "reviewer"},
                           max_body_bytes=20_000, rate_per_second=20, rate_burst=60)
    proc, url = serve([sys.executable, "-m", "feedback", "serve", "-w", str(ws.root)], {})
    yield ws, url, {name: Api(url, token) for name, token in tokens.items()}
    stop(proc)


def test_the_served_openapi_schema_is_the_checked_in_one(embedded):
    _, url, _ = embedded
    served = httpx.get(f"{url}/openapi.json").json()
    assert served == json.loads(SCHEMA_PATH.read_text(encoding="utf-8")), \
        "the API changed: regenerate the schema with `python -m feedback.api` and commit feedback/api/openapi.json"


def test_each_role_is_refused_what_it_may_not_do(embedded):
    ws, url, api = embedded
    nobody = Api(url, None).get("/me")
    assert (nobody.status_code, nobody.json()["reason"], nobody.json()["field"]) == (401, "unauthenticated",
                                                                                       "authorization")
    assert nobody.headers["www-authenticate"] == "Bearer"
    assert Api(url, "fbk_rob.forged").get("/me").status_code == 401
    assert api["rob"].get("/me").json()["role"] == "reviewer"

    lead_decision = api["lena"].post("/decisions", json={"item_id": "req-0020", "label": REFUND})
    assert lead_decision.status_code == 201
    refused = {
        "adjudicate": api["rob"].post("/items/req-0021/adjudication", json={"label": REFUND}),
        "gold": api["rob"].put("/items/req-0021/gold", json={"label": REFUND}),
        "release": api["rob"].post("/releases", json={}),
        "undo another's decision": api["rob"].post(f"/decisions/{lead_decision.json()['decision_id']}/undo"),
        "override a claim": None,
    }
    api["ria"].post("/claims", json={"first": "req-0022"})
    refused["override a claim"] = api["rob"].post("/decisions", json={"item_id": "req-0022", "label": REFUND,
                                                                     "override_claim": "ria is away"})
    for action, response in refused.items():
        assert (action, response.status_code, response.json()["reason"]) == (action, 403, "forbidden")
    assert "needs the lead role" in refused["adjudicate"].json()["message"]

    assert api["lena"].post("/items/req-0021/adjudication", json={"label": REFUND}).status_code == 201
    assert api["lena"].post("/decisions", json={"item_id": "req-0022", "label": REFUND,
                                                "override_claim": "ria is away"}).status_code == 201
    assert api["lena"].post(f"/decisions/{lead_decision.json()['decision_id']}/undo").status_code == 201
    labeled = api["lena"].post("/decisions/batch", json={"decisions": [
        {"item_id": f"req-{i:04d}", "label": "card_linking"} for i in range(23, 30)]})
    assert labeled.json()["decided"] == 7
    made = api["lena"].post("/releases", json={"labels": ["card_linking"], "hooks": False})
    assert made.status_code == 201 and made.json()["examples"] == 7
    version = made.json()["version"]
    assert api["rob"].get(f"/releases/test/{version}/verification").json()["ok"] is True
    assert [r["version"] for r in api["rob"].get("/releases").json()["releases"]] == [version]


def test_a_stale_expect_and_another_reviewers_claim_are_409_naming_the_field(embedded):
    _, _, api = embedded
    claimed = api["rob"].post("/claims", json={"first": "req-0001"}).json()["item"]
    assert (claimed["item_id"], claimed["claimed_by"]) == ("req-0001", "rob")
    held = api["ria"].post("/decisions", json={"item_id": "req-0001", "label": REFUND})
    assert (held.status_code, held.json()["reason"], held.json()["field"]) == (409, "claim_held", "item_id")

    first = api["rob"].post("/decisions", json={"item_id": "req-0001", "label": REFUND, "expect": None})
    assert first.status_code == 201 and first.json()["current_label"] == REFUND
    stale = api["rob"].post("/decisions", json={"item_id": "req-0001", "label": LOST, "expect": None})
    assert (stale.status_code, stale.json()["reason"], stale.json()["field"]) == (409, "stale", "expect")
    fresh = api["rob"].post("/decisions", json={"item_id": "req-0001", "label": LOST,
                                                "expect": first.json()["decision_id"]})
    assert fresh.status_code == 201

    item = api["rob"].get("/items/req-0001").json()
    assert item["item"]["current_label"] == LOST
    assert [h["id"] for h in item["history"] if h["kind"] == "decision:label"] == [
        first.json()["decision_id"], fresh.json()["decision_id"]]
    undone = api["rob"].post(f"/decisions/{fresh.json()['decision_id']}/undo")
    assert undone.status_code == 201 and undone.json()["undoes"] == fresh.json()["decision_id"]
    again = api["rob"].post(f"/decisions/{fresh.json()['decision_id']}/undo").json()
    assert (again["status"], again["reason"], again["field"]) == (422, "rejected", "decision_id")
    similar = api["rob"].get("/items/req-0001/similar", params={"limit": 2}).json()["items"]
    assert {s["item_id"] for s in similar} == {"req-0011", "req-0021"}  # the same text, another number


def test_cursor_pages_cover_every_queued_item_exactly_once(embedded):
    ws, _, api = embedded
    seen, cursor, pages = [], None, 0
    while True:
        page = api["ria"].get("/queue", params={"limit": 4, "sort": "time"} | ({"cursor": cursor} if cursor else {}))
        seen += [row["item_id"] for row in page.json()["items"]]
        cursor, pages = page.json()["next_cursor"], pages + 1
        if cursor is None:
            break
    assert seen == [r["item_id"] for r in queue_page(ws, sort="time", limit=1_000)]
    assert len(seen) == len(set(seen)) and pages == -(-len(seen) // 4)
    other = api["ria"].get("/queue", params={"limit": 4, "sort": "priority", "cursor": cursor or
                                             api["ria"].get("/queue", params={"limit": 4, "sort": "time"})
                                             .json()["next_cursor"]}).json()
    assert (other["status"], other["field"]) == (422, "cursor")


def test_bad_json_and_bad_fields_get_the_one_error_shape_naming_the_field(embedded):
    _, _, api = embedded

    def error(response):
        body = response.json()
        assert set(body) == {"status", "reason", "field", "message"} and body["status"] == response.status_code
        return body["status"], body["reason"], body["field"]

    rob = api["rob"]
    assert error(rob.post("/decisions", content=b"{not json", headers={"content-type": "application/json"})) == \
        (400, "bad_json", "body")
    too_deep = b"[" * 5_000 + b"]" * 5_000  # past the parser's nesting limit
    assert error(rob.post("/decisions", content=too_deep, headers={"content-type": "application/json"})) == \
        (400, "bad_json", "body")
    assert error(rob.get("/no-such-route")) == (404, "not_found", None)
    assert error(rob.post("/decisions", json={"item_id": "req-0002"})) == (422, "missing_field", "label")
    assert error(rob.post("/decisions", json={"item_id": "req-0002", "label": REFUND, "lable": "x"})) == \
        (422, "invalid", "lable")
    assert error(rob.post("/decisions", json=["req-0002", "refund"])) == (422, "invalid", "body")
    assert error(rob.post("/decisions", json={"item_id": "req-0002", "label": "refund_not_showng_up"})) == \
        (422, "invalid_label", "label")
    typo = rob.post("/decisions", json={"item_id": "req-0002", "label": "refund_not_showng_up"}).json()
    assert typo["message"].endswith("(did you mean 'refund_not_showing_up'?)")
    assert error(rob.post("/decisions", json={"item_id": "nope", "label": REFUND})) == (404, "not_found", "item_id")
    assert error(rob.post("/decisions/batch", json={"decisions": [{"item_id": "req-0002", "label": REFUND},
                                                                  {"item_id": "req-0003"}]})) == \
        (422, "missing_field", "decisions[1].label")
    assert error(rob.get("/queue", params={"limit": 0})) == (422, "invalid", "limit")
    assert error(rob.get("/queue", params={"status": "done"})) == (422, "invalid", "status")
    assert error(rob.get("/items/nope")) == (404, "not_found", "item_id")


def test_bodies_over_the_limit_are_refused_announced_or_chunked(embedded):
    _, _, api = embedded
    big = {"decisions": [{"item_id": f"req-{i:04d}", "label": REFUND, "note": "x" * 300} for i in range(80)]}
    answer = api["ada"].post("/decisions/batch", json=big)
    assert (answer.status_code, answer.json()["reason"], answer.json()["field"]) == (413, "body_too_large", "body")

    def chunks():
        for _ in range(30):
            yield b" " * 1000

    assert api["ada"].post("/decisions/batch", content=chunks(),
                           headers={"content-type": "application/json"}).status_code == 413


def test_a_client_over_the_rate_is_told_when_to_come_back_and_others_are_not_slowed(embedded):
    _, _, api = embedded
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: api["flood"].get("/me"), range(120)))
    limited = [a for a in answers if a.status_code == 429]
    assert limited and len(limited) < 120 - 50  # the burst of 60 (less what the clock refilled) went through
    assert limited[0].json()["reason"] == "rate_limited" and int(limited[0].headers["retry-after"]) >= 1
    assert api["ria"].get("/me").status_code == 200


@pytest.fixture(scope="module")
def team(tmp_path_factory, pg_server):
    """A PostgreSQL workspace of 160 queued items and 8 reviewers, served by `feedback serve --workers 2`."""
    import psycopg

    schema = "rest_api"
    with psycopg.connect(pg_server.url("tests"), autocommit=True) as con:
        con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        con.execute(f"CREATE SCHEMA {schema}")
    url = pg_server.url("tests") + f"?options=-csearch_path%3D{schema}"
    ws, tokens = workspace(tmp_path_factory.mktemp("team") / "ws", items=160, store=url,
                           users={"ada": "admin", **{f"r{k}": "reviewer" for k in range(8)}},
                           rate_per_second=1000, rate_burst=1000)
    proc, server = serve([sys.executable, "-m", "feedback", "serve", "--workers", "2", "-w", str(ws.root)], {})
    yield ws, {name: Api(server, token) for name, token in tokens.items()}
    stop(proc)


def test_eight_clients_claiming_and_deciding_on_postgresql_never_decide_an_item_twice(team):
    ws, api = team
    failures, lock = [], threading.Lock()

    def reviewer(name):
        decided = 0
        while True:
            item = api[name].post("/claims", json={}).json()["item"]
            if item is None:
                return decided
            answer = api[name].post("/decisions", json={"item_id": item["item_id"], "label": REFUND,
                                                        "expect": item["last_decision_id"]})
            if answer.status_code != 201:
                with lock:
                    failures.append(answer.json())
            decided += 1

    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(reviewer, [f"r{k}" for k in range(8)]))
    assert failures == [] and sum(counts) == 160 and min(counts) > 0
    per_item = ws.store().rows("SELECT item_id, count(*) AS n FROM decisions GROUP BY item_id")
    assert len(per_item) == 160 and {r["n"] for r in per_item} == {1}
    stale = api["r0"].post("/decisions", json={"item_id": "req-0000", "label": LOST, "expect": None})
    assert (stale.status_code, stale.json()["reason"]) == (409, "stale")
    assert api["r0"].get("/queue/counts").json()["status"] == {"labeled": 160}
