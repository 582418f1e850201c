"""Learn: the text model, the active-learning sampler and its scheduled runs, suspected label errors.

Every job reads what it needs in one short transaction, computes without holding the store,
and writes back in one short transaction; `jobs` keeps one run at a time per workspace.
"""

from typing import TYPE_CHECKING

from ..lazy import exports

if TYPE_CHECKING:
    from .choices import (
        DEFAULT_DIVERSITY,
        DEFAULT_STRATEGY,
        DEFAULT_SUSPECT_METHOD,
        DIVERSITY,
        PROBABILITIES,
        QUOTA_FIELDS,
        STRATEGIES,
        SUSPECT_METHODS,
    )
    from .model import fit_predict_proba, out_of_fold_proba, text_classifier
    from .sampler import sample, sampler_report
    from .strategies import select, uncertainty
    from .suspects import confident_joint, disagreement, find_suspects, label_issues

__getattr__, __dir__, __all__ = exports(__name__, __file__)
