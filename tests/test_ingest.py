"""Ingest of spool segments and bulk files into a real DuckDB file: exactly once, bad rows quarantined."""

import csv
import json

import pytest

import pyarrow as pa
import pyarrow.parquet as pq

from feedback import Client, ingest_files, ingest_spool, status
from feedback.capture import dismiss, export_quarantine, list_quarantine, retry_quarantine
from conftest import LABELS, prediction, set_config

pytestmark = pytest.mark.backends


def stored(ws, sql="SELECT count(*) FROM events", params=None):
    return ws.store().value(sql, params)


def quarantined(ws):
    return {(r["reason"], r["field"], r["line"]) for r in list_quarantine(ws)}


def test_spool_events_land_once_with_their_fields(ws):
    client = Client(ws)
    assert client.prediction("req-1", text="where is my card?", label="card_arrival", score=0.8,
                             probs={"card_arrival": 0.8, "card_linking": 0.2}, model="clf", model_version="v2",
                             meta={"user_id": "u7"})
    assert client.correction("req-1", label="card_linking", by="u7", note="not arrived, linking")
    assert client.error("req-2", kind="timeout", message="2 s", text="hello")
    client.flush()
    report = ingest_spool(ws)
    assert (report.events, report.duplicates, report.quarantined, report.sources) == (3, 0, 0, 1)
    rows = ws.store().rows("SELECT * FROM events ORDER BY seq")
    assert [r["type"] for r in rows] == ["prediction", "correction", "error"]
    p, c, e = rows
    assert (p["item_id"], p["input_text"], p["pred_label"], p["pred_score"], p["model_version"]) == (
        "req-1", "where is my card?", "card_arrival", 0.8, "v2")
    assert json.loads(p["pred_probs"]) == {"card_arrival": 0.8, "card_linking": 0.2}
    assert json.loads(p["meta"]) == {"user_id": "u7"}
    assert (c["corr_label"], c["corr_by"], c["corr_note"]) == ("card_linking", "u7", "not arrived, linking")
    assert (e["error_kind"], e["error_message"], e["input_text"]) == ("timeout", "2 s", "hello")
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert not list((ws.path("spool") / "sealed").iterdir())
    assert len(list((ws.path("spool") / "done").iterdir())) == 1
    assert ingest_spool(ws).events == 0


def test_retried_event_is_stored_once_and_reused_id_with_other_content_is_quarantined(ws):
    client = Client(ws)
    for _ in range(3):
        client.capture(prediction(event_id="e-1", ts="2026-11-01T00:00:00Z"))
    client.capture(prediction(event_id="e-1", ts="2026-11-01T00:00:00Z", label="card_linking"))
    client.flush()
    report = ingest_spool(ws)
    assert (report.events, report.duplicates, report.quarantined) == (1, 2, 1)
    client.capture(prediction(event_id="e-1", ts="2026-11-01T00:00:00Z"))
    client.capture(prediction(event_id="e-1", ts="2026-11-01T00:00:00Z", label="lost_or_stolen_card"))
    client.flush()
    report = ingest_spool(ws)
    assert (report.events, report.duplicates, report.quarantined) == (0, 1, 1)
    assert stored(ws) == 1 and stored(ws, "SELECT pred_label FROM events") == "card_arrival"
    rows = list_quarantine(ws)
    assert {(r["reason"], r["field"], r["line"]) for r in rows} == {
        ("duplicate_event_conflict", "event_id", 4), ("duplicate_event_conflict", "event_id", 2)}
    assert all(r["source"].startswith("spool:") and "e-1" in r["raw"] for r in rows)


