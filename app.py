"""The feedback workbench: triage, relabel, review and release in a browser.

Run it with `feedback demo`, or `FEEDBACK_WORKSPACE=ws streamlit run app.py`. Every action is
one library call; this script composes pages, caches data (never connections) and renders.
"""

import streamlit as st

import feedback
from feedback import learn, release, review, roles
from feedback.app import screens, views
from feedback.errors import FeedbackError, StoreBusy

st.set_page_config(page_title="Feedback workbench", page_icon=":material/rate_review:", layout="wide")


ws = feedback.find_workspace()  # $FEEDBACK_WORKSPACE or the current folder; re-read each run, so config edits apply
ROOT = str(ws.root)
state = st.session_state
state.setdefault("passed", [])
state.setdefault("flash", None)


def sign_in() -> roles.Actor | None:
    """The signed-in reviewer; a workspace without users runs open for the local user."""
    if not roles.users(ws):
        return roles.local_actor()
    if "actor" in state:
        return state.actor
    with st.form("sign-in", width=420):
        st.subheader("Sign in")
        name = st.text_input("User")
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in", type="primary"):
            try:
                state.actor = roles.authenticate(ws, name, password)
                st.rerun()
            except FeedbackError as exc:
                st.error(str(exc))
    return None


def act(action, *args, **kwargs):
    """Run a library action from a widget callback; keep its outcome for the next render."""
    try:
        result = action(*args, **kwargs)
        state.flash = None
        return result
    except StoreBusy:
        state.flash = ("warning", "The store is busy (an ingest or export is running); try again in a moment.")
    except FeedbackError as exc:
        state.flash = ("error", str(exc))


def show_flash() -> None:
    if state.flash:
        kind, message = state.flash
        getattr(st, kind)(message)
        state.flash = None


def decide(actor, item_id, label, based_on):
    if act(review.decide, ws, actor, item_id, label, based_on=based_on, check_stale=True):
        state.last_item = item_id


def undo(actor):
    done = act(review.undo_last, ws, actor)
    if done:
        state.passed = [i for i in state.passed if i != done["item_id"]]
        state.flash = ("info", f"Undid your last decision on {done['item_id']}.")


def pass_over(actor, item_id):
    act(review.release_claim, ws, actor, item_id)
    state.passed = [*state.passed, item_id]


def review_page():
    actor = state.current_actor
    st.title("Review")
    st.caption("Keys: 1-9 the quick labels · L the label picked in the search box · S skip · J junk · U unsure · "
               "Z undo · N next")
    show_flash()
    screen = screens.review_screen(ws, actor, exclude=state.passed)
    if screen is None:
        st.success("Nothing left in the queue for you. New items arrive with the next ingest or sampler run.")
        st.button("Undo my last decision", shortcut="Z", on_click=undo, args=(actor,))
        return
    item = screen["item"]
    st.caption(f"Item {item['item_id']} · priority {item['priority']:.2f} · claimed by {item['claimed_by']}")
    views.badges(item["reasons"], item["status"])
    views.item_text(item["text"])
    views.prediction_panel(item, screen["probs"])
    quick = screens.quick_labels(ws, item, screen["probs"])
    hotkeys = {label.name: label.hotkey for label in ws.taxonomy.labels if label.hotkey}
    st.caption("Label it: press the key shown on a button")
    with st.container(horizontal=True, key="quick-labels"):
        for number, label in enumerate(quick, start=1):
            st.button(views.escape(label), key=f"quick-{number}", shortcut=str(number),
                      type="primary" if number == 1 else "secondary",
                      on_click=decide, args=(actor, item["item_id"], label, item["last_decision_id"]))
        for name, key in hotkeys.items():
            if name not in quick:
                st.button(views.escape(name), key=f"hot-{name}", shortcut=key,
                          on_click=decide, args=(actor, item["item_id"], name, item["last_decision_id"]))
    with st.container(horizontal=True, vertical_alignment="bottom"):
        choice = st.selectbox("Any label", sorted(ws.taxonomy.names) or quick, index=None, key="any-label",
                              placeholder="Search the taxonomy", width=360)
        st.button("Label", shortcut="L", disabled=choice is None, on_click=decide,
                  args=(actor, item["item_id"], choice, item["last_decision_id"]))
        for text, key, kind in (("Skip", "S", "skip"), ("Junk", "J", "junk"), ("Unsure", "U", "unsure")):
            st.button(text, shortcut=key, on_click=decide, args=(actor, item["item_id"], kind, item["last_decision_id"]))
        st.button("Undo", shortcut="Z", on_click=undo, args=(actor,))
        st.button("Next", shortcut="N", on_click=pass_over, args=(actor, item["item_id"]))
    left, right = st.columns(2)
    with left:
        st.subheader("Similar items")
        views.similar_table(screen["similar"], key="similar")
    with right:
        st.subheader("History")
        views.history_table(screen["history"], key="history")


