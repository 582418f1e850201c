"""feedback-workbench: capture production model feedback, review it, release datasets.

Everything the loop needs is importable from here (and the parts' packages hold the rest):

    import feedback
    ws = feedback.init_workspace("ws", dataset="support", labels=["refund", "card_lost"])
    with feedback.Client(ws.root) as client:                         # capture: never blocks, never raises
        client.prediction("req-1", text="where is my refund", label="card_lost", score=0.41)
    feedback.ingest_spool(ws)                                        # spool -> store
    me = feedback.local_actor()                                      # or feedback.authenticate(ws, name, pw)
    item = feedback.next_item(ws, me)                                # claims the top of the queue
    feedback.decide(ws, me, item["item_id"], "refund")

Glossary (used everywhere in the code and docs):
  event     one capture record (prediction, correction or error), appended, never changed
  item      what events are about: one production request, by `item_id`
  quarantine  events that broke the contract, kept with a reason code for fixing
  workspace a folder with `feedback.toml`, the store (DuckDB) and the spool
  spool     files producers append to; ingest absorbs them into the store

The parts of the loop are subpackages: `capture`, `review`, `learn`, `release`, `monitor`, over `store`.
Names load their module on first use, so `import feedback` for the SDK stays light. Long jobs take
`progress=` (see `feedback.progress`).
"""

from typing import TYPE_CHECKING

from .lazy import exports

if TYPE_CHECKING:
    from .capture.client import Client, capture_event
    from .capture.ingest import IngestReport, ingest_files, ingest_spool
    from .capture.summary import status
    from .errors import FeedbackError, InvalidEvent, StoreBusy, WorkspaceError
    from .learn.sampler import sample
    from .learn.suspects import find_suspects
    from .loop import list_runs, run_loop
    from .monitor.checks import check_release_folder, check_workspace, drift
    from .progress import Progress
    from .release.evaluation import evaluate, predict
    from .release.releases import GateFailed, create_release, list_releases, load_release, verify_release
    from .review.decisions import ClaimHeld, StaleDecision, decide, decide_many, history, undo, undo_last
    from .review.imports import import_labels
    from .review.queue import QueueFilter, item, next_item, release_claim
    from .review.trusted import trusted_labels
    from .roles import Actor, PermissionDenied, authenticate, local_actor
    from .config_file import init_workspace
    from .workspace import Workspace, find_workspace

__getattr__, __dir__, __all__ = exports(__name__, __file__)
