"""The feedback workbench: triage, relabel, review and release in a browser.

Run it with `feedback demo`, or `FEEDBACK_WORKSPACE=ws streamlit run app.py`. Every action is
one library call; this script composes pages, caches data (never connections) and renders.
"""

import streamlit as st

import feedback
from feedback import learn, release, review, roles
from feedback.app import screens, views
from feedback.errors import FeedbackError, StoreBusy
from feedback.review import taxonomy

st.set_page_config(page_title="Feedback workbench", page_icon="📝", layout="wide")


ws = feedback.find_workspace()  # $FEEDBACK_WORKSPACE or the current folder; re-read each run, so config edits apply
ROOT = str(ws.root)
COOKIE = roles.session_cookie(ws)
state = st.session_state
state.setdefault("passed", [])
state.setdefault("flash", None)
state.setdefault("first", None)  # the item to show next: the one an undo brought back, or a row opened in the queue
state.setdefault("seq", 0)  # counts the items shown, so each gets fresh widgets (nothing carries over)
state.setdefault("note", None)
state.setdefault("note_open", False)


BUSY = "The store is busy (an ingest or export is running); this page retries when you interact."


def sign_in() -> roles.Actor | None:
    """The signed-in reviewer; a workspace without users runs open for the local user.

    The session token (kept in a cookie, so a reload keeps the sign-in) is checked on every run. Users live
    in the store: while it is busy the page says so and stops, and nobody is signed out.
    """
    try:
        return signed_in()
    except StoreBusy:
        st.warning(BUSY)
        st.stop()


def signed_in() -> roles.Actor | None:
    if not roles.users(ws):
        return roles.local_actor()
    token = state.get("session_token")
    if token is None and not state.get("cookie_read"):
        state.cookie_read = True  # the cookie of the page load, read once: after a sign-out it is stale
        token = st.context.cookies.get(COOKIE)
        token = token if isinstance(token, str) else None  # (AppTest has no cookies, only a stand-in)
    notice = None
    if token:
        try:
            actor = roles.resume_session(ws, token)
            state.session_token = token
            return actor
        except StoreBusy:
            raise
        except FeedbackError as exc:
            state.session_token = None
            state.cookie = {"name": COOKIE, "token": None}
            notice = str(exc)
    with st.form("sign-in", width=420):
        st.subheader("Sign in")
        if notice or state.get("signed_out"):
            st.info(notice[:1].upper() + notice[1:] + "." if notice else "You signed out.")
        name = st.text_input("User")
        password = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in", type="primary"):
            try:
                actor = roles.authenticate(ws, name, password)
                session = roles.start_session(ws, actor)
            except FeedbackError as exc:
                st.error(str(exc))
            else:
                state.session_token = session["token"]
                state.cookie = {"name": COOKIE, "token": session["token"], "max_age": session["seconds"]}
                state.signed_out = False
                st.rerun()
    return None


def still_signed_in() -> bool:
    token = state.get("session_token")
    try:
        if not token:
            return not roles.users(ws)
        roles.resume_session(ws, token)
    except StoreBusy:
        return True  # asked again on the next key; meanwhile the page says the store is busy
    except FeedbackError:
        return False
    return True


def sign_out():
    roles.end_session(ws, state.get("session_token") or "")
    state.session_token = None
    state.cookie = {"name": COOKIE, "token": None}
    state.signed_out = True
    state.passed = []


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


def shown_errors(page, *args):
    """Run a page; its store busy or user-facing error is shown in place of the rest of it."""
    try:
        page(*args)
    except StoreBusy:
        st.warning(BUSY)
    except FeedbackError as exc:
        st.error(str(exc))


def show_flash() -> None:
    if state.flash:
        kind, message = state.flash
        getattr(st, kind)(message)
        state.flash = None


def decide(actor, item_id, label, based_on):
    if act(review.decide, ws, actor, item_id, label, note=state.note, based_on=based_on, check_stale=True):
        state.last_item = item_id


def undo(actor):
    done = act(review.undo_last, ws, actor)
    if done:
        state.passed = [i for i in state.passed if i != done["item_id"]]
        state.first = done["item_id"]
        state.flash = ("info", f"Undid your last decision on {done['item_id']}; it is back for you to decide again.")


def pass_over(actor, item_id):
    act(review.release_claim, ws, actor, item_id)
    state.passed = [*state.passed, item_id]


def open_note():
    state.note_open = True


