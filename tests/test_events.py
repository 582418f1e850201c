"""The event contract: validation, normalisation, reason codes, and the published JSON Schema."""

import json
import math

import jsonschema
import pytest
from hypothesis import given, settings, strategies as st

from feedback.capture import contract as events
from feedback.errors import InvalidEvent
from conftest import prediction

pytestmark = pytest.mark.backends

SCHEMA = json.loads(events.SCHEMA_PATH.read_text())

EXAMPLES = [
    prediction(event_id="e-1", ts="2026-11-01T12:00:00Z", meta={"user_id": "u1"}),
    {"type": "correction", "item_id": "req-1", "correction": {"label": "card_linking", "by": "u1", "note": "wrong"}},
    {"type": "error", "item_id": "req-2", "input": {"text": "hi"}, "error": {"kind": "timeout", "message": "2 s"}},
    {"type": "prediction", "input": {"features": {"amount": 12.5}}, "prediction": {"label": "refund", "probs": {"refund": 0.7, "other": 0.3}}},
]


def reason_of(event, **kw):
    with pytest.raises(InvalidEvent) as info:
        events.validate(event, **kw)
    return info.value.reason, info.value.field


@pytest.mark.parametrize("event", EXAMPLES)
def test_examples_are_valid_for_validator_and_schema(event):
    jsonschema.validate(event, SCHEMA)
    normalised = events.validate(event)
    assert normalised["type"] == event["type"] and normalised["schema_version"] == 1
    assert normalised["event_id"] and normalised["item_id"] and normalised["content_hash"]


@pytest.mark.parametrize("event, expected", [
    ([1, 2], ("not_an_object", None)),
    ({"item_id": "x", "correction": {"label": "a"}}, ("missing_field", "type")),
    ({"type": "feedback", "item_id": "x"}, ("invalid_value", "type")),
    ({"type": "correction", "item_id": "x"}, ("missing_field", "correction")),
    ({"type": "correction", "item_id": "x", "correction": {}}, ("missing_field", "correction.label")),
    ({"type": "correction", "correction": {"label": "a"}}, ("missing_field", "item_id")),
    ({"type": "prediction", "item_id": "x", "prediction": {"label": "a"}}, ("missing_field", "input")),
    ({"type": "correction", "item_id": 7, "correction": {"label": "a"}}, ("wrong_type", "item_id")),
    ({"type": "correction", "item_id": "x", "correction": "a"}, ("wrong_type", "correction")),
    (prediction(prediction={"label": "a", "score": "0.9"}), ("wrong_type", "prediction.score")),
    (prediction(prediction={"label": "a", "score": True}), ("wrong_type", "prediction.score")),
    (prediction(prediction={"label": "a", "score": math.nan}), ("invalid_value", "prediction.score")),
    (prediction(prediction={"label": "a", "score": 1.5}), ("invalid_value", "prediction.score")),
    (prediction(prediction={"label": "a", "probs": {"a": math.inf}}), ("invalid_value", "prediction.probs.a")),
    (prediction(prediction={"label": ""}), ("invalid_value", "prediction.label")),
    (prediction(meta={"x": math.nan}), ("invalid_value", "meta.x")),
    (prediction(meta=[1]), ("wrong_type", "meta")),
    (prediction(meta={"n": 2**70}), ("invalid_value", "meta.n")),
    (prediction(ts=1e300), ("invalid_time", "ts")),
    (prediction(extra=1), ("unknown_field", "extra")),
    (prediction(prediction={"label": "a", "confidence": 0.2}), ("unknown_field", "prediction.confidence")),
    (prediction(schema_version=2), ("unsupported_schema_version", "schema_version")),
    (prediction(ts="yesterday"), ("invalid_time", "ts")),
    (prediction(ts="2026-11-01T12:00:00"), ("invalid_time", "ts")),
    (prediction(text="x" * 10_000_001), ("too_large", "input.text")),
    (prediction(text="bad \ud800 surrogate"), ("invalid_utf8", None)),
    ({"type": "correction", "item_id": "", "correction": {"label": "a"}}, ("invalid_value", "item_id")),
])
def test_each_bad_event_has_a_stable_reason_and_field(event, expected):
    assert reason_of(event) == expected
    with pytest.raises(InvalidEvent) as info:  # the SDK's compiled path refuses it too, with the same reason
        events.encode(event)
    assert (info.value.reason, info.value.field) == expected
    assert expected[0] in events.REASONS


