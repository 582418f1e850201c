"""Hostile and odd input: one bad row never costs the good rows of its file, and nothing crashes.

Every case runs on real files, the real SDK and a real HTTP server; each bad row must land in
quarantine with its stable reason and line, and every good row in the store.
"""

import csv
import decimal
import json
from datetime import datetime, timezone

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from feedback import Client, ingest_files, ingest_spool
from feedback.capture import MAX_DEPTH, list_quarantine
from conftest import LABELS, prediction
from test_server import AUTH, server  # noqa: F401  (fixture)

pytestmark = pytest.mark.backends


def nested(depth: int):
    """A value whose objects nest `depth` levels."""
    value = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def deep_json(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def stored_ids(ws) -> set[str]:
    return {r["item_id"] for r in ws.store().rows("SELECT item_id FROM events")}


def quarantined(ws) -> set[tuple]:
    return {(r["reason"], r["line"]) for r in list_quarantine(ws)}


def line(item_id: str, **extra) -> str:
    return json.dumps(prediction(item_id, event_id=item_id, **extra))


def test_jsonl_bad_rows_of_every_shape_cost_only_themselves(ws, tmp_path):
    rows = [
        "\ufeff" + line("good-1"),                                       # 1: a BOM before the first event
        "null",                                                          # 2: not an object
        line("deep-70", meta=nested(70)),                                # 3: parses, deeper than the contract
        line("good-2"),
        '{"type": "prediction", "meta": ' + deep_json(5000) + "}",       # 5: too deep for any parser
        line("good-3", meta={"blob": "x" * (2 << 20)}),                  # 6: 2 MB of meta
        '{"type": "prediction", "item_id": "nan", "input": {"text": "t"}, "prediction": {"label": "card_arrival", "score": NaN}}',
        "",                                                              # 8: blank, neither stored nor quarantined
        line("good-4"),
    ]
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    report = ingest_files(ws, [path])
    assert (report.events, report.quarantined) == (3, 5)
    assert stored_ids(ws) == {"good-1", "good-2", "good-4"}
    assert quarantined(ws) == {("not_an_object", 2), ("too_deep", 3), ("too_deep", 5), ("too_large", 6),
                               ("invalid_value", 7)}
    big = next(r for r in list_quarantine(ws) if r["reason"] == "too_large")
    assert len(big["raw"]) < 100_000 and "characters in all" in big["raw"]  # the quarantine keeps the start


def test_csv_with_a_bom_ragged_rows_a_huge_field_and_one_bad_byte(ws, tmp_path):
    path = tmp_path / "excel.csv"
    with open(path, "w", newline="", encoding="utf-8-sig") as f:  # Excel's "CSV UTF-8": a BOM first
        writer = csv.writer(f)
        writer.writerow(["item_id", "text", "label"])
        writer.writerow(["r1", "card has not come", "card_arrival"])          # line 2
        writer.writerow(["r2", "too", "card_arrival", "extra", "fields"])     # line 3: ragged
        writer.writerow(["r3", "x" * 200_000, "card_arrival"])                # line 4: over max_text_chars
        writer.writerow(["r4", "fine", "card_linking"])                       # line 5
    data = path.read_bytes().replace(b"fine", b"fi\xffne")                   # line 5: one byte that is not UTF-8
    path.write_bytes(data + b'r5,"multi\nline",card_arrival\nr6,ok,card_arrival\nr7,"never closed,card_arrival\n')
    report = ingest_files(ws, [path], default_type="prediction")
    assert stored_ids(ws) == {"r1", "r5", "r6"}
    assert quarantined(ws) == {("ragged_row", 3), ("too_large", 4), ("invalid_utf8", 5), ("invalid_csv", 9)}
    assert report.quarantined == 4


def test_csv_field_beyond_the_csv_parser_limit_is_one_bad_row(ws, tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("item_id,text,label\nr1," + "y" * 70_000_000 + ",card_arrival\nr2,ok,card_arrival\n")
    ingest_files(ws, [path], default_type="prediction")
    assert stored_ids(ws) == {"r2"}
    assert quarantined(ws) == {("too_large", 2)}


def test_parquet_typed_timestamps_go_in_and_binary_or_decimal_meta_is_refused_by_row(ws, tmp_path):
    path = tmp_path / "log.parquet"
    ts = [datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc), datetime(2026, 11, 1, 13, 0, tzinfo=timezone.utc)]
    table = pa.table({
        "type": ["prediction"] * 2, "item_id": ["p1", "p2"], "text": ["a", "b"], "label": ["card_arrival"] * 2,
        "ts": pa.array(ts, pa.timestamp("us", "UTC")),
        "meta.naive_ts": pa.array([datetime(2026, 11, 1, 12, 0)] * 2, pa.timestamp("ms")),
    })
    pq.write_table(table, path)
    assert ingest_files(ws, [path]).events == 2
    rows = ws.store().rows("SELECT item_id, ts, meta FROM events ORDER BY item_id")
    assert rows[0]["ts"] == datetime(2026, 11, 1, 12, 0) and json.loads(rows[0]["meta"]) == {
        "naive_ts": "2026-11-01T12:00:00.000000Z"}

    bad = tmp_path / "typed.parquet"
    pq.write_table(pa.table({
        "type": ["prediction"] * 2, "item_id": ["b1", "b2"], "text": ["a", "b"], "label": ["card_arrival"] * 2,
        "meta.blob": pa.array([b"\x00\x01", None], pa.binary()),
        "meta.amount": pa.array([None, decimal.Decimal("12.50")], pa.decimal128(5, 2)),
    }), bad)
    report = ingest_files(ws, [bad])
    assert report.quarantined == 2
    assert {(r["reason"], r["field"], r["line"]) for r in list_quarantine(ws)} == {
        ("wrong_type", "meta.blob", 1), ("wrong_type", "meta.amount", 2)}


def test_a_truncated_parquet_file_is_one_quarantined_row_not_a_crash(ws, tmp_path):
    path = tmp_path / "cut.parquet"
    pq.write_table(pa.table({"type": ["prediction"], "item_id": ["x"], "text": ["a"], "label": ["card_arrival"]}), path)
    path.write_bytes(path.read_bytes()[:-20])
    report = ingest_files(ws, [path])
    assert (report.events, report.quarantined) == (0, 1)
    assert quarantined(ws) == {("unreadable_file", 1)}


def test_the_sdk_refuses_deep_or_huge_events_without_raising(ws):
    client = Client(ws)
    assert client.capture(prediction("deep-300", meta=nested(300))) is False
    assert client.capture(prediction("deep-5000", meta=nested(5000))) is False
    assert client.capture(prediction("huge", meta={"blob": "x" * (30 << 20)})) is False
    assert client.capture(prediction("ok", meta=nested(MAX_DEPTH - 1))) is True  # the event itself is level 1
    assert client.capture(prediction("one-too-many", meta=nested(MAX_DEPTH))) is False
    ok, detail = client.capture_checked(prediction("deep", meta=nested(5000)))
    assert not ok and detail["reason"] == "too_deep"
    assert client.stats == {"accepted": 1, "rejected": 5, "dropped": 0}
    client.flush()
    assert ingest_spool(ws).events == 1 and stored_ids(ws) == {"ok"}


def test_the_sdk_takes_numpy_values_straight_from_scikit_learn(ws):
    classes = np.array(LABELS)  # model.classes_
    row = np.array([0.7, 0.2, 0.05, 0.05], dtype=np.float32)  # one row of predict_proba
    client = Client(ws)
    assert client.prediction("np-1", text="where is my card", label=classes[row.argmax()], score=row.max(),
                             probs=row, classes=classes, meta={"n": np.int64(3), "flag": np.bool_(True)})
    assert client.prediction("np-2", text="t", label=np.str_("card_linking"), score=np.float64(0.5),
                             probs={np.str_("card_linking"): np.float64(0.5)}, meta={"v": np.array([1, 2])})
    assert client.prediction("np-3", text="t", label="card_arrival", probs=row[:3], classes=classes) is False
    assert client.stats["rejected"] == 1
    client.flush()
    ingest_spool(ws)
    rows = {r["item_id"]: r for r in ws.store().rows("SELECT item_id, pred_label, pred_score, pred_probs, meta FROM events")}
    assert rows["np-1"]["pred_label"] == "card_arrival" and rows["np-1"]["pred_score"] == pytest.approx(0.7)
    assert json.loads(rows["np-1"]["pred_probs"]) == pytest.approx(dict(zip(LABELS, [0.7, 0.2, 0.05, 0.05])))
    assert json.loads(rows["np-1"]["meta"]) == {"n": 3, "flag": True}
    assert json.loads(rows["np-2"]["meta"]) == {"v": [1, 2]} and rows["np-2"]["pred_label"] == "card_linking"


def test_http_rejects_the_deep_event_of_a_batch_and_takes_the_others(server):  # noqa: F811
    ws, url = server
    body = "[" + line("h1") + ', {"type": "prediction", "meta": ' + deep_json(2000) + "}, " + line("h2") + "]"
    answer = httpx.post(f"{url}/v1/events", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 202
    assert [(r["status"], r.get("reason")) for r in answer.json()["results"]] == [
        ("accepted", None), ("rejected", "too_deep"), ("accepted", None)]
    wrapped = '{"events": [' + line("h3") + ", " + deep_json(1500) + "]}"
    answer = httpx.post(f"{url}/v1/events", content=wrapped, headers={**AUTH, "Content-Type": "application/json"})
    assert [r["status"] for r in answer.json()["results"]] == ["accepted", "rejected"]
    alone = httpx.post(f"{url}/v1/events", content=deep_json(1500), headers={**AUTH, "Content-Type": "application/json"})
    assert alone.status_code == 202 and alone.json()["results"][0]["reason"] == "too_deep"


# Every non-blank line of a JSONL file ends up stored or quarantined, exactly once, with its reason.
BAD_LINES = {
    "null": ("null", "not_an_object"),
    "array": ("[1, 2]", "not_an_object"),
    "json": ('{"type": "prediction", ', "invalid_json"),
    "utf8": (b'{"type": "\xff"}', "invalid_utf8"),
    "deep": ('{"type": "prediction", "meta": ' + deep_json(1500) + "}", "too_deep"),
    "nested": (line("{id}", meta=nested(MAX_DEPTH)), "too_deep"),
    "nan": (line("{id}", prediction={"label": "card_arrival", "score": 2.0}), "invalid_value"),
    "field": (line("{id}", extra=1), "unknown_field"),
    "label": (line("{id}", label="not_a_label"), "unknown_label"),
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(["good", "blank", *BAD_LINES]), min_size=1, max_size=30), bom=st.booleans())
def test_every_line_is_stored_or_quarantined_exactly_once(tmp_path_factory, kinds, bom):
    from feedback import init_workspace

    ws = init_workspace(tmp_path_factory.mktemp("ws") / "ws", labels=LABELS)
    lines, good, bad = [], set(), set()
    for number, kind in enumerate(kinds, start=1):
        item = f"item-{number}"
        if kind == "good":
            text, _ = line(item).encode(), good.add(item)
        elif kind == "blank":
            text = b"   "
        else:
            raw, reason = BAD_LINES[kind]
            text = raw if isinstance(raw, bytes) else raw.replace("{id}", item).encode()
            bad.add((reason, number))
        lines.append(text)
    path = ws.root / "mix.jsonl"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + b"\n".join(lines) + b"\n")
    report = ingest_files(ws, [path])
    assert stored_ids(ws) == good
    assert quarantined(ws) == bad
    assert report.events + report.quarantined == sum(k != "blank" for k in kinds)


