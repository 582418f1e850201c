"""Streaming readers of bulk event files: JSONL, CSV and Parquet.

Each yields `Record`s in file order with the physical line (JSONL, CSV; blank lines
counted; a CSV row spanning lines has its first) or row number (Parquet), so an error points
at the right place. Memory stays bounded whatever the file size. A bad row is a `Record`
with its error, never an exception, so the rest of the file still goes in: invalid UTF-8 or
JSON in one line, a CSV row with more fields than the header or a quote that never closes,
a Parquet file cut short. A UTF-8 byte order mark (as Excel writes) is read as what it is.

CSV and Parquet columns are mapped to event fields by dotted path (`input.text`,
`prediction.label`, `meta.user_id`, ...); a mapping `{field: column}` renames columns that
are named otherwise. Typed Parquet timestamps become ISO 8601 text (UTC when the column has no
zone).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import FeedbackError, InvalidEvent
from .contract import parse_line

#: Columns understood without a mapping, besides the dotted field paths themselves.
ALIASES = {"text": "input.text", "label": "prediction.label", "score": "prediction.score",
           "model_version": "prediction.model_version", "corrected_label": "correction.label"}
_JSON_FIELDS = {"prediction.probs", "input.features", "meta"}
_NUMBER_FIELDS = {"prediction.score", "ts", "schema_version"}
_BOM = b"\xef\xbb\xbf"
_CSV_FIELD_LIMIT = 64 << 20  # a longer field is a row's error (too_large), not the file's
_RAW_LIMIT = 64 << 10  # characters of a bad row kept for the quarantine


@dataclass
class Record:
    line: int
    event: dict | None = None
    error: InvalidEvent | None = None
    raw: str = ""


def read_records(path: str | Path, *, mapping: dict | None = None, default_type: str | None = None,
                 on_bytes: Callable[[int], None] | None = None) -> Iterator[Record]:
    """Records of a JSONL (.jsonl, .ndjson, .json), CSV (.csv) or Parquet (.parquet) file."""
    path = Path(path)
    kind = path.suffix.lower()
    if kind in (".jsonl", ".ndjson", ".json"):
        records = _jsonl(path, on_bytes)
    else:
        records = _mapped(read_rows(path, on_bytes=on_bytes), mapping or {}, from_strings=kind == ".csv")
    for record in records:
        if default_type and isinstance(record.event, dict) and not record.event.get("type"):
            record.event["type"] = default_type
        yield record


def read_rows(path: str | Path, *, on_bytes: Callable[[int], None] | None = None
              ) -> Iterator[tuple[int, dict | InvalidEvent, str]]:
    """Plain rows of a JSONL, CSV or Parquet file, as (line or row number, {column: value} or the row's error, text)."""
    path = Path(path)
    kind = path.suffix.lower()
    if kind in (".jsonl", ".ndjson", ".json"):
        for record in _jsonl(path, on_bytes):
            row = record.error or record.event
            if not isinstance(row, (dict, InvalidEvent)):
                row = InvalidEvent("not_an_object", "expected a JSON object with one row's columns")
            yield record.line, row, record.raw
    elif kind == ".csv":
        yield from _csv_rows(path, on_bytes)
    elif kind == ".parquet":
        yield from _parquet_rows(path, on_bytes)
    else:
        raise FeedbackError(f"{path}: unknown file type {kind!r}; use .jsonl, .csv or .parquet")


def write_jsonl(path: str | Path, objects) -> int:
    """Write objects as JSON lines; return how many."""
    count = 0
    with open(path, "wb") as f:
        for obj in objects:
            f.write(orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE))
            count += 1
    return count


def _jsonl(path: Path, on_bytes) -> Iterator[Record]:
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if on_bytes:
                on_bytes(len(raw))
            if number == 1:
                raw = raw.removeprefix(_BOM)
            if not raw.strip():
                continue
            text = _shown(raw.decode("utf-8", "backslashreplace").rstrip("\r\n"))
            try:
                yield Record(number, event=parse_line(raw), raw=text)
            except InvalidEvent as exc:
                yield Record(number, error=exc, raw=text)


def _csv_rows(path: Path, on_bytes) -> Iterator[tuple[int, dict | InvalidEvent, str]]:
    """Rows as {column: text}, or the row's error: a row that breaks the CSV grammar costs only itself."""
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    lines = _Lines(path, on_bytes)
    header = next(csv.reader(lines, strict=True), None)
    while header is not None:
        reader = csv.reader(lines, strict=True)  # a fresh parser after a row it could not read
        first = lines.number + 1
        try:
            for fields in reader:
                if fields:
                    yield first, *_csv_row(header, fields)
                first = lines.number + 1
            return
        except csv.Error as exc:
            reason = "too_large" if "field larger" in str(exc) else "invalid_csv"
            yield first, InvalidEvent(reason, f"lines {first}-{lines.number} cannot be read as CSV ({exc})"), ""