def keep_note(key):
    state.note = (state.get(key) or "").strip() or None
    state.note_open = False


def review_page():
    review_item(state.current_actor)


@st.fragment
def review_item(actor):
    """The Review page below the navigation: a key reruns only this (the sidebar and navigation stay drawn), after
    checking the session still holds (signed out elsewhere, expired: the whole app reruns, to the sign-in)."""
    if not still_signed_in():
        st.rerun(scope="app")
    shown_errors(review_body, actor)  # a fragment shows its own errors


def review_body(actor):
    wanted = state.first
    screen = screens.review_screen(ws, actor, exclude=state.passed, first=wanted, details=False)
    item = screen["item"]

    def details():  # asked for once the item is drawn: the next item shows sooner
        return screens.review_details(ws, actor, item, exclude=state.passed, claims=state.get("show-claims", False),
                                      timezone=st.context.timezone)
    state.first = None
    if item is not None and item["item_id"] != state.get("shown_item"):
        state.shown_item, state.seq, state.note, state.note_open = item["item_id"], state.seq + 1, None, False
    seq = state.seq
    header = st.container(horizontal=True, vertical_alignment="center")
    header.title("Review")
    with st.container():  # a notice or none, in one place: what follows keeps its place on the page between runs
        show_flash()
        if wanted and item is not None and item["item_id"] != wanted:
            st.info(f"{wanted} is being reviewed by someone else now; here is your next item.")
    if item is None:
        st.success("Nothing left in the queue for you. New items arrive with the next ingest or sampler run.")
        st.button("Undo my last decision", shortcut="Z", on_click=undo, args=(actor,))
        with header:
            views.session_counter(details()["progress"], key="session-counter")
        return
    item_id, based_on = item["item_id"], item["last_decision_id"]
    with st.container(horizontal=True, vertical_alignment="center"):
        st.caption(f"Item {item_id} · priority {item['priority']:.2f} · claimed by {item['claimed_by']}")
        choice = state.get(f"any-label-{seq}")
        views.keyboard(screen["keys"], managed=['[class*="st-key-any-label-"]', '[class*="st-key-note-"]'],
                       focus=f".st-key-note-{seq}" if state.note_open else None, item=item_id, choice=choice,
                       key="keys")
    views.badges(item["reasons"], item["status"])
    views.item_text(item["text"], key=f"item-{seq}")
    views.prediction_panel(item, screen["probs"])
    quick = screen["quick"]
    st.caption("Label it: press the key shown on a button · ? shows every key")
    with st.container(horizontal=True, key="quick-labels"):
        for number, label in enumerate(quick, start=1):
            st.button(views.escape(label), key=f"quick-{number}", shortcut=str(number),
                      type="primary" if number == 1 else "secondary",
                      on_click=decide, args=(actor, item_id, label, based_on))
        for name, key in screen["hotkeys"].items():
            st.button(views.escape(name), key=f"hot-{name}", shortcut=key,
                      on_click=decide, args=(actor, item_id, name, based_on))
    with st.container(horizontal=True, vertical_alignment="bottom"):
        choice = st.selectbox("Any label", sorted(ws.taxonomy.offered) or quick, index=None, key=f"any-label-{seq}",
                              placeholder="Search the taxonomy", width=300)
        st.button("Label", shortcut="L", disabled=choice is None, on_click=decide,
                  args=(actor, item_id, choice, based_on))
        for text, key, kind in (("Skip", "S", "skip"), ("Junk", "J", "junk"), ("Unsure", "U", "unsure")):
            st.button(text, shortcut=key, on_click=decide, args=(actor, item_id, kind, based_on))
        st.button("Note", shortcut="M", on_click=open_note, help="Write a note; Enter keeps it for your decision")
        st.button("Undo", shortcut="Z", on_click=undo, args=(actor,))
        st.button("Next", shortcut="N", on_click=pass_over, args=(actor, item_id))
    if state.note_open:
        st.text_input("Note (Enter keeps it; it is saved with your next decision)", value=state.note or "",
                      key=f"note-{seq}", on_change=keep_note, args=(f"note-{seq}",), width=720)
    elif state.note:
        st.caption("Note, saved with your next decision (M to change it):")
        st.text(state.note)
    screen = details()
    with header:
        views.session_counter(screen["progress"], key="session-counter")
    left, right = st.columns([5, 6])  # the history's six columns fit at 1400 px
    with left:
        st.subheader("Similar items")
        views.similar_table(screen["similar"], key="similar")
    with right:
        with st.container(horizontal=True, vertical_alignment="bottom"):
            st.subheader("History")
            st.toggle(f"Show claims ({screen['hidden_claims']} hidden)" if screen["hidden_claims"] else "Show claims",
                      key="show-claims")
        views.history_table(screen["history"], key="history")


