"""Streamlit render helpers: plain data in, widgets out; they compute nothing.

Captured text is untrusted: it is shown with `st.text` or in data frames, never as
Markdown or HTML, so a payload cannot carry links, images or scripts.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

REASON_COLORS = {"correction": "red", "error": "orange", "low_confidence": "blue", "suspected_label_error": "violet",
                 "active_learning": "green", "manual": "gray"}
STATUS_COLORS = {"new": "blue", "in review": "orange", "labeled": "green", "disputed": "red", "skipped": "gray",
                 "junk": "gray"}


def badges(reasons: list[str], status: str | None = None) -> None:
    """Reasons (and status) as coloured badges; both are the library's own codes, never captured text."""
    with st.container(horizontal=True):
        for reason in reasons:
            st.badge(reason.replace("_", " "), color=REASON_COLORS.get(reason, "gray"))
        if status:
            st.badge(status, color=STATUS_COLORS.get(status, "gray"), icon=":material/flag:")


def item_text(text: str | None) -> None:
    with st.container(border=True):
        st.text(text if text is not None else "(text purged or not captured)")


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


def queue_table(rows: list[dict], *, key: str) -> None:
    frame = pd.DataFrame(rows, columns=["item_id", "priority", "status", "reasons", "text", "pred_label", "pred_score",
                                        "corr_label", "current_label", "model_version", "last_ts"])
    st.dataframe(frame, hide_index=True, width="stretch", key=key, column_config={
        "priority": st.column_config.NumberColumn(format="%.2f"),
        "pred_score": st.column_config.ProgressColumn("confidence", min_value=0.0, max_value=1.0, format="percent"),
        "reasons": st.column_config.ListColumn("reasons"),
        "text": st.column_config.TextColumn(width="large"),
        "last_ts": st.column_config.DatetimeColumn("last seen", format="YYYY-MM-DD HH:mm"),
    })


def history_table(rows: list[dict], *, key: str) -> None:
    frame = pd.DataFrame(rows, columns=["at", "kind", "label", "reviewer", "note", "score", "batch_id"])
    st.dataframe(frame, hide_index=True, width="stretch", key=key,
                 column_config={"at": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss")})


def similar_table(rows: list[dict], *, key: str) -> None:
    frame = pd.DataFrame(rows, columns=["score", "item_id", "text", "pred_label", "current_label", "status"])
    st.dataframe(frame, hide_index=True, width="stretch", key=key,
                 column_config={"score": st.column_config.NumberColumn("similarity", format="%.0f")})


def counts_sidebar(counts: dict[str, dict]) -> None:
    st.metric("Items matching", f"{counts['total']['items']:,}")
    for name in ("reason", "status", "model_version", "source"):
        values = counts.get(name) or {}
        if values:
            st.caption(name.replace("_", " "))
            st.dataframe(pd.DataFrame({"value": list(values), "items": list(values.values())}), hide_index=True,
                         width="stretch", height=min(38 + 35 * len(values), 220))


def escape(text: str) -> str:
    """Escape Markdown in a label that goes where Streamlit renders Markdown (buttons, captions)."""
    return "".join("\\" + ch if ch in _MARKDOWN else ch for ch in text)


_MARKDOWN = set("\\`*_{}[]()<>#+-.!|~:$")
