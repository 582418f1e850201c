"""The app's few pieces of browser code (Streamlit custom components v2, run in the page, no iframe).

Each is our own fixed code; what they show arrives as `data` and is put on the page as text
(`textContent`), never parsed as HTML, so captured text cannot carry markup or scripts.

- `keys`: the Review page's keyboard: `?` shows every key in an overlay, Escape leaves the taxonomy
  search box or the note field, a choice made in the search box gives the keys back at once (the
  buttons' own shortcuts ignore keys typed into a field), and the note field takes the focus when it
  opens.
- `session_cookie`: sets or clears the signed session cookie (Streamlit reads cookies, but has no
  response of its own to set one on), SameSite=Strict, Secure over HTTPS.
- `marked_rows`: a small table whose text cells mark runs of words (the similar items' differences).
"""

from __future__ import annotations

import streamlit as st

_KEYS_JS = r"""
export default function ({ data, parentElement }) {
  const root = parentElement;
  let overlay = root.querySelector(".overlay");
  if (!overlay) {
    const open = document.createElement("button");
    open.className = "open";
    open.type = "button";
    open.textContent = "Keys ?";
    open.title = "Show every key (?)";
    overlay = document.createElement("div");
    overlay.className = "overlay";
    overlay.hidden = true;
    overlay.setAttribute("role", "dialog");
    overlay.setAttribute("aria-label", "Keys");
    overlay.dataset.testid = "keys-overlay";
    open.onclick = () => { overlay.hidden = !overlay.hidden; open.blur(); };
    overlay.onclick = (e) => { if (e.target === overlay) overlay.hidden = true; };
    root.append(open, overlay);
  }
  const box = document.createElement("div");
  box.className = "box";
  const title = document.createElement("h3");
  title.textContent = "Keys";
  const table = document.createElement("table");
  for (const [key, what] of data.keys || []) {
    const row = table.insertRow();
    const k = document.createElement("kbd");
    k.textContent = key;
    row.insertCell().append(k);
    row.insertCell().textContent = what;
  }
  const hint = document.createElement("p");
  hint.textContent = "Press ? or Esc to close.";
  box.append(title, table, hint);
  overlay.replaceChildren(box);

  const managed = data.managed || [];
  const inManaged = (el) => !!el && !!el.closest && managed.some((sel) => el.closest(sel));
  const editable = (el) => !!el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
  const leaveSoon = (el) => setTimeout(() => { if (document.activeElement === el) el.blur(); }, 0);
  const onKey = (e) => {
    const target = e.composedPath ? e.composedPath()[0] : e.target;
    if (!overlay.hidden && (e.key === "Escape" || e.key === "?")) {
      overlay.hidden = true;
    } else if (e.key === "Escape" && inManaged(target)) {
      target.blur();
    } else if (e.key === "?" && !editable(target)) {
      overlay.hidden = false;
    } else {
      if (e.key === "Enter" && inManaged(target)) leaveSoon(target);
      return;
    }
    e.preventDefault();
    e.stopImmediatePropagation();
  };
  const onClick = (e) => {
    const active = document.activeElement;
    if (inManaged(active) && e.target.closest && e.target.closest('[role="option"]')) leaveSoon(active);
  };
  if (window.__feedbackKeys) window.__feedbackKeys();
  document.addEventListener("keydown", onKey, true);
  document.addEventListener("click", onClick, true);
  window.__feedbackKeys = () => {
    document.removeEventListener("keydown", onKey, true);
    document.removeEventListener("click", onClick, true);
  };
  if (data.focus) {
    let tries = 0;
    const focus = () => {
      const field = document.querySelector(`${data.focus} input, ${data.focus} textarea`);
      if (field) field.focus();
      else if (tries++ < 40) setTimeout(focus, 25);
    };
    focus();
  } else if (inManaged(document.activeElement)) {
    document.activeElement.blur();
  }
  return () => { if (window.__feedbackKeys) window.__feedbackKeys(); window.__feedbackKeys = null; };
}
"""