def test_unknown_label_goes_to_quarantine_with_a_suggestion_and_retry_after_taxonomy_change(ws):
    client = Client(ws)
    client.capture(prediction("req-1", label="card_arival"))
    client.capture({"type": "correction", "item_id": "req-1", "correction": {"label": "brand_new_intent"}})
    client.capture(prediction("req-2"))
    client.flush()
    report = ingest_spool(ws)
    assert (report.events, report.quarantined) == (1, 2)
    rows = {r["field"]: r for r in list_quarantine(ws)}
    assert rows["prediction.label"]["message"] == (
        "field 'prediction.label': 'card_arival' is not in the taxonomy (did you mean 'card_arrival'?)")
    assert rows["prediction.label"]["line"] == 1 and rows["correction.label"]["line"] == 2
    assert retry_quarantine(ws) == {"retried": 2, "ingested": 0, "duplicates": 0, "still_open": 2}
    assert len(list_quarantine(ws)) == 2 and status(ws)["quarantined"] == 2  # nothing new was quarantined
    path = ws.root / "feedback.toml"
    path.write_text(path.read_text().replace('mode = "fixed"', 'mode = "open"'))
    from feedback import Workspace
    reopened = Workspace(ws.root)
    assert retry_quarantine(reopened)["ingested"] == 2
    assert list_quarantine(reopened) == []
    assert len(list_quarantine(reopened, include_resolved=True)) == 2
    assert stored(ws) == 3


def test_bad_rows_of_a_jsonl_file_are_quarantined_with_line_and_the_rest_goes_in(ws, tmp_path):
    lines = [
        json.dumps(prediction("a")),
        "",
        '{"type": "prediction", "item_id": "b", "input": {"text": "x"}, "prediction": {"label": "card_arrival", "score": NaN}}',
        '{"type": "correction", "item_id": 5, "correction": {"label": "card_arrival"}}',
        '{"item_id": "c", "correction": {"label": "card_arrival"}}',
        "not json at all",
        json.dumps(prediction("d", text="t" * 200_001)),
        json.dumps(prediction("e", label="nope")),
        json.dumps(prediction("f")),
    ]
    path = tmp_path / "log.jsonl"
    data = "\n".join(lines).encode() + b'\n{"type": "error", "item_id": "g", "error": {"kind": "\xff"}}\n'
    path.write_bytes(data)
    report = ingest_files(ws, [path])
    assert (report.events, report.quarantined) == (2, 7)
    assert quarantined(ws) == {
        ("invalid_value", "prediction.score", 3), ("wrong_type", "item_id", 4), ("missing_field", "type", 5),
        ("invalid_json", None, 6), ("too_large", "input.text", 7), ("unknown_label", "prediction.label", 8),
        ("invalid_utf8", None, 10),
    }
    assert {r["source"] for r in list_quarantine(ws)} == {f"file:{path.resolve()}"}
    assert sorted(ws.store().rows("SELECT item_id FROM events ORDER BY 1"), key=str) == [{"item_id": "a"}, {"item_id": "f"}]


def test_reingesting_a_file_or_a_copy_stores_nothing_twice(ws, tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(json.dumps(prediction(f"r{i}")) for i in range(10)) + "\nbroken\n")
    assert ingest_files(ws, [path]).events == 10
    again = ingest_files(ws, [path])
    assert again.events == 0 and again.skipped_sources == [str(path)]
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(path.read_bytes())
    assert ingest_files(ws, [copy]).skipped_sources == [str(copy)]
    assert stored(ws) == 10 and status(ws)["quarantined"] == 1


