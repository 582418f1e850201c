"""Labels in and out in the formats of the annotation tools a team may already use: Label Studio and Argilla.

`read_label_rows` gives `import_labels` the rows of any file it takes, the format found from the
content, not the name:
- a Label Studio JSON export (an array of tasks): a task's `data` are its columns (`text`, and
  `item_id`, `split` when it has them) and its annotation's choice is its label;
- a Label Studio JSON_MIN export, or any JSON array of flat rows: each object is a row (the label
  is the column named after the labeling config's control, e.g. `--map label=intent`);
- an Argilla v2 dataset as Hugging Face exports it (Parquet or JSONL with `<question>.responses`
  columns): a record's columns, its `id` as `item_id`, and its submitted responses as the label;
- any other JSONL, CSV or Parquet file: its rows as they are.
A label is what people answered, never a suggestion or a prediction (a model's). The answer to each
question goes in the column named after it, and in `label` when the task has one question. A task
whose annotators disagree, or that no one answered, is that row's error, named like any bad row
(its answers and who gave them), so it goes to quarantine and the rest go in.

`label_studio_tasks` and `label_studio_config` go the other way: a release's examples as tasks that a
Label Studio project with that labeling config imports, the labels as annotations or predictions.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import Callable, Iterable, Iterator
from xml.sax.saxutils import quoteattr

import orjson

from ..capture.readers import read_rows
from ..errors import InvalidEvent

RESPONSES = ".responses"
_MIN_META = {"annotator", "annotation_id", "created_at", "updated_at", "lead_time"}  # of a JSON_MIN row
_SUBMITTED = (None, "submitted")  # not "draft" nor "discarded"
TEXT_TAG = "text"
#: A name for the labeling config's Choices control and the column of its answer.
LABEL_CONTROL = "label"

Row = tuple[int, "dict | InvalidEvent", str]


def read_label_rows(path: str | Path, *, on_bytes: Callable[[int], None] | None = None) -> Iterator[Row]:
    """Rows of a labeled file as (row number, {column: value} or the row's error, text), whatever its tool."""
    path = Path(path)
    if path.suffix.lower() == ".json" and _first_byte(path) == b"[":
        yield from _json_array(path, on_bytes)
        return
    rows = read_rows(path, on_bytes=on_bytes)
    first = next(rows, None)
    if first is None:
        return
    argilla = isinstance(first[1], dict) and any(c.endswith(RESPONSES) for c in first[1])
    for number, row, raw in chain([first], rows):
        yield number, _argilla_row(row) if argilla and isinstance(row, dict) else row, raw


def label_studio_config(labels: Iterable[str]) -> str:
    """A Label Studio labeling config for single-label text classification over these labels."""
    choices = "\n".join(f"    <Choice value={quoteattr(label)}/>" for label in labels)
    return (f'<View>\n  <Text name="{TEXT_TAG}" value="$text"/>\n'
            f'  <Choices name="{LABEL_CONTROL}" toName="{TEXT_TAG}" choice="single" showInline="false">\n'
            f"{choices}\n  </Choices>\n</View>\n")


def label_studio_tasks(examples: Iterable[dict], *, as_predictions: bool = False, model_version: str = "") -> list[dict]:
    """Label Studio tasks of examples ({item_id, text, label, split, ...}): each one's columns as the task's
    `data`, its label as an annotation (or a prediction of `model_version`) of `label_studio_config`'s control."""
    tasks = []
    for example in examples:
        data = {key: value for key, value in example.items() if key != "label"}
        result = [{"from_name": LABEL_CONTROL, "to_name": TEXT_TAG, "type": "choices",
                   "value": {"choices": [example["label"]]}}]
        answer = {"model_version": model_version, "result": result} if as_predictions else {"result": result}
        tasks.append({"data": data, "predictions" if as_predictions else "annotations": [answer]})
    return tasks


def _first_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(4096).removeprefix(b"\xef\xbb\xbf").lstrip()[:1]


def _json_array(path: Path, on_bytes) -> Iterator[Row]:
    """The elements of a file holding one JSON array, numbered from 1 (a task's position in the export)."""
    content = path.read_bytes()
    if on_bytes:
        on_bytes(len(content))
    try:
        elements = orjson.loads(content.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        yield 1, InvalidEvent("invalid_json", f"the file is not one JSON array ({exc})"), ""
        return
    groups: dict = {}  # JSON_MIN has a row per annotation: a task's rows are gathered at the first one's place
    for number, element in enumerate(elements, start=1):
        key = ("task", orjson.dumps(element["id"])) if _is_minimal(element) else number  # any JSON id, hashable
        groups.setdefault(key, (number, []))[1].append(element)
    for number, group in groups.values():
        yield number, _element_row(group), orjson.dumps(group if len(group) > 1 else group[0]).decode()


def _is_minimal(element) -> bool:
    return isinstance(element, dict) and "annotation_id" in element and "id" in element


def _element_row(group: list) -> dict | InvalidEvent:
    """The row of one element of a JSON array (a task, a plain row), or of a JSON_MIN task's rows."""
    element = group[0]
    if not isinstance(element, dict):
        return InvalidEvent("not_an_object", "expected a JSON object (a task or a row)")
    if isinstance(element.get("data"), dict) and ("annotations" in element or "predictions" in element):
        return _task_row(element)
    return _agreed(group) if _is_minimal(element) else element


def _task_row(task: dict) -> dict | InvalidEvent:
    """A Label Studio task as a row: its data, and the choice its annotators made (cancelled ones left out)."""
    annotations = [a for a in task.get("annotations") or () if isinstance(a, dict) and not a.get("was_cancelled")]
    truth = [a for a in annotations if a.get("ground_truth")]
    answers: dict[str, list[tuple[str, object]]] = {}
    for annotation in truth or annotations:
        for result in annotation.get("result") or ():
            if isinstance(result, dict) and result.get("type") == "choices":
                choices = (result.get("value") or {}).get("choices") or []
                if len(choices) != 1:
                    return InvalidEvent("invalid_value", f"{_task_name(task)}: {len(choices)} choices in one answer; "
                                        "a label is one choice", f"annotations.result.{result.get('from_name')}")
                answers.setdefault(result.get("from_name"), []).append((choices[0], annotation.get("completed_by")))
    if not answers:
        return InvalidEvent("missing_field", f"{_task_name(task)} has no annotation with a choice (a prediction "
                            "is not a label)", "annotations")
    return _labeled(task["data"], answers, _task_name(task), "annotations")


def _task_name(task: dict) -> str:
    return f"task {task['id']}" if "id" in task else "a task without an id"


def _agreed(rows: list[dict]) -> dict | InvalidEvent:
    """The one row of a JSON_MIN task's annotations, or the error naming the column its annotators disagree on."""
    columns = [{k: v for k, v in row.items() if k not in _MIN_META} for row in rows]
    for column in dict.fromkeys(k for c in columns for k in c):
        given = [(c.get(column), row.get("annotator")) for c, row in zip(columns, rows)]
        if len({orjson.dumps(v) for v, _ in given}) > 1:
            return _disagreement(f"task {rows[0]['id']}", given, column)
    return columns[0]


def _argilla_row(row: dict) -> dict | InvalidEvent:
    """An Argilla record as a row: its fields and metadata, its `id` as `item_id`, its submitted responses."""
    answers = {}
    for column in [c for c in row if c.endswith(RESPONSES)]:
        question = column.removesuffix(RESPONSES)
        values, users = row.get(column) or [], row.get(f"{column}.users") or []
        status = row.get(f"{column}.status") or [None] * len(values)  # the SDK leaves a response's status unset
        answers[question] = [(v, u) for v, u, s in zip(values, users, status) if s in _SUBMITTED and v is not None]
    columns = {c: v for c, v in row.items() if c.partition(".")[0] not in answers and not c.startswith("_")}
    if columns.get("id") is not None:
        columns.setdefault("item_id", columns["id"])
    return _labeled(columns, answers, f"record {row.get('id')}", "responses")


def _labeled(columns: dict, answers: dict[str, list], what: str, where: str) -> dict | InvalidEvent:
    """The columns with each question's agreed answer under its name (and `label` for the only one)."""
    row = dict(columns)
    for question, given in answers.items():
        labels = {label for label, _ in given}
        if len(labels) > 1:
            return _disagreement(what, given, f"{where}.{question}")
        if labels:
            row[question] = labels.pop()
    if len(answers) == 1:
        (question,) = answers
        if question in row:
            row["label"] = row[question]
        else:
            return InvalidEvent("missing_field", f"{what} has no submitted answer to {question!r} (a suggestion or a "
                                "prediction is not a label)", f"{where}.{question}")
    return row


def _disagreement(what: str, given: list[tuple], field: str) -> InvalidEvent:
    who = ", ".join(f"{value!r} by {user}" for value, user in given)
    return InvalidEvent("invalid_value", f"{what}: the annotators disagree ({who}); decide it in review or import "
                        "the label you trust", field)
