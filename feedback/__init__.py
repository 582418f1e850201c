"""feedback-workbench: capture production model feedback, review it, release datasets.

Glossary (used everywhere in the code and docs):
  event     one capture record (prediction, correction or error), appended, never changed
  item      what events are about: one production request, by `item_id`
  quarantine  events that broke the contract, kept with a reason code for fixing
  workspace a folder with `feedback.toml`, the store (DuckDB) and the spool
  spool     files producers append to; ingest absorbs them into the store
"""

from .capture import Client, capture
from .errors import FeedbackError, InvalidEvent, StoreBusy, WorkspaceError
from .ingest import IngestReport, ingest_files, ingest_spool
from .status import status
from .workspace import Workspace, find_workspace, init_workspace

__all__ = [
    "Client", "capture", "FeedbackError", "InvalidEvent", "StoreBusy", "WorkspaceError",
    "IngestReport", "ingest_files", "ingest_spool", "status", "Workspace", "find_workspace", "init_workspace",
]
