"""Streaming readers of bulk event files: JSONL, CSV and Parquet.

Each yields `Record`s in file order with the physical line (JSONL, CSV; blank lines
counted) or row number (Parquet), so an error points at the right place. Memory stays
bounded whatever the file size. CSV and Parquet columns are mapped to event fields by
dotted path (`input.text`, `prediction.label`, `meta.user_id`, ...); a mapping
`{field: column}` renames columns that are named otherwise.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import orjson
import pyarrow.parquet as pq

from ..errors import FeedbackError, InvalidEvent
from .contract import parse_line

#: Columns understood without a mapping, besides the dotted field paths themselves.
ALIASES = {"text": "input.text", "label": "prediction.label", "score": "prediction.score",
           "model_version": "prediction.model_version", "corrected_label": "correction.label"}
_JSON_FIELDS = {"prediction.probs", "input.features", "meta"}
_NUMBER_FIELDS = {"prediction.score", "ts", "schema_version"}


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
    elif kind in (".csv", ".parquet"):
        rows = _csv_rows(path, on_bytes) if kind == ".csv" else _parquet_rows(path, on_bytes)
        records = _mapped(rows, mapping or {}, from_strings=kind == ".csv")
    else:
        raise FeedbackError(f"{path}: unknown file type {kind!r}; use .jsonl, .csv or .parquet")
    for record in records:
        if default_type and record.event is not None and not record.event.get("type"):
            record.event["type"] = default_type
        yield record


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
            if not raw.strip():
                continue
            text = raw.decode("utf-8", "backslashreplace").rstrip("\r\n")
            try:
                yield Record(number, event=parse_line(raw), raw=text)
            except InvalidEvent as exc:
                yield Record(number, error=exc, raw=text)


def _csv_rows(path: Path, on_bytes) -> Iterator[tuple[int, dict | InvalidEvent, str]]:
    with open(path, "rb") as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        reader = csv.DictReader(text)
        last = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                yield reader.line_num + 1, InvalidEvent("invalid_utf8", f"byte {exc.start} of a block is not valid UTF-8; the rest of the file is unreadable"), ""
                return
            if on_bytes:
                position = binary.tell()
                on_bytes(position - last)
                last = position
            yield reader.line_num, row, json.dumps(row, ensure_ascii=False)


def _parquet_rows(path: Path, on_bytes) -> Iterator[tuple[int, dict, str]]:
    parquet = pq.ParquetFile(path)
    per_row = path.stat().st_size / max(parquet.metadata.num_rows, 1)
    number = 0
    for batch in parquet.iter_batches(batch_size=10_000):
        if on_bytes:
            on_bytes(int(per_row * batch.num_rows))
        for row in batch.to_pylist():
            number += 1
            yield number, row, orjson.dumps(row, default=str).decode()


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
            yield Record(number, event=event, raw=orjson.dumps(event, default=str).decode())


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
    except ValueError:
        if field == "ts":
            return value
        raise InvalidEvent("wrong_type", f"{value!r} is not {'JSON' if field in _JSON_FIELDS else 'a number'}", field) from None
    return value
