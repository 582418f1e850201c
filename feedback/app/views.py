"""Streamlit render helpers: plain data in, widgets out; they compute nothing.

Captured text is untrusted: it is shown with `st.text`, in data frames, or by the app's own
components as text nodes (`components`), never as Markdown or HTML, so a payload cannot carry
links, images or scripts.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from . import components

REASON_COLORS = {"correction": "red", "error": "orange", "low_confidence": "blue", "suspected_label_error": "violet",
                 "active_learning": "green", "manual": "gray"}
STATUS_COLORS = {"new": "blue", "in review": "orange", "labeled": "green", "disputed": "red", "skipped": "gray",
                 "junk": "gray"}
# Marks every system font has (DejaVu, Liberation): emoji need a colour-emoji font that an offline machine may lack.
GATE_MARKS = {"pass": "✓", "warn": "⚠", "fail": "✗", "skip": "–", "overridden": "↷"}
GATE_COLORS = {"fail": "background-color: rgba(255, 43, 43, 0.12)", "warn": "background-color: rgba(255, 189, 69, 0.18)",
               "overridden": "background-color: rgba(128, 61, 245, 0.10)"}
SHOW_MORE_AFTER = 600  # characters of an item's text shown before "Show more"


def badges(reasons: list[str], status: str | None = None) -> None:
    """Reasons (and status) as coloured badges; both are the library's own codes, never captured text."""
    with st.container(horizontal=True):
        for reason in reasons:
            st.badge(reason.replace("_", " "), color=REASON_COLORS.get(reason, "gray"))
        if status:
            st.badge(status, color=STATUS_COLORS.get(status, "gray"), icon=":material/flag:")


def item_text(text: str | None, *, key: str, limit: int = SHOW_MORE_AFTER) -> None:
    """The item's text, wrapped; a long one cut after `limit` characters until "Show more" is on."""
    with st.container(border=True, key=f"{key}-text"):
        if text is None:
            st.text("(text purged or not captured)")
            return
        long = len(text) > limit
        whole = long and st.session_state.get(f"{key}-more", False)
        st.text(text if whole or not long else text[:limit].rstrip() + " …")
        if long:
            st.toggle(f"Show more ({len(text):,} characters)", key=f"{key}-more")


def prediction_panel(row: dict, probs: dict[str, float]) -> None:
    """The model's prediction with its confidence, its top alternatives, and the user's correction."""
    left, right = st.columns(2)
    with left:
        st.caption("Model prediction")
        st.text(row.get("pred_label") or "(no prediction)")
        if row.get("pred_score") is not None:
            st.progress(float(row["pred_score"]), text=f"confidence {row['pred_score']:.0%}")
        if probs:
            frame = pd.DataFrame({"label": list(probs), "probability": list(probs.values())})
            st.dataframe(frame, hide_index=True, width="stretch",
                         column_config={"probability": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0,
                                                                                       format="percent")})
    with right:
        st.caption("User correction")
        st.text(row.get("corr_label") or "(none)")
        st.caption("Current label")
        st.text(row.get("current_label") or "(not reviewed yet)")
        st.caption("Model version · source")
        st.text(f"{row.get('model_version') or '-'} · {row.get('source') or '-'}")


def session_counter(progress: dict, *, key: str) -> None:
    """The reviewer's day: decisions done today, items left in their queue, their rate."""
    rate = progress["per_hour"]
    with st.container(horizontal=True, horizontal_alignment="right", key=key, width="content"):
        st.metric("Done today", f"{progress['done']:,}", width="content")
        st.metric("Left in my queue", f"{progress['left']:,}", width="content")
        st.metric("My rate", "-" if rate is None else f"{rate:,.0f}/h", width="content",
                  help="Your decisions of the last hour, per hour since the first of them")


def keyboard(keys: list[tuple[str, str]], *, managed: list[str], focus: str | None, item: str | None,
             choice: str | None, key: str) -> None:
    """The "Keys ?" button and overlay, and the focus rules of `components.keys`: `managed` are the CSS
    selectors of the fields Escape leaves; `focus` one to focus now; a change of `item` or `choice` gives
    the keys back to the page."""
    components.keys(key=key, data={"keys": [list(k) for k in keys], "managed": managed, "focus": focus,
                                   "item": item, "choice": choice}, width="content")