def label_selected(actor, rows, key):
    label = state.get(key)
    if not label:
        return
    done = act(review.decide_many, ws, actor, [(n, {"item_id": r["item_id"], "label": label,
                                                   "expect": r["last_decision_id"] or ""})
                                               for n, r in enumerate(rows, start=1)])
    if done:
        problems = "; ".join(f"{e['item_id']}: {e['message']}" for e in done["errors"])
        state.flash = ("warning" if problems else "success",
                       f"Labeled {done['decided']} items as {label}."
                       + (f" {done['waiting']} of them wait for a second review or a lead." if done["waiting"] else "")
                       + (f" Not labeled: {problems}" if problems else ""))


def queue_page():
    actor = state.current_actor
    st.title("Queue")
    show_flash()
    offered = screens.queue_options(ws)
    with st.sidebar:
        st.header("Filters")
        flt = screens.queue_filter(
            reason=st.selectbox("Reason", list(offered["reason"]), index=None),
            status=st.selectbox("Status", review.STATUSES, index=None),
            pred_label=st.selectbox("Predicted label", list(offered["pred_label"]), index=None),
            corr_label=st.selectbox("Corrected label", list(offered["corr_label"]), index=None),
            current_label=st.selectbox("Current label", list(offered["current_label"]), index=None),
            model_version=st.selectbox("Model version", list(offered["model_version"]), index=None),
            source=st.selectbox("Source", list(offered["source"]), index=None),
            since=st.date_input("Seen since", value=None, key="since"),
            until=st.date_input("Seen until (inclusive)", value=None, key="until"),
            text=st.text_input("Text contains") or None,
        )
        sort = st.segmented_control("Sort by", ["priority", "time"], default="priority") or "priority"
    page = state.get("queue-page", 1)
    screen = screens.queue_screen(ws, flt, sort=sort, page=page)
    with st.sidebar:
        views.counts_sidebar(screen["matching"])
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.number_input(f"Page (of {screen['pages']:,})", min_value=1, max_value=screen["pages"], key="queue-page",
                        width=160)
        st.caption("Click a cell to open its item in Review; tick rows to label them at once.")
    rows = screen["rows"]
    event = views.queue_table(rows, key=f"queue-{screen['page']}-{sort}")
    cells = event.selection.cells
    if cells:
        state.first = rows[cells[0][0]]["item_id"]
        st.switch_page(state.review_page)
    chosen = [rows[i] for i in event.selection.rows]
    if chosen:
        with st.container(horizontal=True, vertical_alignment="bottom", key="bulk"):
            st.selectbox(f"Label the {len(chosen)} selected items as", sorted(ws.taxonomy.offered)
                         or sorted({r["pred_label"] for r in chosen if r["pred_label"]}), index=None, key="bulk-label",
                         width=360)
            st.button(f"Label {len(chosen)} items", type="primary", key="bulk-apply",
                      disabled=not state.get("bulk-label"), on_click=label_selected,
                      args=(actor, chosen, "bulk-label"))


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
        label = st.selectbox("Label for the whole group", sorted(ws.taxonomy.offered) or list(group["predicted"]),
                             index=None, key="group-label", width=360)
        st.button(f"Relabel {len(preview)} items", type="primary", disabled=label is None, key="relabel-group",
                  on_click=relabel, args=(actor, group["item_ids"], label))
        st.button("Not duplicates", key="not-duplicates", help="These texts differ in what they ask: stop grouping them",
                  on_click=not_duplicates, args=(actor, group["item_ids"]))
    batches = screens.recent_batches(ws)
    if batches:
        st.subheader("Recent batches")
    for batch in batches:
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
            views.item_text(entry["text"], key=f"adj-text-{entry['item_id']}")
            st.dataframe([{"reviewer": r, "decision": d} for r, d in entry["decisions"].items()], hide_index=True)
            key = f"adj-{entry['item_id']}"
            with st.container(horizontal=True, vertical_alignment="bottom"):
                st.selectbox("Final label", sorted(ws.taxonomy.offered) or sorted(set(entry["decisions"].values())),
                             index=None, key=key, width=360)
                st.button("Settle", key=f"settle-{entry['item_id']}", on_click=adjudicate,
                          args=(actor, entry["item_id"], key))


