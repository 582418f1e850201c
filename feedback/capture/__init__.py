"""Capture: production events into the store, each exactly once, bad ones to quarantine.

The event contract (`contract`, compiled as msgspec `structs`), the SDK `Client` that appends to
the `spool`, `readers` of bulk files, `ingest` and `quarantine`, and the store's `summary`.
"""

from typing import TYPE_CHECKING

from ..lazy import exports

if TYPE_CHECKING:
    from .client import Client, capture_event
    from .contract import MAX_DEPTH, REASONS, SCHEMA_PATH, encode, parse_batch, validate
    from .ingest import IngestReport, ingest_files, ingest_spool
    from .quarantine import dismiss, event_status, export_quarantine, list_quarantine, retry_quarantine
    from .readers import read_records, read_rows, write_jsonl
    from .summary import label_counts, status

__getattr__, __dir__, __all__ = exports(__name__, __file__)
