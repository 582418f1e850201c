"""What the review API's requests carry: bodies as pydantic models (FastAPI checks them and names the field at
fault), and the queue's filters as query parameters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..learn.choices import (DEFAULT_DIVERSITY, DEFAULT_STRATEGY, DEFAULT_SUSPECT_METHOD, DIVERSITY, PROBABILITIES,
                             QUOTA_FIELDS, STRATEGIES, SUSPECT_METHODS)
from ..release.choices import FORMATS, GATES
from ..review.choices import REASONS, STATUSES
from ..review.queue import QueueFilter

Id = Annotated[str, Field(min_length=1, max_length=512)]
Text = Annotated[str, Field(max_length=10_000)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error that names it, not a silent default


class Decision(Body):
    item_id: Id
    label: Id = Field(description="a label of the taxonomy, or skip, junk, unsure")
    note: Text | None = None
    expect: str | None = Field(None, description="the item's last decision id the client saw (null: it saw none); "
                               "a different one now is refused with 409 `stale`. Leave it out to decide regardless.")
    override_claim: Text | None = Field(None, description="leads: take over another reviewer's claim, saying why")

    @field_validator("override_claim")
    @classmethod
    def _reason_given(cls, value):
        if value is not None and not value.strip():
            raise ValueError("say why you take over the claim: the reason is recorded")
        return value


class Row(Body):
    item_id: Id
    label: Id
    note: Text | None = None
    expect: str | None = None


class Decisions(Body):
    decisions: list[Row] = Field(min_length=1, max_length=5_000)


class Adjudication(Body):
    label: Id
    note: Text | None = None


class Gold(Body):
    label: Id


class Claim(Body):
    """What to claim: the filters of the queue, items passed over, or one item by name (`first`)."""
    reason: Literal[REASONS] | None = None
    status: Literal[STATUSES] | None = None
    pred_label: str | None = None
    corr_label: str | None = None
    current_label: str | None = None
    model_version: str | None = None
    source: str | None = None
    text: str | None = None
    exclude: list[Id] = Field(default_factory=list, max_length=10_000)
    first: Id | None = None

    def queue_filter(self) -> QueueFilter:
        return QueueFilter(**self.model_dump(exclude={"exclude", "first"}))


class Relabel(Body):
    item_ids: list[Id] = Field(min_length=1, max_length=10_000)
    label: Id
    note: Text | None = None
    preview: bool = Field(False, description="say what would change, decide nothing")


class SuspectsRun(Body):
    method: Literal[SUSPECT_METHODS] = DEFAULT_SUSPECT_METHOD
    folds: int = Field(5, ge=2, le=20)
    limit: int | None = Field(None, ge=1)
    min_examples: int | None = Field(None, ge=2)
    seed: int = 0
    dry_run: bool = False
    scores: bool = False


class SamplerRun(Body):
    budget: int = Field(100, ge=1, le=100_000)
    strategy: Literal[STRATEGIES] = DEFAULT_STRATEGY
    diversity: Literal[DIVERSITY] = DEFAULT_DIVERSITY
    quotas: dict[Literal[QUOTA_FIELDS], int] = Field(default_factory=dict)
    probabilities: Literal[PROBABILITIES] = "auto"
    recent_runs: int = Field(10, ge=0)
    key: str | None = None
    seed: int = 0
    dry_run: bool = False


class NewRelease(Body):
    dataset: str | None = None
    labels: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    batch: str | None = None
    items: list[Id] | None = None
    from_parent: bool = False
    version: str | None = None
    override: list[Literal[GATES]] = Field(default_factory=list)
    reason: Text | None = None
    if_changed: bool = False
    formats: list[Literal[FORMATS[1:]]] = Field(default_factory=list)
    hooks: bool = Field(True, description="run the on_release hooks (in the background: the answer does not wait)")


def queue_filter(reason: Literal[REASONS] | None = None, status: Literal[STATUSES] | None = None,
                 pred_label: str | None = None, corr_label: str | None = None, current_label: str | None = None,
                 model_version: str | None = None, source: str | None = None,
                 since: Annotated[datetime | None, Query(description="items seen at or after (UTC)")] = None,
                 until: Annotated[datetime | None, Query(description="items seen before (UTC)")] = None,
                 text: Annotated[str | None, Query(description="text contains (case-insensitive)")] = None,
                 ) -> QueueFilter:
    """The queue's filters, from the query string."""
    return QueueFilter(reason=reason, status=status, pred_label=pred_label, corr_label=corr_label,
                       current_label=current_label, model_version=model_version, source=source, since=utc(since),
                       until=utc(until), text=text)


def utc(moment: datetime | None) -> datetime | None:
    """A time as the store keeps it: naive UTC."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)