@st.cache_data(ttl=30, show_spinner=False)
def cached_dashboard(root: str) -> dict:
    return screens.dashboard_screen(feedback.Workspace(root))


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
        st.subheader("Sampler yield per run")
        if len(data["sampler"]):
            runs = data["sampler"].tail(12)
            st.bar_chart(runs, x="run", y="yield %", horizontal=True, height=min(240, 90 + 28 * len(runs)))
            st.caption("Share of each run's reviewed picks that reviewers relabeled away from the model's prediction")
        else:
            st.info("No sampler runs yet.")
    left, right = st.columns(2)
    with left:
        st.subheader("Most frequent confusions")
        views.confusion_table(data["confusion"], key="confusions")
    with right:
        st.subheader("Suspected label errors")
        if len(data["suspects"]):
            st.bar_chart(data["suspects_by_day"], x="day", y="items", color="suspects", stack=False, height=220)
            views.suspects_table(data["suspects"], key="suspects")
        else:
            st.info("No suspected label errors found yet; schedule `feedback suspects`.")
    with st.expander("Sampler runs", expanded=False):
        st.dataframe(data["sampler"], hide_index=True, width="stretch")
    if agreement["pairs"] or agreement["gold"]:
        st.subheader("Agreement and gold accuracy")
        st.dataframe(agreement["pairs"], hide_index=True)
        st.dataframe(agreement["gold"], hide_index=True)
    drift_section(data["drift"])


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
        st.subheader(f"Label mix: predictions of {drift['model_version']} and the release" if drift["model_version"]
                     else "Label mix of the release")
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


def create_release(actor, override=(), reason_key=None):
    reason = state.get(reason_key) if reason_key else None
    try:
        made = release.create_release(ws, if_changed=True, by=actor, override=tuple(override), reason=reason,
                                      hooks="background")  # a training run may take hours: the page does not wait
    except release.GateFailed as exc:
        state.release_gates = act(screens.gate_check, ws)
        state.flash = state.flash or ("error", "The quality gates stopped this release; nothing was written. "
                                               "See which and why below.")
        state.gate_failure = str(exc)
        return
    except StoreBusy:
        state.flash = ("warning", "The store is busy (an ingest or export is running); try again in a moment.")
        return
    except FeedbackError as exc:
        state.flash = ("error", str(exc))
        return
    state.release_gates = None
    if made.get("created", True):  # show the new release and its diff from its parent
        new = f"{made['dataset']}/{made['version']}"
        parent = made.get("parent") and f"{made['dataset']}/{made['parent']['version']}"
        for key, ref in (("release-ref", new), ("diff-to", new), ("diff-from", parent)):
            if key in state and ref:  # set, not popped: a popped widget takes back the value the browser holds;
                state[key] = ref      # one not drawn yet defaults to these
    state.flash = ("success", f"Released {made['dataset']} {made['version']}." if made.get("created", True)
                   else "Nothing changed since the last release; no release made.")


def verify(ref):
    state.verified = act(release.verify_release, ws, ref)