_KEYS_CSS = """
.open { font: inherit; font-size: 0.85rem; padding: 0.1rem 0.6rem; border-radius: 0.5rem; cursor: pointer;
        border: 1px solid rgba(49, 51, 63, 0.2); background: transparent; color: inherit; }
.overlay { position: fixed; inset: 0; background: rgba(14, 17, 23, 0.45); z-index: 1000100;
           display: flex; align-items: center; justify-content: center; }
.overlay[hidden] { display: none; }
.box { background: #fff; color: #31333f; border-radius: 0.75rem; padding: 1.25rem 1.75rem; min-width: 26rem;
       max-height: 85vh; overflow: auto; box-shadow: 0 8px 32px rgba(0, 0, 0, 0.25); }
h3 { margin: 0 0 0.75rem; font-size: 1.25rem; }
td { padding: 0.2rem 0.75rem 0.2rem 0; vertical-align: top; }
kbd { display: inline-block; min-width: 1.4rem; text-align: center; padding: 0.05rem 0.4rem;
      border: 1px solid rgba(49, 51, 63, 0.3); border-bottom-width: 2px; border-radius: 0.3rem;
      font-family: "Source Code Pro", monospace; font-size: 0.85rem; }
p { margin: 0.75rem 0 0; color: rgba(49, 51, 63, 0.6); font-size: 0.85rem; }
"""

_COOKIE_JS = r"""
export default function ({ data }) {
  if (!data || !data.name) return;
  const secure = location.protocol === "https:" ? "; Secure" : "";
  const value = data.token ? `${data.token}; Max-Age=${data.max_age}` : "; Max-Age=0";
  document.cookie = `${data.name}=${value}; Path=/; SameSite=Strict${secure}`;
}
"""

_MARKED_JS = r"""
export default function ({ data, parentElement }) {
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const name of data.columns) {
    const th = document.createElement("th");
    th.textContent = name;
    head.append(th);
  }
  const body = table.createTBody();
  for (const row of data.rows) {
    const tr = body.insertRow();
    for (const name of data.columns) {
      const cell = tr.insertCell();
      const value = row[name];
      if (Array.isArray(value)) {
        cell.className = "text";
        for (const run of value) {
          const part = document.createElement(run.differs ? "mark" : "span");
          part.textContent = run.text;
          cell.append(part);
        }
      } else {
        cell.textContent = value === null || value === undefined ? "" : String(value);
      }
    }
  }
  if (!data.rows.length) {
    const empty = body.insertRow().insertCell();
    empty.colSpan = data.columns.length;
    empty.className = "empty";
    empty.textContent = data.empty || "";
  }
  let holder = parentElement.querySelector(".rows");
  if (!holder) {
    holder = document.createElement("div");
    holder.className = "rows";
    parentElement.append(holder);
  }
  holder.replaceChildren(table);
}
"""

_MARKED_CSS = """
table { width: 100%; border-collapse: collapse; font-size: 0.875rem; }
th { text-align: left; font-weight: 400; color: rgba(49, 51, 63, 0.6); border-bottom: 1px solid rgba(49, 51, 63, 0.1);
     padding: 0.35rem 0.5rem; }
td { padding: 0.35rem 0.5rem; border-bottom: 1px solid rgba(49, 51, 63, 0.1); vertical-align: top;
     overflow-wrap: anywhere; }
td.text { white-space: pre-wrap; }
td.empty { color: rgba(49, 51, 63, 0.6); }
mark { background: rgba(255, 189, 69, 0.45); color: inherit; border-radius: 0.2rem; padding: 0 0.1rem; }
"""

keys = st.components.v2.component("feedback_keys", js=_KEYS_JS, css=_KEYS_CSS)
session_cookie = st.components.v2.component("feedback_session_cookie", js=_COOKIE_JS)
marked_rows = st.components.v2.component("feedback_marked_rows", js=_MARKED_JS, css=_MARKED_CSS)
