"""One error hierarchy. Each error says what is wrong, where, and how to fix it.

The shells (CLI, HTTP server, app) translate `FeedbackError` in one place each;
anything else is a bug and is allowed to surface as one.
"""


class FeedbackError(Exception):
    """Base of every error the library raises on purpose."""


class WorkspaceError(FeedbackError):
    """No workspace, or a workspace whose config is unusable."""


class StoreBusy(FeedbackError):
    """Another process held the store past the retry deadline."""


class StoreError(FeedbackError):
    """The database refused a statement (a malformed file read through SQL, a schema problem)."""


class InvalidEvent(FeedbackError):
    """An event broke the contract.

    `reason` is a stable code (see `feedback.capture.REASONS`), `field` the dotted
    path of the offending field, when there is one.
    """

    def __init__(self, reason: str, message: str, field: str | None = None):
        self.reason = reason
        self.field = field
        super().__init__(f"field '{field}': {message}" if field else message)


class NotFound(FeedbackError):
    """A named thing (item, release, quarantine row) does not exist."""
