"""The capture event contract, version 1 (published as `feedback/schema/event-v1.json`).

An event is a JSON object: `type` (prediction, correction, error, or item: an input with
no prediction, such as unlabeled production data or the text of an imported label), `item_id` (or an
`input` it is derived from), optional `event_id`, `ts`, `input`, `prediction`,
`correction`, `error`, `meta` and `schema_version`. `validate` checks one event and
returns its normalised form, or raises `InvalidEvent` with a stable reason code.

Values are JSON values: numpy scalars and arrays (straight from scikit-learn) count as the
numbers, strings and lists they hold, aware datetimes as RFC 3339 text. An event nests at
most `MAX_DEPTH` objects and arrays (the event itself is level 1), checked without recursion,
and its canonical JSON holds at most `max_event_bytes` (`capture.max_event_bytes`).

A normalised event is what the spool holds: the producer's fields plus `event_id`
(generated when absent), `item_id` (derived when absent), `received_at` (capture
time, which the store also uses as `ts` when the producer gave none) and
`content_hash` (a hash of what the producer sent, so a retried event is recognised
and a reused id with other content is not).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import time
from datetime import date, datetime, timezone
from functools import cache
from pathlib import Path
from typing import Callable

from xxhash import xxh3_128_hexdigest

from ..errors import InvalidEvent
from . import structs
from .structs import ENCODER, MAX_ID_CHARS

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).parent / "schema" / "event-v1.json"
TYPES = ("prediction", "correction", "error", "item")
DEFAULT_MAX_TEXT_CHARS = 100_000
DEFAULT_MAX_EVENT_BYTES = 1 << 20
MAX_DEPTH = 64

#: Stable reason codes for rejected events, with what each means.
REASONS = {
    "invalid_json": "the line is not valid JSON",
    "invalid_csv": "the CSV row cannot be parsed (for example a quote that never closes)",
    "ragged_row": "the CSV row has more fields than the header",
    "unreadable_file": "the rest of the file cannot be read (a truncated or corrupt file)",
    "invalid_utf8": "the bytes are not valid UTF-8",
    "not_an_object": "the event is not a JSON object",
    "missing_field": "a required field is absent",
    "wrong_type": "a field has the wrong JSON type",
    "invalid_value": "a field's value is not allowed (empty, out of range, not finite, a NUL character in text)",
    "invalid_time": "a timestamp is not ISO 8601 with a time zone, nor epoch seconds",
    "unknown_field": "a field the contract does not define (is the producer on a newer schema?)",
    "unsupported_schema_version": "the event was written for a schema version this store does not know",
    "too_large": "a text or the whole event exceeds the configured size limit",
    "too_deep": f"objects and arrays nest deeper than {MAX_DEPTH} levels",
    "unknown_label": "a label is not in the workspace's fixed taxonomy",
    "duplicate_event_conflict": "an event with this event_id but different content is already stored",
}

_FIELDS = {
    "schema_version", "event_id", "type", "item_id", "ts", "input",
    "prediction", "correction", "error", "meta",
}
_SECTIONS = {
    "input": {"text": str, "features": dict},
    "prediction": {"label": str, "score": float, "probs": dict, "model": str, "model_version": str},
    "correction": {"label": str, "by": str, "note": str},
    "error": {"kind": str, "message": str},
}
_REQUIRED = {"prediction": ("label",), "correction": ("label",), "error": ("kind",)}
_REQUIRED_TEXTS = {"label", "kind"}
_LONG_TEXTS = {"text", "message", "note"}
_NUMBER = (float, int)
_SCALARS = {str, bool, type(None)}
_BATCH_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]')
_LINE = b'%s,"schema_version":1,"event_id":%s,"received_at":%s,"content_hash":"%s"}\n'
_encode = ENCODER.encode
_ids = {}


def _reseed_ids() -> None:
    _ids.update(prefix=f"{os.urandom(6).hex()}-", counter=itertools.count())


_reseed_ids()
os.register_at_fork(after_in_child=_reseed_ids)


def new_event_id() -> str:
    """A unique event id: a random per-process prefix and a counter (fast, no syscalls)."""
    return _ids["prefix"] + str(next(_ids["counter"]))


def derive_item_id(inp: dict) -> str:
    """An item id from a content hash of the input, for producers that have no request id."""
    return "in-" + hashlib.blake2b(_encode(inp), digest_size=10).hexdigest()


def limits(capture_config: dict) -> dict[str, int]:
    """The size limits of a workspace's `[capture]` settings, as keyword arguments of `validate` and `encoder`."""
    return {"max_text_chars": int(capture_config["max_text_chars"]),
            "max_event_bytes": int(capture_config["max_event_bytes"])}


