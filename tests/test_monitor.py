"""Drift and novelty against the latest release, and data checks with exit codes and JUnit reports."""

import csv
import json
import random
from xml.etree import ElementTree

import pytest

from feedback import ingest_files
from feedback.monitor import check_release_folder, check_workspace, drift, junit_xml
from feedback.release import create_release
from feedback.review import import_labels, item
from conftest import LABELS, configure

pytestmark = pytest.mark.backends

PHRASES = {"card_arrival": "where is my new card {n}", "card_linking": "how do i link card number {n}",
           "refund_not_showing_up": "my refund {n} is not in my account", "lost_or_stolen_card": "i lost my card {n}"}


def released(ws, tmp_path):
    """A release of 400 examples, 100 per label."""
    path = tmp_path / "seed.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["item_id", "text", "label"])
        writer.writerows((f"s{k}-{n}", PHRASES[label].format(n=n), label) for k, label in enumerate(LABELS) for n in range(100))
    import_labels(ws, [path])
    create_release(ws)
    return ws


def production(ws, tmp_path, mix: dict[str, float], *, n=400, day="2026-11-20", new_term=None, seed=0):
    rng = random.Random(seed)
    events = []
    for k in range(n):
        label = rng.choices(list(mix), weights=list(mix.values()))[0]
        text = PHRASES[label].format(n=rng.randrange(1000))
        if new_term and k % 4 == 0:
            text = f"{text} {new_term}"
        events.append({"type": "prediction", "item_id": f"{day}-{k}", "ts": f"{day}T{k % 24:02d}:00:00Z",
                       "input": {"text": text},
                       "prediction": {"label": label, "score": rng.uniform(0.6, 1.0), "model_version": "v1"}})
    path = tmp_path / f"prod-{day}.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    ingest_files(ws, [path])


def test_same_distribution_passes_and_a_shift_with_a_new_term_fails_with_the_term_first(ws, tmp_path, cli):
    released(ws, tmp_path)
    even = dict.fromkeys(LABELS, 1.0)
    production(ws, tmp_path, even, day="2026-11-01")
    production(ws, tmp_path, even, day="2026-11-20", seed=1)
    calm = drift(ws, since=None)
    assert {c["name"]: c["status"] for c in calm["checks"]} == {
        "label mix": "pass", "label distance": "pass", "confidence": "pass", "error rate": "pass",
        "correction rate": "pass", "novel vocabulary": "pass"}
    assert cli("drift", "-w", ws.root).exit_code == 0

    production(ws, tmp_path, {"card_arrival": 8.0, "card_linking": 1.0, "refund_not_showing_up": 0.5,
                              "lost_or_stolen_card": 0.5}, day="2026-11-28", new_term="zorbapay", seed=2)
    configure(ws, "drift", window_days=3, max_novel_terms=0)
    shifted = drift(ws.__class__(ws.root), queue=1)
    status = {c["name"]: c["status"] for c in shifted["checks"]}
    assert status["label mix"] == "fail" and status["novel vocabulary"] == "fail"
    first = shifted["novel_terms"][0]
    assert (first["term"], first["release"], len(first["examples"])) == ("zorbapay", 0, 3)
    assert shifted["label_mix"][0]["by_label"][0]["label"] == "card_arrival"  # the label that moved most
    assert shifted["queued"] == 3 and "novelty" in item(ws, first["examples"][0])["reasons"]
    failed = cli("drift", "-w", ws.root)
    assert failed.exit_code == 1 and "FAIL  novel vocabulary" in failed.output and "'zorbapay'" in failed.output


def test_check_a_workspace_exit_codes_and_junit_parsed_back(ws, tmp_path, cli):
    released(ws, tmp_path)
    report = tmp_path / "checks.xml"
    clean = cli("check", ws.root, "--junit", report)
    assert clean.exit_code == 0, clean.output
    suite = ElementTree.parse(report).getroot()
    assert suite.tag == "testsuite" and suite.get("failures") == "0"
    names = [case.get("name") for case in suite]
    assert "quarantine" in names and "gate conflicts" in names and "drift label mix" in names

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type": "prediction", "item_id": "x"}\nnot json\n')
    ingest_files(ws, [bad])
    broken = cli("check", ws.root, "--junit", report, "--json")
    assert broken.exit_code == 1
    assert next(c for c in json.loads(broken.output) if c["name"] == "quarantine")["message"].startswith(
        "2 events quarantined since the last check")
    failures = [case for case in ElementTree.parse(report).getroot() if case.find("failure") is not None]
    assert [case.get("name") for case in failures] == ["quarantine"]
    assert cli("check", ws.root).exit_code == 0  # nothing new since the last check