def releases_page():
    actor = state.current_actor
    st.title("Releases")
    show_flash()
    st.button("Create a release from the trusted labels", type="primary", disabled=not actor.can("release"),
              help="Leads and admins; quality gates run first", on_click=create_release, args=(actor,))
    if state.get("release_gates"):
        gates = state.release_gates
        views.failed_gates(gates)
        views.gate_table(gates, key="candidate-gates")
        if actor.can("override_gates"):
            with st.container(border=True, key="override"):
                st.caption("Let the release through the failing gates: leads and admins, with a reason that is "
                           "recorded in the release")
                failing = [g["gate"] for g in gates if g["status"] == "fail"]
                chosen = st.multiselect("Gates to override", failing, default=failing, key="override-gates")
                st.text_area("Why (required)", key="override-reason", height=80)
                st.button("Create the release with these gates overridden", key="override-create",
                          disabled=not chosen or not (state.get("override-reason") or "").strip(),
                          on_click=create_release, args=(actor, chosen, "override-reason"))
    screen = screens.releases_screen(ws, ref=state.get("release-ref"), old=state.get("diff-from"),
                                     new=state.get("diff-to"))
    if not screen["releases"]:
        st.info("No releases yet.")
        return
    for failure in screen["hook_failures"]:
        st.warning(f"After the latest release, the {failure['name']} hook `{failure['target']}` failed "
                   f"({failure['detail']}); see `feedback hooks --log`.")
    views.releases_table(screen["releases"], key="releases")
    refs = screen["refs"]
    with st.container(horizontal=True, vertical_alignment="bottom"):
        ref = st.selectbox("Release", refs, index=refs.index(screen["ref"]), key="release-ref", width=300)
        st.button(f"Verify {ref}", key="verify", on_click=verify, args=(ref,),
                  help="Recompute every checksum and digest, and check them against the store's record")
    verified = state.get("verified")
    if verified and verified["location"] == screen["path"]:
        if verified["ok"]:
            st.success(f"{ref} checks out: every file matches its SHA256SUMS"
                       + (" and the store's record." if verified["anchor"].get("checked") else
                          f" ({verified['anchor'].get('why')})."))
        else:
            st.error(f"{ref} does not verify:")
            st.dataframe(verified["problems"], hide_index=True, width="stretch")
    if screen["overrides"]:
        o = screen["overrides"]
        st.warning(f"Released by {o['by']} with {', '.join(o['gates'])} overridden.")
        st.text(f"Reason: {o['reason']}")
    st.subheader(f"Load {ref}")
    views.load_snippets(screen["path"], screen["snippets"], key="load")
    st.subheader(f"Quality gates of {ref}")
    views.gate_table(screen["gates"], key="release-gates")
    with st.expander(f"Data card of {ref}"):
        st.markdown(release.release_card(ws, ref))
    if screen["diff"]:
        diff = screen["diff"]
        st.subheader(f"What changed from {diff['from']} to {diff['to']}")
        with st.container(horizontal=True):
            st.selectbox("From", refs, index=refs.index(diff["from"]), key="diff-from", width=300)
            st.selectbox("To", refs, index=refs.index(diff["to"]), key="diff-to", width=300)
        views.diff_view(diff, key="diff")
    evaluation_section(ref)


@st.cache_data(ttl=600, show_spinner="Training the reference model...")
def cached_evaluation(root: str, ref: str) -> dict:
    return screens.evaluation_screen(feedback.Workspace(root), ref)


def evaluate_release(ref):
    state.evaluated = ref


def evaluation_section(ref):
    """The reference model on the selected release and its parent: trained on demand, as `feedback evaluate`."""
    st.subheader(f"The reference model on {ref}")
    if state.get("evaluated") != ref:
        st.button(f"Evaluate {ref}", key="evaluate", on_click=evaluate_release, args=(ref,),
                  help="Train the reference model on its train split and score it on its test split, and the same "
                       "for its parent release (a few seconds on a large release)")
        return
    try:
        evaluation = cached_evaluation(ROOT, ref)
    except FeedbackError as exc:
        st.info(str(exc))
        return
    views.model_evaluation(evaluation, key="evaluation")


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
        views.sampler_runs_table(runs["runs"], key="sampler-runs")
    else:
        st.info("No sampler runs yet; schedule `feedback sample` or run it here.")


def apply_change(actor, plan, note_key):
    kind, labels, into = plan
    made = act(taxonomy.change, ws, actor, kind, list(labels), list(into), note=state.get(note_key) or None)
    if made:
        state.flash = ("success", f"Applied {made['change_id']}: {taxonomy.describe(made)} "
                                  f"({made['items']} items touched).")
        state.taxonomy_preview = None


def undo_change(actor, change_id):
    if act(taxonomy.undo_change, ws, actor, change_id):
        state.flash = ("success", f"Undid {change_id}: its items have the labels they had before.")