def validate(event, *, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
             received_at: float | None = None) -> dict:
    """Check one event against the contract; return its normalised form or raise `InvalidEvent`."""
    content, body, event_id = _checked(event, max_text_chars, max_event_bytes)
    content["schema_version"] = SCHEMA_VERSION
    content["event_id"] = event_id
    content["received_at"] = received_at or time.time()
    content["content_hash"] = _content_hash(body)
    return content


def encode(event, *, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
           max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> tuple[str, str, bytes]:
    """Check one event and return (event_id, item_id, spool line): `to_line(validate(event))`, serialised once."""
    return encoder(max_text_chars, max_event_bytes)(event)


@cache
def encoder(max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
            max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> Callable[[object], tuple[str, str, bytes]]:
    """`encode` for one pair of limits, with what it needs bound, since the SDK runs it for every event.

    The compiled model (`structs`) takes the events it can; the rest take `_checked`.
    """
    model, convert, to_json, clock = structs.event_type(max_text_chars), structs.convert, _encode, time.time

    def encode_one(event) -> tuple[str, str, bytes]:
        checked, body = convert(event, model), None
        if checked is not None:
            event_id, checked.event_id = checked.event_id, None  # the id is not content: unset, it is not encoded
            try:
                if checked.item_id is None:
                    checked.item_id = derive_item_id(checked.input)
                body = to_json(checked)
            except UnicodeEncodeError:  # an unpaired surrogate, which `_checked` reports
                pass
            if body is not None and (len(body) > max_event_bytes or _NUL in body or "\x00" in (event_id or "")):
                body = None  # `_checked` reports the size, or a NUL character if it is one (not an escaped "\u0000")
        if body is None:
            content, body, event_id = _checked(event, max_text_chars, max_event_bytes)
            item_id = content["item_id"]
        else:
            item_id, event_id = checked.item_id, event_id or new_event_id()
        return event_id, item_id, _LINE % (body[:-1], to_json(event_id), to_json(clock()), _content_hash(body).encode())

    return encode_one


def _content_hash(body: bytes) -> str:
    """XXH3-128 of the canonical content: cheap, and collisions are out of reach (it only tells retries from conflicts)."""
    return xxh3_128_hexdigest(body)


def _checked(event, max_text_chars: int, max_event_bytes: int) -> tuple[dict, bytes, str]:
    """The producer's content (Nones dropped, item_id derived, ts normalised), its sorted JSON, and the event id."""
    event = plain(event)
    if not isinstance(event, dict):
        raise InvalidEvent("not_an_object", f"expected a JSON object, got {_json_type(event)}")
    if not _FIELDS.issuperset(event):
        name = sorted(event.keys() - _FIELDS)[0]
        raise InvalidEvent("unknown_field", f"is not part of schema v{SCHEMA_VERSION}", name)
    version = event.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
            raise InvalidEvent(
                "unsupported_schema_version",
                f"is {version}; this store reads v{SCHEMA_VERSION}: upgrade feedback-workbench before sending v{version} events",
                "schema_version",
            )
        raise InvalidEvent("invalid_value", f"must be {SCHEMA_VERSION}", "schema_version")
    kind = event.get("type")
    if kind is None:
        raise InvalidEvent("missing_field", f"is required (one of {', '.join(TYPES)})", "type")
    if kind not in TYPES:
        raise InvalidEvent("invalid_value", f"{kind!r} is not one of {', '.join(TYPES)}", "type")
    content = {}
    for key, value in event.items():
        if value is None or key == "event_id" or key == "schema_version":
            continue
        spec = _SECTIONS.get(key)
        if spec is not None:
            value = _check_section(key, value, spec, max_text_chars)
        elif key == "meta" and value.__class__ is not dict:
            raise InvalidEvent("wrong_type", f"must be an object, got {_json_type(value)}", "meta")
        content[key] = value
    if kind == "item":
        carried = sorted(content.keys() & {"prediction", "correction", "error"})
        if carried:
            raise InvalidEvent("invalid_value", "an item event carries only its input; send the prediction, correction "
                                                "or error as an event of that type", carried[0])
    elif kind not in content:
        raise InvalidEvent("missing_field", f"is required for a {kind} event", kind)
    if kind in ("prediction", "item") and "input" not in content:
        raise InvalidEvent("missing_field", f"is required for a {kind} event", "input")
    item_id = content.get("item_id")
    if item_id is None:
        if "input" not in content:
            raise InvalidEvent("missing_field", "is required when the event has no input to derive it from", "item_id")
        content["item_id"] = derive_item_id(content["input"])
    else:
        _check_id(item_id, "item_id")
    event_id = event.get("event_id")
    if event_id is None:
        event_id = new_event_id()
    else:
        _check_id(event_id, "event_id")
    if "ts" in content:
        content["ts"] = _check_time(content["ts"])
    try:
        body = _encode(content)
    except UnicodeEncodeError:
        raise InvalidEvent("invalid_utf8", "contains an unpaired surrogate, which is not valid UTF-8") from None
    if len(body) > max_event_bytes:
        raise InvalidEvent("too_large", f"the event has {len(body):,} bytes of JSON; the limit is {max_event_bytes:,} "
                                        "(capture.max_event_bytes): keep large payloads out of events")
    if _NUL in body:
        _refuse_nul(content, "")
    return content, body, event_id


_NUL = b"\\u0000"  # how JSON writes a NUL character (or a backslash before "u0000": `_refuse_nul` tells them apart)


def _refuse_nul(value, where: str) -> None:
    """Refuse a NUL character (U+0000) in any text or key: a database's text cannot hold it (PostgreSQL refuses it)."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            if "\x00" in str(key):
                raise InvalidEvent("invalid_value", "has a key with a NUL character (U+0000), which text may not hold",
                                   where or None)
            _refuse_nul(item, path)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_nul(item, f"{where}[{i}]")
    elif isinstance(value, str) and "\x00" in value:
        raise InvalidEvent("invalid_value", "contains a NUL character (U+0000), which text may not hold", where or None)


def to_line(normalised: dict) -> bytes:
    """The spool line of a normalised event: compact UTF-8 JSON and a newline."""
    return _encode(normalised) + b"\n"


def plain(value):
    """`value` as plain JSON values, checked level by level (no recursion, so no depth can crash it).

    numpy scalars and arrays become the numbers, strings and lists they hold, tuples lists,
    str subclasses str, datetimes ISO 8601 text. Raises `InvalidEvent` naming the field: `too_deep`
    past `MAX_DEPTH`, `wrong_type` for what JSON cannot hold (bytes, Decimal, sets, ...),
    `invalid_value` for NaN, infinities and integers beyond 64 bits.
    """
    root = [value]
    pending = [(root, 0, "", 1)]  # (container, key or index, dotted path, depth of the value)
    while pending:
        parent, key, where, depth = pending.pop()
        item = _as_json(parent[key], where)
        kind = item.__class__
        if kind is dict or kind is list:
            if depth > MAX_DEPTH:
                raise InvalidEvent("too_deep", f"objects and arrays nest deeper than {MAX_DEPTH} levels", where or None)
            if kind is dict:
                item = {_key(k, where): v for k, v in item.items()}
                pending += [(item, k, f"{where}.{k}" if where else k, depth + 1) for k in item]
            else:
                item = list(item)
                pending += [(item, i, f"{where}[{i}]", depth + 1) for i in range(len(item))]
        parent[key] = item
    return root[0]


def _as_json(value, where: str):
    """One value as a JSON scalar, or a dict or list whose members are still to check."""
    kind = value.__class__
    if kind in _SCALARS or kind is dict or kind is list:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise InvalidEvent("invalid_value", f"must be a finite number, got {value!r}", where or None)
        return value
    if kind is int:
        if not -(2**63) <= value < 2**63:
            raise InvalidEvent("invalid_value", "integers must fit in 64 bits", where or None)
        return value
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":  # numpy scalars and arrays
        return _as_json(value.tolist(), where)
    for base in (bool, int, float, str, dict):  # subclasses, e.g. numpy.float64 or a defaultdict
        if isinstance(value, base):
            return _as_json(base(value), where)
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise InvalidEvent("wrong_type", f"{type(value).__name__} is not a JSON value: send a string, number, "
                                     "boolean, null, object or array", where or None)


def _key(key, where: str) -> str:
    if isinstance(key, str):
        return str(key)
    raise InvalidEvent("wrong_type", f"object keys must be strings, got {type(key).__name__} {key!r}", where or None)


def _check_section(section: str, value, spec: dict, max_text_chars: int) -> dict:
    """Check one section (input, prediction, correction, error); return it without null fields."""
    if not isinstance(value, dict):
        raise InvalidEvent("wrong_type", f"must be an object, got {_json_type(value)}", section)
    for key, item in value.items():
        expected = spec.get(key)
        if expected is None:
            raise InvalidEvent("unknown_field", f"is not part of schema v{SCHEMA_VERSION}", f"{section}.{key}")
        if item is None:
            continue
        if expected is float:
            if not (item.__class__ in _NUMBER and 0.0 <= item <= 1.0):
                _check_probability(item, f"{section}.{key}")
        elif item.__class__ is not expected and not isinstance(item, expected):
            raise InvalidEvent("wrong_type", f"must be {_json_name(expected)}, got {_json_type(item)}", f"{section}.{key}")
        elif expected is str:
            limit = max_text_chars if key in _LONG_TEXTS else MAX_ID_CHARS
            if len(item) > limit or (not item and key in _REQUIRED_TEXTS):
                _check_text(item, f"{section}.{key}", limit)
    for key in _REQUIRED.get(section, ()):
        if value.get(key) is None:
            raise InvalidEvent("missing_field", "is required", f"{section}.{key}")
    if section == "input" and value.get("text") is None and value.get("features") is None:
        raise InvalidEvent("missing_field", "input needs a text or features", "input.text")
    checked = {key: item for key, item in value.items() if item is not None}
    if "probs" in checked:
        for label, p in checked["probs"].items():
            if not (p.__class__ in _NUMBER and 0.0 <= p <= 1.0):
                _check_probability(p, f"{section}.probs.{label}")
        checked["probs"] = {label: float(p) for label, p in checked["probs"].items()}
    if "score" in checked:
        checked["score"] = float(checked["score"])  # scores are floats, as the compiled model keeps them
    return checked


def _check_text(text: str, where: str, limit: int) -> None:
    if not text:
        raise InvalidEvent("invalid_value", "must not be empty", where)
    raise InvalidEvent("too_large", f"has {len(text):,} characters; the limit is {limit:,}", where)


def _check_probability(value, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidEvent("wrong_type", f"must be a number, got {_json_type(value)}", where)
    raise InvalidEvent("invalid_value", f"must be a finite number in [0, 1], got {value!r}", where)


def _check_id(value, where: str) -> None:
    if not isinstance(value, str):
        raise InvalidEvent("wrong_type", f"must be a string, got {_json_type(value)}", where)
    if not value or len(value) > MAX_ID_CHARS:
        raise InvalidEvent("invalid_value", f"must have 1 to {MAX_ID_CHARS} characters", where)
    _refuse_nul(value, where)


def _check_time(value) -> str | float:
    """Epoch seconds as a float, or a time with a zone as RFC 3339 text (as the compiled model writes it)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < structs.MAX_EPOCH:
        return float(value)
    if isinstance(value, str):
        parsed = structs.parse_time(value)
        if parsed is None:  # other ISO 8601 forms, in UTC (a zone may have seconds, RFC 3339's may not)
            try:
                parsed = datetime.fromisoformat(value)
                parsed = parsed.astimezone(timezone.utc) if parsed.tzinfo else None
            except ValueError:
                pass
        if parsed is not None and parsed.tzinfo is not None:
            return _encode(parsed)[1:-1].decode()
    raise InvalidEvent("invalid_time", f"{value!r} is not ISO 8601 with a time zone (e.g. 2026-11-01T12:00:00Z) nor epoch seconds", "ts")


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "array", str: "string", int: "number", float: "number"}.get(type(value), type(value).__name__)


def _json_name(kind: type) -> str:
    return {dict: "an object", str: "a string"}[kind]


def parse_line(raw: bytes):
    """Decode one JSON text (bytes), raising `InvalidEvent` for bad UTF-8, bad JSON, or nesting too deep to parse."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent("invalid_utf8", f"byte {exc.start} is not valid UTF-8") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise InvalidEvent("too_deep", f"objects and arrays nest deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise InvalidEvent("invalid_json", f"{exc.msg} at column {exc.colno}") from None


def parse_batch(body: bytes) -> list:
    """The events of a request body: one event, a JSON array of events, or {"events": [...]}.

    A member that cannot be parsed on its own (nested too deep for any parser) comes back as
    its `InvalidEvent`, so the other members of the batch still go in.
    """
    try:
        payload = parse_line(body)
    except InvalidEvent as exc:
        if exc.reason != "too_deep":
            raise
        members = _batch_members(body)
        return [exc] if members is None else [_parsed_or_error(member) for member in members]
    if isinstance(payload, dict) and "events" in payload:
        payload = payload["events"]
    return payload if isinstance(payload, list) else [payload]


def _parsed_or_error(raw: bytes):
    try:
        return parse_line(raw)
    except InvalidEvent as exc:
        return exc


def _batch_members(body: bytes) -> list[bytes] | None:
    """The raw members of a body's array (top level, or the value of "events"), found without parsing them."""
    depth, start, members, key = 0, None, [], None
    for token in _BATCH_TOKENS.finditer(body):
        t = token.group()
        if t == b"[" or t == b"{":
            depth += 1
            if start is None and t == b"[" and (depth == 1 or (depth == 2 and key == b'"events"')):
                level, start = depth, token.end()
        elif t == b"]" or t == b"}":
            if start is not None and depth == level:
                last = body[start:token.start()]
                return members + [last] if members or last.strip() else []
            depth -= 1
        elif t == b"," and start is not None and depth == level:
            members.append(body[start:token.start()])
            start = token.end()
        elif depth == 1 and start is None and t.startswith(b'"'):
            key = t
    return None
