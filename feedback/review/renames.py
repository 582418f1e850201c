"""The label mapping that the taxonomy changes in force compose: old name -> the name that stands for it now.

A rename maps the old name to the new, a merge each merged name to the label it went into; a split or a
removal maps its label to None (the label no longer stands: the item needs a person); a deprecation maps
nothing. Changes compose in the order they were made, so a rename A -> B then a merge of B and X into C maps
A to C. An undone change (one with an undo row in `taxonomy_changes`) counts for nothing.
"""

from __future__ import annotations

__all__ = ["label_map"]


def label_map(tx) -> dict[str, str | None]:
    """The composed mapping of every change not undone, in order; names that map to themselves are left out."""
    composed: dict[str, str | None] = {}
    for change in tx.rows(
            "SELECT kind, labels_from, labels_to FROM taxonomy_changes WHERE undone_at IS NULL AND change_id NOT IN "
            "(SELECT change_id FROM taxonomy_changes WHERE undone_at IS NOT NULL) ORDER BY changed_at, change_id"):
        step = change_mapping(change["kind"], list(change["labels_from"]), list(change["labels_to"] or []))
        composed = {old: (step.get(new, new) if new is not None else None) for old, new in composed.items()}
        composed.update({old: new for old, new in step.items() if old not in composed})
    return {old: new for old, new in composed.items() if old != new}


def change_mapping(kind: str, labels_from: list[str], labels_to: list[str]) -> dict[str, str | None]:
    """What one change maps on its own."""
    if kind == "rename":
        return {labels_from[0]: labels_to[0]}
    if kind == "merge":
        return {label: labels_to[0] for label in labels_from}
    if kind in ("split", "remove"):
        return {label: None for label in labels_from}
    return {}
