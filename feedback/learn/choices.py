"""The learning loop's fixed choices and defaults, in a module that imports nothing heavy, so the CLI can offer them.

Defaults were chosen on BANKING77 (`bench/active_learning.py`).
"""

#: How a sampler scores an item's uncertainty.
STRATEGIES = ("least_confidence", "margin", "entropy")
#: How a sampler keeps one batch from being copies of one phrase.
DIVERSITY = ("kmeans", "none")
DEFAULT_STRATEGY, DEFAULT_DIVERSITY = "margin", "kmeans"
#: Where a sampler's probabilities come from.
PROBABILITIES = ("auto", "stored", "fit")
#: What a sampler's quota can cap.
QUOTA_FIELDS = ("pred_label", "model_version", "source")
#: How suspected label errors are chosen.
SUSPECT_METHODS = ("ranked", "confident_learning", "disagreement")
DEFAULT_SUSPECT_METHOD = "ranked"
#: The fewest trusted labels a label needs for suspects to judge its examples (`[learn] suspects_min_examples`).
#: Below it the out-of-fold model is too weak to tell a wrong label from its own mistake. 10 judges every label
#: of a first model (about 34 examples per label, where 30 left out 12 of 64 labels): see bench/suspects.py.
SUSPECTS_MIN_EXAMPLES = 10
#: Days a label a person set or confirmed is left alone by suspects, unless new production events about the
#: item arrived since (`[learn] suspects_confirmed_days`); adjudicated labels are never flagged again.
SUSPECTS_CONFIRMED_DAYS = 30
