"""Review routes: the queue, claims, items, decisions, undo, adjudication, gold, groups and group relabel.

Each route is one library call (two for an item with its history); the library checks the actor's role.
"""


from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import Depends, Query, Request, Response

from .. import review
from ..review.choices import DECISION_KINDS
from ..review.queue import QueueFilter
from ..roles import Actor
from .context import Current, acting, cursor_for, held, offset_of
from .errors import PROBLEMS, ApiError, about
from .models import Adjudication, Claim, Decision, Decisions, Gold, Relabel, queue_filter
from .responses import Router

MAX_PAGE = 1_000


def router(current: Current) -> Router:
    api = Router(tags=["review"], responses=PROBLEMS)

    def actor(request: Request) -> Actor:
        return acting(current(), request)

    Who = Annotated[Actor, Depends(actor)]
    # routes that only read or write rows: one opening of the embedded file each (PostgreSQL opens nothing)
    short = [] if current().store_url else [Depends(held(current))]
    Filter = Annotated[QueueFilter, Depends(queue_filter)]

    @api.get("/me", dependencies=short, summary="Who the request acts as, and the labels they may give")
    def me(who: Who):
        ws = current()
        return {"name": who.name, "role": who.role, "dataset": ws.dataset, "labels": list(ws.taxonomy.offered),
                "decisions": list(DECISION_KINDS), "taxonomy_mode": ws.taxonomy.mode}

    @api.get("/queue", dependencies=short, summary="A page of the queue, highest priority (or newest) first")
    def queue(who: Who, flt: Filter, sort: Literal["priority", "time"] = "priority",
              limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50, cursor: str | None = None):
        query = {**asdict(flt), "sort": sort}
        offset = offset_of(cursor, query)
        rows = review.queue_page(current(), flt, sort=sort, limit=limit + 1, offset=offset)
        more = len(rows) > limit
        return {"items": rows[:limit], "next_cursor": cursor_for(offset + limit, query) if more else None}

    @api.get("/queue/counts", dependencies=short,
             summary="How many queued items match, by reason, status, labels, model and source")
    def counts(who: Who, flt: Filter):
        return review.queue_counts(current(), flt)

    @api.post("/claims", dependencies=short,
              summary="Claim the next item (or `first`, by name) for the acting reviewer")
    def claim(who: Who, body: Claim):
        with about("first"):
            return {"item": review.next_item(current(), who, body.queue_filter(), exclude=body.exclude,
                                             first=body.first)}

    @api.delete("/claims/{item_id}", dependencies=short,
                status_code=204, summary="Give a claimed item back without deciding it")
    def unclaim(who: Who, item_id: str):
        review.release_claim(current(), who, item_id)
        return Response(status_code=204)

    @api.get("/items/{item_id}", dependencies=short,
             summary="One item: its queue row and everything that happened to it")
    def item(who: Who, item_id: str):
        ws = current()
        return {"item": review.item(ws, item_id), "history": review.history(ws, item_id)}

    @api.get("/items/{item_id}/similar", summary="The items whose text is closest to this one's, best first")
    def similar(who: Who, item_id: str, limit: Annotated[int, Query(ge=1, le=100)] = 10,
                threshold: Annotated[float, Query(ge=0, le=100)] = 70.0):
        return {"items": review.more_like_this(current(), item_id, limit=limit, threshold=threshold)}

    @api.post("/decisions", dependencies=short,
              status_code=201, summary="Decide an item: a label, or skip, junk, unsure")
    def decide(who: Who, body: Decision):
        ws = current()
        _check_label(ws, body.label)
        stale = "expect" in body.model_fields_set
        with about("item_id"):
            return review.decide(ws, who, body.item_id, body.label, note=body.note,
                                 based_on=None if body.expect in (None, "", "none") else body.expect,
                                 check_stale=stale, override_claim=body.override_claim)

    @api.post("/decisions/batch", dependencies=short, summary="Decide many items, each row checked as one decision")
    def decide_many(who: Who, body: Decisions):
        rows = [(n, row.model_dump(exclude_unset=True)) for n, row in enumerate(body.decisions)]
        result = review.decide_many(current(), who, rows)
        return {**result, "errors": [{**e, "field": f"decisions[{e['row']}]"} for e in result["errors"]]}

    @api.post("/decisions/{decision_id}/undo", dependencies=short,
              status_code=201, summary="Undo a decision (reviewers their own)")
    def undo(who: Who, decision_id: str):
        return review.undo(current(), who, decision_id)

    @api.post("/undo-last", dependencies=short,
              summary="Undo the acting reviewer's latest decision (null: nothing to undo)")
    def undo_last(who: Who):
        return {"undo": review.undo_last(current(), who)}

    @api.post("/batches/{batch_id}/undo", dependencies=short, summary="Undo every live decision of a group relabel")
    def undo_batch(who: Who, batch_id: str):
        return {"batch_id": batch_id, "undone": review.undo_batch(current(), who, batch_id)}

    @api.post("/items/{item_id}/adjudication", dependencies=short,
              status_code=201, summary="Settle an item with a final label (leads)")
    def adjudicate(who: Who, item_id: str, body: Adjudication):
        ws = current()
        _check_label(ws, body.label, kinds=False)
        return review.adjudicate(ws, who, item_id, body.label, note=body.note)

    @api.put("/items/{item_id}/gold", dependencies=short, summary="Make an item gold with a known answer (leads)")
    def gold(who: Who, item_id: str, body: Gold):
        ws = current()
        _check_label(ws, body.label, kinds=False)
        review.set_gold(ws, who, item_id, body.label)
        return {"item_id": item_id, "gold": body.label}

    @api.get("/groups", summary="Near-duplicate groups, largest and most disputed first")
    def groups(who: Who, threshold: Annotated[float, Query(ge=0, le=100)] = 90.0,
               min_size: Annotated[int, Query(ge=2)] = 2, all_items: bool = False,
               limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20):
        found = review.near_duplicate_groups(current(), threshold=threshold, min_size=min_size,
                                             queued_only=not all_items)
        return {"groups": found[:limit]}

    @api.post("/groups/relabel", summary="Label many items at once: one decision each, one batch id")
    def relabel(who: Who, body: Relabel):
        ws = current()
        _check_label(ws, body.label)
        if body.preview:
            return {"preview": review.preview_group(ws, body.item_ids)}
        with about("item_ids"):
            batch = review.relabel_group(ws, who, body.item_ids, body.label, note=body.note)
        return {"batch_id": batch, "items": len(set(body.item_ids))}

    return api


def _check_label(ws, label: str, *, kinds: bool = True) -> None:
    """Refuse, naming the field, a label the taxonomy does not let a reviewer give now (or, without `kinds`,
    skip, junk or unsure, which settle nothing)."""
    if label in DECISION_KINDS:
        refusal = None if kinds else f"label {label!r}: give a label of the taxonomy, not a decision kind"
    else:
        refusal = ws.taxonomy.refusal(label)
    if refusal:
        raise ApiError(422, "invalid_label", refusal, "label")