def test_schema_rejects_what_the_validator_rejects():
    for bad in ({"type": "feedback"}, prediction(extra=1), prediction(schema_version=2), {"type": "correction", "item_id": "x"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SCHEMA)


def test_messages_name_the_field_and_how_to_fix():
    with pytest.raises(InvalidEvent, match=r"field 'schema_version': is 2; this store reads v1: upgrade"):
        events.validate(prediction(schema_version=2))
    with pytest.raises(InvalidEvent, match=r"field 'input.text': has 200,001 characters; the limit is 200,000"):
        events.validate(prediction(text="y" * 200_001), max_text_chars=200_000)


def test_defaults_item_id_from_input_and_time_from_capture():
    a = events.validate({"type": "prediction", "input": {"text": "same"}, "prediction": {"label": "x"}}, received_at=1.5e9)
    b = events.validate({"type": "error", "input": {"text": "same"}, "error": {"kind": "timeout"}})
    assert a["item_id"] == b["item_id"] and a["item_id"].startswith("in-")
    assert "ts" not in a and a["received_at"] == 1.5e9
    assert a["event_id"] != b["event_id"]


@pytest.mark.parametrize("sent, kept", [
    ("2026-11-01T14:00:00+02:00", "2026-11-01T14:00:00+02:00"),
    ("2026-11-01T12:00:00+00:00", "2026-11-01T12:00:00Z"),
    ("2026-11-01 12:00:00.5z", "2026-11-01T12:00:00.500000Z"),
    ("20261101T140000+0200", "2026-11-01T12:00:00Z"),  # ISO 8601 but not RFC 3339: rewritten in UTC
    ("2026-11-01T14:00:00+02:00:30", "2026-11-01T11:59:30Z"),  # an offset with seconds is kept exactly
    (1_700_000_000, 1_700_000_000.0),
])
def test_times_are_normalised_to_rfc3339_or_epoch_seconds(sent, kept):
    assert events.validate(prediction(ts=sent))["ts"] == kept
    assert json.loads(events.encode(prediction(ts=sent))[2])["ts"] == kept


def test_content_hash_ignores_event_id_and_capture_time_but_not_content():
    a = events.validate(prediction(ts=5, event_id="a"))
    b = events.validate(prediction(ts=5, event_id="b"))
    c = events.validate(prediction(ts=5, event_id="a", label="card_linking"))
    assert a["content_hash"] == b["content_hash"] != c["content_hash"]


def test_parse_line_reports_bad_utf8_and_json():
    with pytest.raises(InvalidEvent) as info:
        events.parse_line(b'{"type": "\xff"}')
    assert info.value.reason == "invalid_utf8"
    with pytest.raises(InvalidEvent) as info:
        events.parse_line(b'{"type": ')
    assert info.value.reason == "invalid_json"


characters = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")  # UTF-8 text can hold
texts = st.text(characters, min_size=1, max_size=50)
labels = st.text(alphabet="abcdefghij_", min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(text=texts, label=labels, score=st.floats(0, 1), item=st.text(characters, min_size=1, max_size=20),
       meta=st.dictionaries(st.text(characters, max_size=5),
                            st.integers(-2**63, 2**63 - 1) | st.text(characters, max_size=5), max_size=3))
def test_valid_events_round_trip_through_the_spool_line(text, label, score, item, meta):
    event = {"type": "prediction", "item_id": item, "input": {"text": text},
             "prediction": {"label": label, "score": score}, "meta": meta}
    jsonschema.validate(event, SCHEMA)
    normalised = events.validate(event)
    again = events.parse_line(events.to_line(normalised))
    assert again == normalised
    resent = {k: v for k, v in again.items() if k not in ("received_at", "content_hash")}
    assert events.validate(resent)["content_hash"] == normalised["content_hash"]


def test_the_schema_publishes_the_depth_cap_and_the_validator_holds_it():
    assert SCHEMA["x-max-depth"] == events.MAX_DEPTH
    deep = {"x": 1}
    for _ in range(events.MAX_DEPTH - 2):
        deep = {"x": deep}
    events.validate(prediction(meta=deep))  # the event is level 1, meta level 2: MAX_DEPTH levels in all
    assert reason_of(prediction(meta={"x": deep})) == ("too_deep", "meta" + ".x" * (events.MAX_DEPTH - 1))