def test_a_partly_ingested_file_resumes_without_duplicates(ws, tmp_path, monkeypatch):
    import feedback.capture.ingest as ingest

    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(json.dumps(prediction(f"r{i}")) for i in range(25)) + "\n")
    monkeypatch.setattr(ingest, "BATCH_ROWS", 10)
    calls = {"n": 0}
    real = ingest._absorb_batch

    def crash_on_third_batch(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(ingest, "_absorb_batch", crash_on_third_batch)
    try:
        ingest_files(ws, [path])
    except KeyboardInterrupt:
        pass
    assert stored(ws) == 20
    monkeypatch.setattr(ingest, "_absorb_batch", real)
    report = ingest_files(ws, [path])
    assert (report.events, report.duplicates) == (5, 20)
    assert stored(ws, "SELECT count(DISTINCT event_id) FROM events") == stored(ws) == 25


def test_csv_with_column_mapping(ws, tmp_path):
    path = tmp_path / "log.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["request", "message", "intent", "confidence", "meta.user_id", "ts"])
        writer.writerow(["r1", "card has not come", "card_arrival", "0.7", "u1", "2026-11-01T10:00:00Z"])
        writer.writerow(["r2", "multi\nline text", "card_linking", "high", "u2", "1762000000"])
        writer.writerow(["r3", "third", "card_linking", "", "", ""])
    mapping = {"item_id": "request", "input.text": "message", "prediction.label": "intent", "prediction.score": "confidence"}
    report = ingest_files(ws, [path], mapping=mapping, default_type="prediction")
    assert (report.events, report.quarantined) == (2, 1)
    assert quarantined(ws) == {("wrong_type", "prediction.score", 3)}  # the row starts on line 3
    rows = ws.store().rows("SELECT item_id, input_text, pred_label, pred_score, meta FROM events ORDER BY item_id")
    assert rows[0] == {"item_id": "r1", "input_text": "card has not come", "pred_label": "card_arrival",
                       "pred_score": 0.7, "meta": '{"user_id":"u1"}'}
    assert rows[1]["pred_score"] is None and rows[1]["meta"] is None


def test_parquet_with_nested_and_dotted_columns(ws, tmp_path):
    path = tmp_path / "log.parquet"
    table = pa.table({
        "type": ["prediction", "prediction", "correction"],
        "item_id": ["p1", "p2", "p1"],
        "input": [{"text": "a"}, {"text": "b"}, None],
        "prediction.label": ["card_arrival", "card_arrival", None],
        "prediction.score": [0.5, 2.0, None],
        "correction.label": [None, None, "card_linking"],
    })
    pq.write_table(table, path)
    report = ingest_files(ws, [path])
    assert (report.events, report.quarantined) == (2, 1)
    assert quarantined(ws) == {("invalid_value", "prediction.score", 2)}


def test_export_fix_and_reingest_resolves_quarantine(ws, tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps(prediction("a", label="card_arivl")) + "\n" + json.dumps(prediction("b")) + "\n")
    ingest_files(ws, [path])
    fix = tmp_path / "fix.jsonl"
    assert export_quarantine(ws, fix) == 1
    fix.write_text(fix.read_text().replace("card_arivl", "card_arrival"))
    assert ingest_files(ws, [fix]).events == 1
    assert list_quarantine(ws) == [] and stored(ws) == 2


def test_dismiss_closes_a_row_by_its_shown_prefix_and_unknown_ids_are_refused(ws, tmp_path, cli):
    import pytest
    from feedback.errors import NotFound

    path = tmp_path / "log.jsonl"
    path.write_text("garbage\n[1]\n")
    ingest_files(ws, [path])
    rows = list_quarantine(ws)
    with pytest.raises(NotFound):
        dismiss(ws, [rows[0]["qid"], "nope"])
    shown = cli("quarantine", "-w", ws.root).output.split()[0]  # the listing shows 12 characters
    assert len(shown) == 12 and cli("quarantine", "-w", ws.root, "--dismiss", shown).output == "Dismissed 1.\n"
    assert len(list_quarantine(ws)) == 1
    assert status(ws)["quarantined"] == 1 and status(ws)["quarantine_resolved"] == 1
    with pytest.raises(NotFound):
        dismiss(ws, [shown])  # already closed


def test_a_fix_that_is_still_bad_leaves_one_open_row_for_the_event(ws, tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps(prediction("a", event_id="ev-a", label="card_arivl")) + "\n")
    ingest_files(ws, [path])
    fix = tmp_path / "fix.jsonl"
    export_quarantine(ws, fix)
    fix.write_text(fix.read_text().replace("card_arivl", "card_arrivl"))  # still a typo
    ingest_files(ws, [fix])
    (row,) = list_quarantine(ws)
    assert row["source"] == f"file:{fix.resolve()}" and "card_arrivl" in row["message"]
    assert len(list_quarantine(ws, include_resolved=True)) == 2 and status(ws)["quarantined"] == 1


def test_a_segment_with_a_torn_last_line_is_ingested_line_by_line(ws):
    client = Client(ws)
    for i in range(5):
        client.capture(prediction(f"r{i}"))
    client.flush()
    (segment,) = (ws.path("spool") / "sealed").iterdir()
    with open(segment, "ab") as f:
        f.write(b'{"type": "predic')
    report = ingest_spool(ws)
    assert (report.events, report.quarantined) == (5, 1)
    assert quarantined(ws) == {("invalid_json", None, 6)}


def test_groups_are_read_ahead_and_stored_in_order_a_torn_segment_among_them(ws, monkeypatch):
    monkeypatch.setattr("feedback.capture.ingest.GROUP_BYTES", 1)  # a group per segment: the next read ahead
    for segment in range(4):
        client = Client(ws)
        for i in range(3):
            client.capture(prediction(f"s{segment}-r{i}"))
        client.flush()
    sealed = sorted((ws.path("spool") / "sealed").iterdir())
    assert len(sealed) == 4
    with open(sealed[2], "ab") as f:
        f.write(b'{"type": "predic')
    report = ingest_spool(ws)
    assert (report.events, report.quarantined, report.sources) == (12, 1, 4)
    rows = ws.store().rows("SELECT item_id, source FROM events ORDER BY seq")
    assert [r["item_id"] for r in rows] == [f"s{s}-r{i}" for s in range(4) for i in range(3)]
    assert [r["source"] for r in rows] == [f"spool:{p.name}" for p in sealed for _ in range(3)]
    assert not list((ws.path("spool") / "sealed").iterdir())


def test_open_taxonomy_accepts_any_label(open_ws):
    client = Client(open_ws)
    client.capture(prediction(label="anything_goes"))
    client.flush()
    assert ingest_spool(open_ws).events == 1
    assert set(status(open_ws)["labels"]) == {"anything_goes"}


def test_status_reports_counts_backlog_and_quarantine(ws):
    client = Client(ws)
    client.capture(prediction("a"))
    client.capture(prediction("b", label="zzz"))
    client.flush()
    client.capture(prediction("c"))
    assert status(ws)["spool_pending"] == 3
    ingest_spool(ws)
    client.flush()
    s = status(ws)
    assert (s["events"], s["by_type"], s["quarantined"], s["spool_pending"]) == (1, {"prediction": 1}, 1, 1)
    assert s["by_model_version"] == {"v1": 1}
    assert set(s["labels"]) == set(LABELS) and s["labels"]["card_arrival"]["predicted"] == 1
    set_config(ws, "segment_max_bytes", 10)


def test_ingest_brings_the_derived_item_state_up_to_date_so_readers_find_nothing_to_do(ws, tmp_path):
    client = Client(ws)
    client.prediction("req-1", text="where is my card?", label="card_arrival", score=0.2)
    client.correction("req-1", label="card_linking")
    client.flush()
    ingest_spool(ws)
    mark = "SELECT max(value) FROM state_marks WHERE name = 'items'"
    assert stored(ws, mark) == stored(ws, "SELECT max(seq) FROM events") == 2
    assert ws.store().rows("SELECT item_id, pred_label, corr_label, reasons FROM items") == [
        {"item_id": "req-1", "pred_label": "card_arrival", "corr_label": "card_linking",
         "reasons": ["correction"]}]
    path = tmp_path / "more.jsonl"
    path.write_text(json.dumps(prediction("req-2")) + "\n")
    ingest_files(ws, [path])
    assert stored(ws, mark) == 3 and stored(ws, "SELECT count(*) FROM items") == 2