def _csv_row(header: list[str], fields: list[str]) -> tuple[dict | InvalidEvent, str]:
    raw = _shown(",".join(fields).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))
    if len(fields) > len(header):
        return InvalidEvent("ragged_row", f"has {len(fields)} fields; the header has {len(header)}"), raw
    if any(_has_surrogate(f) for f in fields):
        return InvalidEvent("invalid_utf8", "holds bytes that are not valid UTF-8"), raw
    row = dict(zip(header, fields))
    return row, json.dumps(row, ensure_ascii=False)


class _Lines:
    """A file's physical lines as text, counted; bytes that are not UTF-8 stay as surrogates, to be found later."""

    def __init__(self, path: Path, on_bytes):
        self.number = 0
        self._lines = self._read(path, on_bytes)

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.number += 1
        return line

    @staticmethod
    def _read(path: Path, on_bytes) -> Iterator[str]:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if on_bytes:
                    on_bytes(len(raw))
                yield (raw.removeprefix(_BOM) if number == 1 else raw).decode("utf-8", "surrogateescape")


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and any("\udc80" <= c <= "\udcff" for c in text)


def _parquet_rows(path: Path, on_bytes) -> Iterator[tuple[int, dict | InvalidEvent, str]]:
    number = 0
    try:
        parquet = pq.ParquetFile(path)
        per_row = path.stat().st_size / max(parquet.metadata.num_rows, 1)
        for batch in parquet.iter_batches(batch_size=10_000):
            if on_bytes:
                on_bytes(int(per_row * batch.num_rows))
            for row in _timestamps_as_text(batch).to_pylist():
                number += 1
                yield number, row, _shown(orjson.dumps(row, default=str).decode())
    except (pa.ArrowException, OSError) as exc:
        yield number + 1, InvalidEvent("unreadable_file", f"rows from {number + 1} on cannot be read ({exc})"), ""


def _timestamps_as_text(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Typed timestamp columns as RFC 3339 text in UTC, as the contract takes times (a column with no zone is UTC)."""
    columns = [pc.strftime(c.cast(pa.timestamp("us", "UTC"), safe=False), format="%Y-%m-%dT%H:%M:%SZ")
               if pa.types.is_timestamp(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _shown(text: str) -> str:
    """A bad row's text as the quarantine keeps it: whole, or its start when it is huge."""
    return text if len(text) <= _RAW_LIMIT else text[:_RAW_LIMIT] + f"... ({len(text):,} characters in all)"


def _mapped(rows, mapping: dict, *, from_strings: bool) -> Iterator[Record]:
    column_to_field = {column: field for field, column in mapping.items()}
    for number, row, raw in rows:
        if isinstance(row, InvalidEvent):
            yield Record(number, error=row, raw=raw)
            continue
        try:
            event = _row_to_event(row, column_to_field, from_strings)
        except InvalidEvent as exc:
            yield Record(number, error=exc, raw=raw)
        else:
            yield Record(number, event=event, raw=_event_text(event, raw))


def _event_text(event: dict, row_text: str) -> str:
    """The event as one JSON line for the quarantine (to fix and ingest again), else the row's own text."""
    try:
        return _shown(orjson.dumps(event, default=str).decode())
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: too deep for the contract anyway
        return row_text


def _row_to_event(row: dict, column_to_field: dict, from_strings: bool) -> dict:
    event: dict = {}
    for column, value in row.items():
        field = column_to_field.get(column) or ALIASES.get(column, column)
        if value is None or (from_strings and value == ""):
            continue
        if from_strings:
            value = _from_string(field, value)
        head, _, rest = field.partition(".")
        if rest:
            section = event.setdefault(head, {})
            if not isinstance(section, dict):
                raise InvalidEvent("wrong_type", f"column {column!r} sets {field} but {head} is not an object", field)
            section[rest] = value
        else:
            event[head] = value
    return event


def _from_string(field: str, value: str):
    try:
        if field in _JSON_FIELDS:
            return json.loads(value)
        if field in _NUMBER_FIELDS:
            return float(value) if field != "schema_version" else int(value)
    except RecursionError:
        raise InvalidEvent("too_deep", "objects and arrays nest too deep to read", field) from None
    except ValueError:
        if field == "ts":
            return value
        raise InvalidEvent("wrong_type", f"{value!r} is not {'JSON' if field in _JSON_FIELDS else 'a number'}", field) from None
    return value
