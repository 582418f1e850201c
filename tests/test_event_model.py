"""The compiled event model agrees with the Python validator, byte for byte, on good and bad events."""

import copy
import json
import math
from datetime import timedelta, timezone
from pathlib import Path

import hypothesis
from hypothesis import example, given, settings, strategies as st

from feedback.capture import contract as events, structs as event_model
from feedback.errors import InvalidEvent

LIMIT = 12  # a small text limit, so that too-long texts are common
SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "events.jsonl"

names = st.text(alphabet="abc_é", max_size=4)
texts = st.text(max_size=LIMIT + 2) | st.sampled_from(["", "x" * (LIMIT + 1), "bad \ud800"])
scalars = (st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=4))
values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(names, kids, max_size=3),
                      max_leaves=6)
probabilities = (st.floats(-0.5, 1.5) | st.integers(-1, 2) | st.sampled_from([math.nan, math.inf, True, "0.5"])
                 | st.none())
zones = st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-3)), None])
times = (st.datetimes(timezones=zones).map(lambda d: d.isoformat()).map(lambda s: s.replace("+00:00", "Z"))
         | st.datetimes(timezones=zones).map(lambda d: d.isoformat(sep=" ", timespec="milliseconds"))
         | st.floats(-1, 3e11) | st.integers(-1, 2**40) | st.sampled_from(["yesterday", "", True, math.nan, 1e300]))
ids = st.text(min_size=0, max_size=6) | st.integers(0, 9) | st.sampled_from(["i" * 201])


def section(required: dict, optional: dict):
    return st.fixed_dictionaries(required, optional={**optional, "bogus": st.integers()}) | values


inputs = section({}, {"text": texts | st.none(), "features": values})
predictions = section({"label": texts}, {"score": probabilities, "probs": st.dictionaries(names, probabilities, max_size=3),
                                         "model": texts, "model_version": texts})
corrections = section({"label": texts}, {"by": texts, "note": texts})
errors = section({"kind": texts}, {"message": texts})
producer_events = st.fixed_dictionaries(
    {"type": st.sampled_from(["prediction", "correction", "error", "item", "other"])},
    optional={"event_id": ids, "item_id": ids, "ts": times, "input": inputs, "prediction": predictions,
              "correction": corrections, "error": errors, "meta": values, "schema_version": st.sampled_from([1, 2, "1"]),
              "extra": st.integers()},
)

flat = st.dictionaries(names, st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=3)
                       | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([-0.0, 1e-7, 1e22, 2**63]),
                       max_size=3)
good = st.text(min_size=1, max_size=LIMIT)
plausible_events = st.fixed_dictionaries(
    {"type": st.just("prediction"), "input": st.fixed_dictionaries({"text": good}, optional={"features": flat}),
     "prediction": st.fixed_dictionaries({"label": good}, optional={
         "score": st.floats(0, 1) | st.integers(0, 1), "probs": st.dictionaries(names, st.floats(0, 1), max_size=3),
         "model": good})},
    optional={"event_id": good, "item_id": good, "ts": times, "meta": flat},
) | st.fixed_dictionaries({"type": st.just("correction"), "item_id": good, "correction": st.fixed_dictionaries(
    {"label": good}, optional={"by": good, "note": st.text(max_size=LIMIT)})}, optional={"ts": times, "meta": flat})


def outcome(call, event):
    """What a path makes of an event: its normalised form without capture time, or the reason it refuses."""
    try:
        normalised = call(copy.deepcopy(event))
    except InvalidEvent as exc:
        return ("refused", exc.reason, exc.field)
    normalised.pop("received_at")
    if "event_id" not in event:
        normalised.pop("event_id")  # generated, so different on each path
    return normalised


def by_encode(event):
    event_id, item_id, line = events.encode(event, max_text_chars=LIMIT)
    stored = json.loads(line)
    assert (stored["event_id"], stored["item_id"]) == (event_id, item_id)
    return stored


def takes_compiled_path(event) -> bool:
    """The compiled model takes the event and can encode it (an unpaired surrogate fails only at encoding, and
    a NUL character shows only in the encoded body)."""
    checked = event_model.convert(copy.deepcopy(event), event_model.event_type(LIMIT))
    try:
        body = checked is not None and event_model.ENCODER.encode(checked)
    except UnicodeEncodeError:
        return False
    return bool(body) and b"\\u0000" not in body


@settings(max_examples=1500, deadline=None)
@given(producer_events | plausible_events)
@example({"type": "error", "item_id": "0", "error": {"kind": "bad \ud800"}})  # refused only when encoding
def test_compiled_path_agrees_with_the_python_validator(event):
    compiled = takes_compiled_path(event)
    hypothesis.event("compiled" if compiled else "python")
    reference = outcome(lambda e: events.validate(e, max_text_chars=LIMIT), event)
    assert outcome(by_encode, event) == reference
    if compiled:  # what the compiled model takes, the validator takes too, with the same content hash
        assert isinstance(reference, dict), reference


def test_sample_events_all_take_the_compiled_path():
    for line in SAMPLE.read_text().splitlines():
        event = json.loads(line)
        assert event_model.convert(event, event_model.event_type(events.DEFAULT_MAX_TEXT_CHARS)) is not None, event
        assert json.loads(events.encode(event)[2])["content_hash"] == events.validate(event)["content_hash"]