def session_cookie(command: dict | None, *, key: str) -> None:
    """Set (`token`, `max_age`) or clear (no token) the browser's session cookie `name`."""
    components.session_cookie(key=key, data=command, width="content", height=0)


def queue_table(rows: list[dict], *, key: str, on_select="rerun"):
    """The queue page's rows, sized to fit 1400 px beside the sidebar; rows can be selected (several, by the
    checkboxes) and a cell clicked (to open its item). Returns the selection event."""
    frame = pd.DataFrame(rows, columns=["item_id", "priority", "status", "reasons", "text", "pred_label", "pred_score",
                                        "corr_label", "current_label", "last_ts"])
    return st.dataframe(frame, hide_index=True, width="stretch", key=key, on_select=on_select,
                        selection_mode=["multi-row", "single-cell"], height=38 + 35 * min(len(frame), 18),
                        column_config={
        "item_id": st.column_config.TextColumn("item", width=88, pinned=True),
        "priority": st.column_config.NumberColumn("prio", format="%.2f", width=44),
        "status": st.column_config.TextColumn("status", width=68),
        "reasons": st.column_config.ListColumn("reasons", width=108),
        "text": st.column_config.TextColumn("text", width=196),
        "pred_label": st.column_config.TextColumn("predicted", width=112),
        "pred_score": st.column_config.NumberColumn("conf.", format="percent", width=52),
        "corr_label": st.column_config.TextColumn("user said", width=112),
        "current_label": st.column_config.TextColumn("label", width=112),
        "last_ts": None,
    })


def sampler_runs_table(runs: list[dict], *, key: str) -> None:
    """The sampler's runs, newest first, with their yield beside the counts it comes from (the model last; run ids
    are on the dashboard)."""
    frame = pd.DataFrame(runs, columns=["started_at", "status", "strategy", "picked", "reviewed", "relabeled", "yield",
                                        "model"])
    st.dataframe(frame, hide_index=True, width="stretch", key=key, column_config={
        "started_at": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm", width=130),
        "status": st.column_config.TextColumn(width=60), "strategy": st.column_config.TextColumn(width=90),
        "picked": st.column_config.NumberColumn(width=60), "reviewed": st.column_config.NumberColumn(width=70),
        "relabeled": st.column_config.NumberColumn(width=70),
        "yield": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent", width=110,
                                                 help="Share of the run's reviewed picks relabeled away from the "
                                                      "model's prediction"),
        "model": st.column_config.TextColumn(width=240)})


def history_table(rows: list[dict], *, key: str) -> None:
    """An item's history, narrow enough for its column at 1400 px: the time without its year, the reviewer as
    "by"; the note (its batch included) takes what is left, cut short in its cell and whole on hover."""
    frame = pd.DataFrame(rows, columns=["at", "kind", "label", "reviewer", "score", "note"])
    st.container(key=key).dataframe(frame, hide_index=True, width="stretch", key=f"{key}-table", column_config={
        "at": st.column_config.DatetimeColumn(format="MM-DD HH:mm", width=80),
        "kind": st.column_config.TextColumn(width=96), "label": st.column_config.TextColumn(width=96),
        "reviewer": st.column_config.TextColumn("by", width=60),
        "score": st.column_config.NumberColumn(format="%.2f", width=40), "note": st.column_config.TextColumn(width=120)})


def similar_table(rows: list[dict], *, key: str) -> None:
    """Similar items, the words of each text that differ from the current item's marked."""
    shown = [{"similarity": f"{r['score']:.0f}", "item": r["item_id"], "text": r["marks"],
              "predicted": r.get("pred_label"), "label": r.get("current_label"), "status": r.get("status")}
             for r in rows]
    components.marked_rows(key=key, data={"columns": ["similarity", "item", "text", "predicted", "label", "status"],
                                          "rows": shown, "empty": "No similar items."})


