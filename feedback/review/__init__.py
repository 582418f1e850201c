"""Review: the prioritised queue, decisions with provenance, agreement, near-duplicate groups.

Current state (an item's label and status) is derived from the logs in `state`; the queue's
reasons and priorities are explained there too.
"""

from typing import TYPE_CHECKING

from ..lazy import exports

if TYPE_CHECKING:
    from .agreement import krippendorff_alpha, reviewer_agreement
    from .choices import DECISION_KINDS, REASONS, STATUSES
    from .dashboard import dashboard_figures
    from .decisions import (ClaimHeld, StaleDecision, adjudicate, decide, decide_many, history, preview_group,
                            relabel_group, set_gold, undo, undo_batch, undo_last)
    from .groups import mark_distinct, more_like_this, near_duplicate_groups, undo_distinct
    from .imports import ImportReport, import_labels
    from .purge import PurgeReport, forget
    from .queue import QueueFilter, add_to_queue, item, next_item, queue_counts, queue_page, release_claim
    from .trusted import trusted_labels

__getattr__, __dir__, __all__ = exports(__name__, __file__)
