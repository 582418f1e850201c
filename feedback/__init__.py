"""feedback-workbench: capture production model feedback, review it, release datasets.

Glossary (used everywhere in the code and docs):
  event     one capture record (prediction, correction or error), appended, never changed
  item      what events are about: one production request, by `item_id`
  quarantine  events that broke the contract, kept with a reason code for fixing
  workspace a folder with `feedback.toml`, the store (DuckDB) and the spool
  spool     files producers append to; ingest absorbs them into the store

The parts of the loop are subpackages: `capture`, `review`, `learn`, `release`, over `store`.
Names load their module on first use, so `import feedback` for the SDK stays light.
"""

from typing import TYPE_CHECKING

from .lazy import exports

if TYPE_CHECKING:
    from .capture.client import Client, capture_event
    from .capture.ingest import IngestReport, ingest_files, ingest_spool
    from .capture.summary import status
    from .errors import FeedbackError, InvalidEvent, StoreBusy, WorkspaceError
    from .release.releases import load_release
    from .workspace import Workspace, find_workspace, init_workspace

__getattr__, __dir__, __all__ = exports(__name__, __file__)