def queue_page():
    st.title("Queue")
    counts = review.queue_counts(ws)
    with st.sidebar:
        st.header("Filters")
        flt = review.QueueFilter(
            reason=st.selectbox("Reason", list(counts["reason"]), index=None),
            status=st.selectbox("Status", review.STATUSES, index=None),
            pred_label=st.selectbox("Predicted label", list(counts["pred_label"]), index=None),
            corr_label=st.selectbox("Corrected label", list(counts["corr_label"]), index=None),
            model_version=st.selectbox("Model version", list(counts["model_version"]), index=None),
            source=st.selectbox("Source", list(counts["source"]), index=None),
            text=st.text_input("Text contains") or None,
        )
        sort = st.segmented_control("Sort by", ["priority", "time"], default="priority") or "priority"
    matching = review.queue_counts(ws, flt)
    with st.sidebar:
        views.counts_sidebar(matching)
    size = 50
    pages = max(1, -(-matching["total"]["items"] // size))
    page = st.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, value=1, width=200)
    views.queue_table(review.queue_page(ws, flt, sort=sort, limit=size, offset=(page - 1) * size), key="queue")


@st.cache_data(ttl=60, show_spinner="Finding near-duplicates...")
def cached_groups(root: str, threshold: float) -> list[dict]:
    return review.near_duplicate_groups(feedback.Workspace(root), threshold=threshold, queued_only=False)


def relabel(actor, item_ids, label):
    batch = act(review.relabel_group, ws, actor, item_ids, label)
    if batch:
        state.flash = ("success", f"Labeled {len(item_ids)} items as {label} (batch {batch}).")


def not_duplicates(actor, item_ids):
    mark = act(review.mark_distinct, ws, actor, item_ids)
    if mark:
        cached_groups.clear()
        state.flash = ("success", f"Marked {len(item_ids)} items as not duplicates ({mark}); they are no longer grouped.")


def undo_batch(actor, batch_id):
    if act(review.undo_batch, ws, actor, batch_id):
        state.flash = ("info", f"Undid batch {batch_id}.")


def groups_page():
    actor = state.current_actor
    st.title("Near-duplicate groups")
    show_flash()
    threshold = st.slider("Similarity threshold", 70, 100, 90, width=360)
    found = cached_groups(ROOT, float(threshold))
    if not found:
        st.info("No near-duplicate groups at this threshold.")
        return
    summary = [{"group": g["group_id"], "size": g["size"], "disputed": g["disputed"], "unlabeled": g["unlabeled"],
                "example": g["text"], "predicted": ", ".join(g["predicted"])} for g in found]
    st.dataframe(summary, hide_index=True, width="stretch")
    chosen = st.selectbox("Group", [g["group_id"] for g in found],
                          format_func=lambda gid: f"{gid} ({next(g['size'] for g in found if g['group_id'] == gid)} items)")
    group = next(g for g in found if g["group_id"] == chosen)
    preview = review.preview_group(ws, group["item_ids"])
    st.dataframe(preview, hide_index=True, width="stretch", key="group-preview")
    with st.container(horizontal=True, vertical_alignment="bottom"):
        label = st.selectbox("Label for the whole group", sorted(ws.taxonomy.names) or list(group["predicted"]),
                             index=None, key="group-label", width=360)
        st.button(f"Relabel {len(preview)} items", type="primary", disabled=label is None, key="relabel-group",
                  on_click=relabel, args=(actor, group["item_ids"], label))
        st.button("Not duplicates", key="not-duplicates", help="These texts differ in what they ask: stop grouping them",
                  on_click=not_duplicates, args=(actor, group["item_ids"]))
    st.subheader("Recent batches")
    for batch in screens.recent_batches(ws):
        with st.container(horizontal=True, vertical_alignment="center"):
            st.text(f"{batch['batch_id']} · {batch['live']} live decisions · {batch['reviewer']}")
            st.button("Undo batch", key=f"undo-{batch['batch_id']}", disabled=batch["live"] <= 0,
                      on_click=undo_batch, args=(actor, batch["batch_id"]))


def adjudicate(actor, item_id, key):
    label = state.get(key)
    if label and act(review.adjudicate, ws, actor, item_id, label):
        state.flash = ("success", f"{item_id} settled as {label}.")


def adjudication_page():
    actor = state.current_actor
    st.title("Adjudication")
    show_flash()
    disputed = screens.adjudication_queue(ws)
    if not disputed:
        st.success("No disputed items.")
        return
    for entry in disputed:
        with st.container(border=True):
            st.caption(f"Item {entry['item_id']} · predicted {entry['pred_label'] or '-'} · "
                       f"user said {entry['corr_label'] or '-'}")
            views.item_text(entry["text"])
            st.dataframe([{"reviewer": r, "decision": d} for r, d in entry["decisions"].items()], hide_index=True)
            key = f"adj-{entry['item_id']}"
            with st.container(horizontal=True, vertical_alignment="bottom"):
                st.selectbox("Final label", sorted(ws.taxonomy.names) or sorted(set(entry["decisions"].values())),
                             index=None, key=key, width=360)
                st.button("Settle", key=f"settle-{entry['item_id']}", on_click=adjudicate,
                          args=(actor, entry["item_id"], key))


@st.cache_data(ttl=30, show_spinner=False)
def cached_dashboard(root: str) -> dict:
    return review.dashboard_figures(feedback.Workspace(root))


def dashboard_page():
    st.title("Dashboard")
    data = cached_dashboard(ROOT)
    agreement = data["agreement"]
    a, b, c = st.columns(3)
    a.metric("Items waiting", f"{data['items_waiting']:,}")
    b.metric("Decisions", f"{int(data['throughput']['decisions'].sum()) if len(data['throughput']) else 0:,}")
    c.metric("Krippendorff's alpha", "-" if agreement["alpha"] is None else f"{agreement['alpha']:.2f}")
    left, right = st.columns(2)
    with left:
        st.subheader("Incoming errors and corrections")
        st.bar_chart(data["incoming"], x="day", y="events", color="type", height=280)
        st.subheader("Queue by reason")
        st.bar_chart(data["queue"], x="reason", y="items", horizontal=True, height=240)
    with right:
        st.subheader("Reviewer throughput")
        if len(data["throughput"]):
            st.bar_chart(data["throughput"], x="day", y="decisions", color="reviewer", height=280)
        else:
            st.info("No decisions yet.")
        st.subheader("Most frequent confusions")
        st.dataframe(data["confusion"], hide_index=True, width="stretch", height=240)
    if agreement["pairs"] or agreement["gold"]:
        st.subheader("Agreement and gold accuracy")
        st.dataframe(agreement["pairs"], hide_index=True)
        st.dataframe(agreement["gold"], hide_index=True)
    drift_section(cached_drift(ROOT))


@st.cache_data(ttl=60, show_spinner=False)
def cached_drift(root: str) -> dict:
    return screens.drift_figures(feedback.Workspace(root))


def drift_section(drift: dict) -> None:
    st.header("Drift against the latest release")
    if drift["release"] is None:
        st.info("No release yet to compare production with.")
        return
    window = drift["window"]
    if not window["events"]:
        st.info("No production events in the window yet.")
        return
    st.caption(f"{window['events']:,} production events from {window['from']:%Y-%m-%d} to {window['to']:%Y-%m-%d} "
               f"against {drift['release']}; thresholds in [drift] of feedback.toml")
    st.dataframe(drift["checks"], hide_index=True, width="stretch", column_order=["name", "status", "message"])
    left, right = st.columns(2)
    with left:
        st.subheader(f"Label mix: predictions of {drift['model_version']} and the release")
        if len(drift["label_mix"]):
            st.bar_chart(drift["label_mix"], x="label", y="share", color="source", stack=False, horizontal=True,
                         height=320)
        st.dataframe(drift["confidence"], hide_index=True, width="stretch")
    with right:
        st.subheader("Novel vocabulary")
        if len(drift["novel_terms"]):
            st.bar_chart(drift["novel_terms"].head(15), x="term", y="g2", horizontal=True, height=320)
            st.dataframe(drift["novel_terms"], hide_index=True, width="stretch")
        else:
            st.info("No term is much more frequent in production than in the release.")


def create_release(actor):
    made = act(release.create_release, ws, if_changed=True, by=actor)
    if made:
        state.flash = ("success", f"Released {made['dataset']} {made['version']}." if made.get("created", True)
                       else "Nothing changed since the last release; no release made.")


def releases_page():
    actor = state.current_actor
    st.title("Releases")
    show_flash()
    st.button("Create a release from the trusted labels", type="primary", disabled=not actor.can("release"),
              help="Leads and admins; quality gates run first", on_click=create_release, args=(actor,))
    made = release.list_releases(ws)
    if not made:
        st.info("No releases yet.")
        return
    st.dataframe(made, hide_index=True, width="stretch")
    refs = [f"{r['dataset']}/{r['version']}" for r in made]
    latest = made[-1]
    st.subheader(f"Load {refs[-1]}")
    st.code(f"import datasets, pandas\nds = datasets.load_dataset({latest['location']!r})  # train/validation/test, "
            f"labels as ClassLabel\ndf = pandas.read_parquet({latest['location'] + '/data'!r})", language="python")
    with st.expander(f"Data card of {refs[-1]}"):
        st.markdown(release.release_card(ws, refs[-1]))
    if len(refs) >= 2:
        with st.container(horizontal=True):
            old = st.selectbox("From", refs, index=len(refs) - 2, width=300)
            new = st.selectbox("To", refs, index=len(refs) - 1, width=300)
        change = release.diff_releases(ws, old, new)
        st.json(change, expanded=1)


def run_sampler(budget):
    run = act(learn.sample, ws, budget=budget)
    if run:
        state.flash = ("info", run["message"])


def sampler_page():
    actor = state.current_actor
    st.title("Sampler")
    show_flash()
    with st.container(horizontal=True, vertical_alignment="bottom"):
        budget = st.number_input("Budget", min_value=1, max_value=5000, value=100, width=200)
        st.button("Queue the most informative items now", disabled=not actor.can("adjudicate"),
                  on_click=run_sampler, args=(budget,))
    runs = learn.sampler_report(ws)
    total = runs["total"]
    a, b, c = st.columns(3)
    a.metric("Picked", f"{total['picked']:,}")
    b.metric("Reviewed", f"{total['reviewed']:,}")
    c.metric("Yield", "-" if total["yield"] is None else f"{total['yield']:.0%}",
             help="Share of reviewed picks relabeled away from the model's prediction")
    if runs["runs"]:
        st.dataframe(runs["runs"], hide_index=True, width="stretch")
    else:
        st.info("No sampler runs yet; schedule `feedback sample` or run it here.")


def main():
    actor = sign_in()
    if actor is None:
        return
    state.current_actor = actor
    start = state.get("start_page", "review")
    pages = [(review_page, "Review", ":material/task_alt:", "review"),
             (queue_page, "Queue", ":material/list:", "queue"),
             (groups_page, "Groups", ":material/join_inner:", "groups")]
    if actor.can("adjudicate"):
        pages.append((adjudication_page, "Adjudication", ":material/gavel:", "adjudication"))
    pages += [(releases_page, "Releases", ":material/deployed_code:", "releases"),
              (sampler_page, "Sampler", ":material/science:", "sampler"),
              (dashboard_page, "Dashboard", ":material/monitoring:", "dashboard")]
    navigation = [st.Page(fn, title=title, icon=icon, url_path=path, default=path == start)
                  for fn, title, icon, path in pages]
    with st.sidebar:
        st.caption(f"{ws.dataset} · signed in as {actor.name} ({actor.role})")
    try:
        st.navigation(navigation).run()
    except StoreBusy:
        st.warning("The store is busy (an ingest or export is running); this page retries when you interact.")
    except FeedbackError as exc:
        st.error(str(exc))


main()