def counts_sidebar(counts: dict[str, dict]) -> None:
    st.metric("Items matching", f"{counts['total']['items']:,}")
    for name in ("reason", "status", "model_version", "source"):
        values = counts.get(name) or {}
        if values:
            st.caption(name.replace("_", " "))
            st.dataframe(pd.DataFrame({"value": list(values), "items": list(values.values())}), hide_index=True,
                         width="stretch", height=min(38 + 35 * len(values), 220))


def confusion_table(frame: pd.DataFrame, *, key: str) -> None:
    """Predicted -> actual label pairs, their count first so it shows at any width."""
    st.dataframe(frame, hide_index=True, width="stretch", height=280, key=key,
                 column_order=["items", "predicted", "actual", "basis"], column_config={
        "items": st.column_config.NumberColumn(width=56), "predicted": st.column_config.TextColumn(width=140),
        "actual": st.column_config.TextColumn(width=140), "basis": st.column_config.TextColumn(width=110)})


def suspects_table(frame: pd.DataFrame, *, key: str) -> None:
    st.dataframe(frame, hide_index=True, width="stretch", key=key, column_config={
        "day": st.column_config.DateColumn(format="YYYY-MM-DD")})


def gate_table(gates: list[dict], *, key: str) -> None:
    """Quality gate results: gate, status, what it found and how to fix it, example ids."""
    frame = pd.DataFrame(gates, columns=["gate", "status", "detail", "examples"])
    colors = frame["status"].map(lambda s: GATE_COLORS.get(s, ""))
    frame["status"] = frame["status"].map(lambda s: f"{GATE_MARKS.get(s, '')} {s}".strip())
    styled = frame.style.apply(lambda column: colors.tolist(), subset=["status"])
    st.dataframe(styled, hide_index=True, width="stretch", key=key, column_config={
        "gate": st.column_config.TextColumn(width=110), "status": st.column_config.TextColumn(width=90),
        "detail": st.column_config.TextColumn(width="large"), "examples": st.column_config.TextColumn(width="medium")})


def failed_gates(gates: list[dict]) -> None:
    """Each failing gate in its own line: which gate, and why."""
    for gate in gates:
        if gate["status"] == "fail":
            st.error(f"Gate **{gate['gate']}** failed", icon=":material/block:")
            st.text(gate["detail"])


def releases_table(rows: list[dict], *, key: str) -> None:
    frame = pd.DataFrame(rows, columns=["release", "examples", "created_at", "created_by", "parent", "gates",
                                        "overridden", "release_id"])
    st.dataframe(frame, hide_index=True, width="stretch", key=key, column_config={
        "examples": st.column_config.NumberColumn(format="localized", width=80),
        "created_at": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm", width=130),
        "created_by": st.column_config.TextColumn("by", width=70), "parent": st.column_config.TextColumn(width=60),
        "gates": st.column_config.TextColumn(width=170), "release_id": st.column_config.TextColumn("id")})


def load_snippets(path: str, snippets: dict[str, str], *, key: str) -> None:
    """Where a release is, and copyable code that loads it (each block has a copy button)."""
    st.caption("Folder")
    st.code(path, language=None, wrap_lines=True)
    tabs = st.tabs(["pandas", "DuckDB", "datasets"], key=key)
    for tab, name in zip(tabs, ("pandas", "duckdb", "datasets"), strict=True):
        with tab:
            st.code(snippets[name], language="python", wrap_lines=True)


