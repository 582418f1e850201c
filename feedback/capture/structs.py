"""The v1 event contract as msgspec Structs: the compiled fast path of `contract.encode`.

`convert` checks a producer's event in C into a Struct, which `ENCODER` writes as exactly
the content that the Python validator (`contract.validate`) would. It accepts a subset of the contract
(for example only flat `meta` and `input.features` values); whatever it does not
accept returns None and takes the Python path, which either accepts the event or
names the reason. Fields are declared in alphabetical order, so the encoder
(`ENCODER`, dict keys sorted) writes sorted keys throughout.
"""

import sys
from datetime import datetime
from functools import cache
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

MAX_ID_CHARS = 200
ENCODER = msgspec.json.Encoder(order="deterministic")

Probability = Annotated[float, Meta(ge=0.0, le=1.0)]  # the bounds also refuse NaN
Finite = Annotated[float, Meta(ge=-sys.float_info.max, le=sys.float_info.max)]  # no NaN or infinity
Int64 = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]  # what the store keeps exactly
Scalar = str | Int64 | Finite | bool | None
Flat = dict[str, Scalar | list[Scalar]]
Id = Annotated[str, Meta(min_length=1, max_length=MAX_ID_CHARS)]
Short = Annotated[str, Meta(max_length=MAX_ID_CHARS)]
MAX_EPOCH = 253402300800.0  # 10000-01-01: later times do not fit a timestamp
Epoch = Annotated[float, Meta(ge=0.0, lt=MAX_EPOCH)]
Time = Annotated[datetime, Meta(tz=True)]  # RFC 3339 with a zone, encoded back as RFC 3339


@cache
def event_type(max_text_chars: int) -> type:
    """The Event Struct for a workspace's text limit."""
    Long = Annotated[str, Meta(max_length=max_text_chars)]

    class Section(Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
        pass

    class Input(Section):
        features: Flat | None = None
        text: Long | None = None

    class Prediction(Section):
        label: Id
        model: Short | None = None
        model_version: Short | None = None
        probs: dict[str, Probability] | None = None
        score: Probability | None = None

    class Correction(Section, kw_only=True):
        by: Short | None = None
        label: Id
        note: Long | None = None

    class Error(Section):
        kind: Id
        message: Long | None = None

    class Event(Section, kw_only=True):
        correction: Correction | None = None
        error: Error | None = None
        event_id: Id | None = None
        input: Input | None = None
        item_id: Id | None = None
        meta: Flat | None = None
        prediction: Prediction | None = None
        schema_version: Literal[1] = 1
        ts: Time | Epoch | None = None
        type: Literal["prediction", "correction", "error", "item"]

    return Event


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 time with a zone, parsed as the Structs parse it, or None."""
    try:
        return msgspec.convert(text, Time)
    except msgspec.ValidationError:
        return None


def convert(event, model: type):
    """The event as a `model` Struct (from `event_type`), or None when the Python validator must decide."""
    try:
        checked = msgspec.convert(event, model)
    except msgspec.ValidationError:
        return None
    inp, kind = checked.input, checked.type
    sections = (checked.prediction, checked.correction, checked.error)
    if (any(sections) if kind == "item" else getattr(checked, kind) is None):
        return None
    if inp is not None and inp.text is None and inp.features is None:
        return None
    if inp is None and (kind in ("prediction", "item") or checked.item_id is None):
        return None
    return checked
