"""The review loop's fixed names, in a module that imports nothing heavy, so the CLI can offer them."""

#: Why an item is in the queue.
REASONS = ("correction", "error", "low_confidence", "suspected_label_error", "active_learning", "novelty",
           "manual", "second_review", "taxonomy")
#: Where an item stands with reviewers.
STATUSES = ("new", "in review", "labeled", "second_review", "disputed", "skipped", "junk")
#: Decisions other than a label.
DECISION_KINDS = ("skip", "junk", "unsure")