CSV_ROWS = {  # kind -> (row bytes for item N, reason or None for a good row)
    "good": (b"{id},where is my card,card_arrival", None),
    "ragged": (b"{id},text,card_arrival,one,too many", "ragged_row"),
    "byte": (b"{id},bad \xff byte,card_arrival", "invalid_utf8"),
    "long": (b"{id}," + b"x" * 100_001 + b",card_arrival", "too_large"),
    "label": (b"{id},fine,not_a_label", "unknown_label"),
    "quoted": (b'{id},"a ""quoted"", multi\nline text",card_arrival', None),
}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from([*CSV_ROWS, "blank"]), min_size=1, max_size=25), bom=st.booleans(),
       crlf=st.booleans())
def test_every_csv_row_is_stored_or_quarantined_exactly_once(tmp_path_factory, kinds, bom, crlf):
    from feedback import init_workspace

    ws = init_workspace(tmp_path_factory.mktemp("ws") / "ws", labels=LABELS)
    lines, good, bad, number = [b"item_id,text,label"], set(), set(), 2
    for k, kind in enumerate(kinds):
        item = f"item-{k}"
        row, reason = CSV_ROWS.get(kind, (b"", None))
        lines.append(row.replace(b"{id}", item.encode()))
        if kind == "blank":
            pass
        elif reason is None:
            good.add(item)
        else:
            bad.add((reason, number))
        number += 1 + row.count(b"\n")
    path = ws.root / "mix.csv"
    newline = b"\r\n" if crlf else b"\n"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + newline.join(lines) + newline)
    ingest_files(ws, [path], default_type="prediction")
    assert stored_ids(ws) == good
    assert quarantined(ws) == bad


def test_a_nul_character_is_refused_by_field_and_the_rest_goes_in(ws, tmp_path):
    """No database keeps U+0000 in text (PostgreSQL refuses it): the event names the field, its line is kept."""
    path = tmp_path / "nul.csv"
    path.write_text("type,item_id,text,label\nprediction,a,x\x00y,card_arrival\nprediction,b,C:\\u0000,card_arrival\n")
    jsonl = tmp_path / "nul.jsonl"
    jsonl.write_text(json.dumps(prediction("c", meta={"k\x00": 1})) + "\n" + json.dumps(prediction("d\x00")) + "\n")
    assert ingest_files(ws, [path, jsonl]).events == 1
    assert {(r["reason"], r["field"], r["line"]) for r in list_quarantine(ws)} == {
        ("invalid_value", "input.text", 2), ("invalid_value", "meta", 1), ("invalid_value", "item_id", 2)}
    assert ws.store().value("SELECT input_text FROM events") == "C:\\u0000"  # a backslash, then "u0000"
    assert Client(ws).capture(prediction("e", text="x\x00")) is False
