"""The release's fixed choices, in a module that imports nothing heavy, so the CLI can offer them."""

#: The quality gates, in the order they run.
GATES = ("schema", "taxonomy", "conflicts", "leakage", "agreement", "min_per_label", "label_shift", "second_review",
         "fitness")
#: What keeps examples together in one split (`[release] group_by`).
GROUP_BY = ("near_duplicate", "exact", "source", "item")
#: The data files' formats: Parquet always, CSV and JSONL as copies (`[release] formats`, `--format`).
FORMATS = ("parquet", "csv", "jsonl")