def diff_view(diff: dict, *, key: str) -> None:
    """What changed between two releases: counts, relabeled from -> to, the label mix before and after."""
    counts, examples = diff["counts"], diff["examples"]
    with st.container(horizontal=True, key=f"{key}-counts"):
        st.metric("Examples", f"{examples['after']:,}", delta=f"{examples['after'] - examples['before']:+,}",
                  border=True)
        for name, value in counts.items():
            st.metric(name.replace("_", " ").capitalize(), f"{value:,}", border=True)
    left, right = st.columns(2)
    with left:
        st.caption(f"Relabeled, from {diff['from']} to {diff['to']}")
        if len(diff["relabeled"]):
            st.dataframe(diff["relabeled"], hide_index=True, width="stretch", key=f"{key}-relabeled")
        else:
            st.text("No example changed its label.")
        st.caption("Split sizes")
        st.dataframe(diff["splits"], hide_index=True, width="stretch", key=f"{key}-splits")
    with right:
        st.caption("Label mix, most changed first")
        st.dataframe(diff["labels"], hide_index=True, width="stretch", height=260, key=f"{key}-labels")
    moved = diff["mix"].loc[diff["mix"]["label"].isin(diff["labels"]["label"].head(15))]
    st.caption("Examples per label, before and after (the 15 labels that changed most)")
    st.bar_chart(moved, x="label", y="examples", color="release", stack=False, horizontal=True, height=420)


def model_evaluation(screen: dict, *, key: str) -> None:
    """The reference model on a release: accuracy and macro-F1 (against the parent's), the confusion matrix as a
    heat map, and each label's F1 against the parent's."""
    parent = screen["parent_scores"]
    with st.container(horizontal=True, key=f"{key}-scores"):
        for name, field in (("Accuracy", "accuracy"), ("Macro-F1", "macro_f1")):
            st.metric(name, f"{screen[field]:.3f}", border=True,
                      delta=f"{screen[field] - parent[field]:+.3f}" if parent else None)
    st.caption(f"{screen['model']} trained on the {screen['train']:,} train examples of {screen['release']}, scored "
               f"on its {screen['test']:,} test examples" + (f"; changes against {screen['parent']}" if parent else ""))
    if screen["parent_error"]:
        st.caption(f"No scores for {screen['parent']}: {screen['parent_error']}")
    confusion_heatmap(screen["cells"], screen["labels"], key=f"{key}-confusion")
    st.caption("F1 per label" + (f", against {screen['parent']}, most fallen first" if parent else ""))
    st.dataframe(screen["f1"], hide_index=True, width="stretch", key=f"{key}-f1",
                 column_order=["label", "f1", "parent_f1", "change", "precision", "recall", "support"] if parent
                 else ["label", "f1", "precision", "recall", "support"],
                 column_config={"parent_f1": st.column_config.NumberColumn("parent F1", format="%.3f"),
                                "change": st.column_config.NumberColumn(format="%+.3f"),
                                **{c: st.column_config.NumberColumn(format="%.3f") for c in ("f1", "precision", "recall")}})


def confusion_heatmap(cells: pd.DataFrame, labels: list[str], *, key: str) -> None:
    """A confusion matrix (rows of actual, predicted, examples) as a heat map: true labels down, predicted across,
    both in `labels` order; counts written in the cells while they fit."""
    side = min(max(36 * len(labels), 240), 800)
    axis = {"type": "nominal", "sort": labels, "axis": {"labelLimit": 180}}
    layers = [{"mark": "rect", "encoding": {
        "color": {"field": "examples", "type": "quantitative", "scale": {"type": "sqrt", "scheme": "blues"}},
        "tooltip": [{"field": "actual", "title": "true label"}, {"field": "predicted"}, {"field": "examples"}]}}]
    if len(labels) <= 20:
        top = int(cells["examples"].max()) if len(cells) else 0
        layers.append({"mark": {"type": "text", "fontSize": 11}, "encoding": {"text": {"field": "examples"}, "color": {
            "condition": {"test": f"datum.examples > {top / 2}", "value": "white"}, "value": "black"}}})
    spec = {"encoding": {"x": {"field": "predicted", **axis}, "y": {"field": "actual", "title": "true label", **axis}},
            "layer": layers, "width": side, "height": side, "autosize": {"type": "pad"}}  # the cells' size; labels beside
    st.vega_lite_chart(cells, spec, width="content", key=key)


def escape(text: str) -> str:
    """Escape Markdown in a label that goes where Streamlit renders Markdown (buttons, captions)."""
    return "".join("\\" + ch if ch in _MARKDOWN else ch for ch in text)


_MARKDOWN = set("\\`*_{}[]()<>#+-.!|~:$")
