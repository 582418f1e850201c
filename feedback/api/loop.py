"""Loop routes: suspected label errors and sampler runs (trigger and read), releases, drift and status.

Triggering a job takes the role that queues items (`add_to_queue`, any reviewer): the job queues under the
acting user's name. Publishing a release takes a lead, as in the library.
"""


from typing import Annotated

from fastapi import Depends, Path, Query, Request

from .. import learn, monitor, release
from ..capture.summary import status as workspace_status
from ..roles import Actor
from .context import Current, acting
from .models import NewRelease, SamplerRun, SuspectsRun, utc
from .errors import PROBLEMS
from .responses import Router

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
_REF = r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,127}/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"  # VERSION or DATASET/VERSION
Name = Annotated[str, Path(pattern=NAME)]


def router(current: Current) -> Router:
    api = Router(tags=["loop"], responses=PROBLEMS)

    def actor(request: Request) -> Actor:
        return acting(current(), request)

    Who = Annotated[Actor, Depends(actor)]

    @api.post("/suspects", summary="Find trusted labels that look wrong and queue them (slow: fits a model)")
    def suspects(who: Who, body: SuspectsRun):
        return learn.find_suspects(current(), actor=who, **body.model_dump())

    @api.get("/sampler/runs", summary="The latest sampler runs, newest first, with their yield")
    def sampler_runs(who: Who, runs: Annotated[int, Query(ge=1, le=1_000)] = 20):
        return learn.sampler_report(current(), runs=runs)

    @api.post("/sampler/runs", summary="Run the active-learning sampler: queue the items a model learns most from")
    def sample(who: Who, body: SamplerRun):
        return learn.sample(current(), actor=who, **body.model_dump())

    @api.get("/releases", summary="The releases the store records, oldest first")
    def releases(who: Who, dataset: Annotated[str | None, Query(pattern=NAME)] = None):
        return {"releases": release.list_releases(current(), dataset)}

    @api.post("/releases", status_code=201, summary="Select, gate and write a new release (leads)")
    def create(who: Who, body: NewRelease):
        selection = release.Selection(labels=tuple(body.labels), sources=tuple(body.sources), since=utc(body.since),
                                      until=utc(body.until), batch=body.batch,
                                      items=None if body.items is None else tuple(body.items),
                                      from_parent=body.from_parent)
        return release.create_release(current(), body.dataset, selection=selection, version=body.version,
                                      override=tuple(body.override), reason=body.reason, if_changed=body.if_changed,
                                      formats=tuple(body.formats), hooks="background" if body.hooks else False,
                                      by=who)

    @api.get("/releases/diff", summary="What changed between two releases (`from`, `to`: VERSION or DATASET/VERSION)")
    def diff(who: Who, old: Annotated[str, Query(alias="from", pattern=_REF)],
             new: Annotated[str, Query(alias="to", pattern=_REF)]):
        return release.diff_releases(current(), old, new)

    @api.get("/releases/{dataset}/{version}", summary="A release's manifest: counts, splits, gates, recipe")
    def show(who: Who, dataset: Name, version: Name):
        return release.show_release(current(), f"{dataset}/{version}")

    @api.get("/releases/{dataset}/{version}/verification",
             summary="Recompute every checksum and digest of a release against the store's record")
    def verify(who: Who, dataset: Name, version: Name):
        return release.verify_release(current(), f"{dataset}/{version}")  # by name: never a folder of the server's

    @api.get("/drift", summary="Recent production against the latest release")
    def drift(who: Who):
        return monitor.drift(current())

    @api.get("/status", summary="A summary of the workspace (what `feedback status --json` prints)")
    def status(who: Who):
        return workspace_status(current())

    return api