def test_a_release_folder_is_checked_without_a_workspace(ws, tmp_path, cli, monkeypatch):
    released(ws, tmp_path)
    folder = ws.path("releases") / ws.dataset / "v1"
    copy = tmp_path / "elsewhere" / "v1"
    import shutil
    shutil.copytree(folder, copy)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FEEDBACK_WORKSPACE", raising=False)
    results = check_release_folder(copy)
    assert {r["name"]: r["status"] for r in results} == {
        "verify": "pass", "schema": "pass", "labels": "pass", "leakage": "pass", "duplicates across splits": "pass"}
    assert cli("check", copy).exit_code == 0
    for path in copy.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    (copy / "data" / next(p.name for p in (copy / "data").iterdir())).write_bytes(b"not parquet")
    tampered = cli("check", copy, "--json")
    assert tampered.exit_code == 1 and json.loads(tampered.output)[0]["status"] == "fail"
    xml = junit_xml(check_release_folder(copy), suite="release")
    assert ElementTree.fromstring(xml).get("failures") == "1"


def test_without_a_release_drift_says_so(ws):
    report = drift(ws)
    assert [c["status"] for c in report["checks"]] == ["skip"]
    assert [c["status"] for c in check_workspace(ws) if c["group"] == "drift"] == ["skip"]


@pytest.fixture
def receiver():
    """A real local HTTP server that answers 500 to the first POST and 200 after, keeping what it got."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    got = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append({"body": body, "signature": self.headers.get("X-Feedback-Signature"),
                        "event": self.headers.get("X-Feedback-Event")})
            self.send_response(500 if len(got) == 1 else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()
    server.server_close()


def test_a_release_fires_its_command_and_a_signed_webhook_retried_after_a_500(ws, tmp_path, receiver, monkeypatch, cli):
    from feedback.hooks import hook_log, signature

    url, got = receiver
    seen = tmp_path / "seen.env"
    configure(ws, "hooks", on_release=f"env | grep ^FEEDBACK_RELEASE > {seen}", webhooks=[url])
    monkeypatch.setenv("FEEDBACK_WEBHOOK_SECRET", "s3cret")
    made = create_release(released_items(ws.__class__(ws.root), tmp_path))
    assert [(h["hook"], h["attempt"], h["status"]) for h in made["hooks"]] == [
        ("command", 1, "ok"), ("webhook", 1, "failed"), ("webhook", 2, "ok")]
    env = dict(line.split("=", 1) for line in seen.read_text().splitlines())
    assert env["FEEDBACK_RELEASE_VERSION"] == "v1" and env["FEEDBACK_RELEASE_ID"] == made["release_id"]
    assert env["FEEDBACK_RELEASE_PATH"].endswith("/v1")
    assert len(got) == 2 and got[1]["event"] == "release"
    assert got[1]["signature"] == signature(got[1]["body"], "s3cret")
    assert json.loads(got[1]["body"])["release_id"] == made["release_id"]
    assert [r["status"] for r in hook_log(ws)] == ["ok", "failed", "ok"]
    assert "webhook  #2 ok" in cli("hooks", "--log", "-w", ws.root).output


def test_a_failing_hook_never_undoes_the_release(ws, tmp_path):
    from feedback.release import list_releases

    configure(ws, "hooks", on_release="exit 3", webhooks=["http://127.0.0.1:9/nothing"], attempts=2)
    made = create_release(released_items(ws.__class__(ws.root), tmp_path))
    assert [h["status"] for h in made["hooks"]] == ["failed", "failed", "failed"] and made["hooks"][0]["detail"] == "exit 3"
    assert [r["version"] for r in list_releases(ws)] == ["v1"]


def released_items(ws, tmp_path):
    """The workspace with labels imported, no release yet."""
    path = tmp_path / "items.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["item_id", "text", "label"])
        writer.writerows((f"i{k}-{n}", PHRASES[label].format(n=n), label) for k, label in enumerate(LABELS)
                         for n in range(10))
    import_labels(ws, [path])
    return ws