def taxonomy_page():
    actor = state.current_actor
    st.title("Taxonomy")
    show_flash()
    overview = taxonomy.label_overview(ws)
    st.dataframe(overview, hide_index=True, key="taxonomy-labels",
                 column_config={"id": "class id", "items": "items labeled now", "note": "why it takes no new labels"})
    st.subheader("Change the taxonomy")
    kind = st.segmented_control("Change", taxonomy.KINDS, default="rename", key="taxonomy-kind") or "rename"
    usable = [r["label"] for r in overview if r["status"] != "retired"]
    if kind == "merge":
        labels = st.multiselect("Labels to merge", usable, key="taxonomy-labels-from", width=500)
    else:
        labels = [name] if (name := st.selectbox("Label", usable, index=None, key="taxonomy-label-from",
                                                 width=500)) else []
    asked = {"rename": "New name", "merge": "Into (an existing label keeps its id)",
             "split": "Into (two or more new labels, comma-separated)"}.get(kind)
    into = [n.strip() for n in st.text_input(asked, key=f"taxonomy-into-{kind}", width=500).split(",")] if asked else []
    st.text_input("Note (optional)", key="taxonomy-note", width=500)
    plan = (kind, tuple(labels), tuple(n for n in into if n))
    if st.button("Preview", key="taxonomy-preview-button", disabled=not labels):
        state.taxonomy_preview = None
        try:
            state.taxonomy_preview = (plan, taxonomy.preview(ws, kind, labels, plan[2]))
        except FeedbackError as exc:
            st.error(str(exc))
    shown = state.get("taxonomy_preview")
    if shown and shown[0] == plan:
        counts = shown[1]
        st.text(f"Preview, nothing applied yet: {taxonomy.describe(counts)}")
        with st.container(horizontal=True, key="taxonomy-counts"):
            for what, key in (("Items relabeled", "relabeled"), ("Items queued", "queued"), ("Decisions", "decisions"),
                              ("Imports", "imports"), ("Gold answers", "gold")):
                st.metric(what, f"{counts[key]:,}", border=True)
        if counts["new_labels"]:
            st.text(f"New labels, with new class ids: {', '.join(counts['new_labels'])}")
        st.button("Apply", type="primary", key="taxonomy-apply", on_click=apply_change,
                  args=(actor, plan, "taxonomy-note"))
    st.subheader("Change log")
    log = taxonomy.changes(ws)
    if not log:
        st.info("No taxonomy changes yet.")
    for change in reversed(log):
        with st.container(border=True, horizontal=True, vertical_alignment="center"):
            st.text(f"{change['change_id']} · {taxonomy.describe(change)} · by {change['actor']} "
                    f"{change['changed_at']:%Y-%m-%d %H:%M} · {change['items']} items"
                    f"{' · ' + change['note'] if change['note'] else ''}")
            if change["undone_at"]:
                st.text(f"undone by {change['undone_by']} {change['undone_at']:%Y-%m-%d %H:%M}")
            else:
                st.button("Undo", key=f"taxonomy-undo-{change['change_id']}", on_click=undo_change,
                          args=(actor, change["change_id"]))


def runs_page():
    st.title("Runs")
    screen = screens.runs_screen(ws)
    if not screen["rows"]:
        st.info("No runs yet: `feedback run` (from cron or a systemd timer) runs the loop and records each run here.")
        return
    st.dataframe(screen["rows"], hide_index=True, width="stretch", key="runs")
    for run in screen["runs"][:10]:
        with st.expander(run["title"]):
            st.dataframe(run["stages"], hide_index=True, width="stretch")


def main():
    actor = sign_in()
    if actor is not None:
        state.current_actor = actor
        start = state.get("start_page", "review")
        pages = [(review_page, "Review", ":material/task_alt:", "review"),
                 (queue_page, "Queue", ":material/list:", "queue"),
                 (groups_page, "Groups", ":material/join_inner:", "groups")]
        if actor.can("adjudicate"):
            pages.append((adjudication_page, "Adjudication", ":material/gavel:", "adjudication"))
        if actor.can("change_taxonomy"):
            pages.append((taxonomy_page, "Taxonomy", ":material/category:", "taxonomy"))
        pages += [(releases_page, "Releases", ":material/deployed_code:", "releases"),
                  (sampler_page, "Sampler", ":material/science:", "sampler"),
                  (runs_page, "Runs", ":material/schedule:", "runs"),
                  (dashboard_page, "Dashboard", ":material/monitoring:", "dashboard")]
        navigation = [st.Page(fn, title=title, icon=icon, url_path=path, default=path == start)
                      for fn, title, icon, path in pages]
        state.review_page = navigation[0]
        with st.sidebar:
            st.caption(f"{ws.dataset} · signed in as {actor.name} ({actor.role})")
            if roles.users(ws):
                st.button("Sign out", key="sign-out", on_click=sign_out, icon=":material/logout:")
        shown_errors(st.navigation(navigation).run)
    views.session_cookie(state.get("cookie"), key="session-cookie")


main()
