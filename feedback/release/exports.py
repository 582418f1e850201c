"""A release written for another tool: Label Studio tasks, for a team that keeps Label Studio as its labeling UI.

The tasks file holds each example as a task (`data`: `text`, `item_id`, `split`) with its label as
an annotation, or as a prediction of the release when the team wants its people to check them;
the labeling config beside it (`<file>.xml`, the release's classes as choices) makes the project
that imports the file as is. Importing that project's export back (`feedback import-labels`) finds
the same items by their `item_id`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import FeedbackError
from ..review.interop import label_studio_config, label_studio_tasks
from ..workspace import Workspace
from .releases import load_release, show_release

EXPORT_FORMATS = ("label-studio",)


def export_release(ws: Workspace, ref: str, path: str | Path, *, format: str = "label-studio",
                   as_predictions: bool = False) -> dict:
    """Write release `ref`'s examples to `path` in `format`, and the labeling config beside it; say what was written."""
    if format not in EXPORT_FORMATS:
        raise FeedbackError(f"export format {format!r}: use {', '.join(EXPORT_FORMATS)}")
    path = Path(path)
    manifest = show_release(ws, ref)
    examples = [{"item_id": row["id"], "text": row["text"], "label": row["label"], "split": row["split"]}
                for row in load_release(ref, ws=ws, format="arrow").to_pylist()]
    release = f"{manifest['dataset']}/{manifest['version']}"
    tasks = label_studio_tasks(examples, as_predictions=as_predictions, model_version=release)
    path.write_text(json.dumps(tasks, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    config = path.with_suffix(".xml")
    config.write_text(label_studio_config(manifest["class_names"]), encoding="utf-8")
    return {"release": release, "format": format, "tasks": len(tasks), "path": str(path), "config": str(config),
            "labels_as": "predictions" if as_predictions else "annotations"}
