"""Who may do what. Reviewers decide; leads also adjudicate, set gold, undo others' work and
let a release through a failing quality gate;
admins also change the taxonomy, manage users and purge data.

Users live in the workspace config (`[users.NAME]` with `role` and an optional salted
`password_hash`). A workspace without users runs open for a single local user, who acts
as admin. The library checks roles itself, so a bypassed UI changes nothing.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass

from .errors import FeedbackError, WorkspaceError
from .workspace import CONFIG_NAME, Workspace

ROLES = ("reviewer", "lead", "admin")
PERMISSIONS = {
    "decide": "reviewer",
    "add_to_queue": "reviewer",
    "adjudicate": "lead",
    "set_gold": "lead",
    "undo_others": "lead",
    "override_gates": "lead",
    "change_taxonomy": "admin",
    "manage_users": "admin",
    "purge": "admin",
}
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class PermissionDenied(FeedbackError):
    """The acting user's role does not allow the action."""


@dataclass(frozen=True)
class Actor:
    name: str
    role: str

    def can(self, action: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(PERMISSIONS[action])

    def require(self, action: str) -> None:
        if not self.can(action):
            needed = PERMISSIONS[action]
            raise PermissionDenied(f"{self.name} is a {self.role}; {action.replace('_', ' ')} needs the {needed} role")


def users(ws: Workspace) -> dict[str, dict]:
    return ws.config.get("users", {})


def actor(ws: Workspace, name: str | None) -> Actor:
    """The acting user by name: their configured role, or admin in an open workspace."""
    if not name:
        raise FeedbackError("who is acting? pass --reviewer NAME or set FEEDBACK_USER")
    configured = users(ws)
    if not configured:
        return Actor(name, "admin")
    if name not in configured:
        raise PermissionDenied(f"{name!r} is not a user of this workspace; an admin can add them with `feedback user-add`")
    return Actor(name, configured[name].get("role", "reviewer"))


def local_actor() -> Actor:
    """The single local user of an open workspace: $FEEDBACK_USER, else the login name; an admin."""
    return Actor(os.environ.get("FEEDBACK_USER") or getpass.getuser(), "admin")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def authenticate(ws: Workspace, name: str, password: str) -> Actor:
    """The user if the password matches their stored hash; raises PermissionDenied otherwise."""
    entry = users(ws).get(name)
    stored = (entry or {}).get("password_hash", "")
    if stored.startswith("scrypt$"):
        _, salt, _ = stored.split("$")
        if hmac.compare_digest(hash_password(password, salt=bytes.fromhex(salt)), stored):
            return Actor(name, entry.get("role", "reviewer"))
    raise PermissionDenied("unknown user or wrong password")


def add_user(ws: Workspace, by: Actor | None, name: str, *, role: str, password: str | None = None) -> Workspace:
    """Add a user to the config; the first user must be an admin and needs no `by`."""
    if users(ws):
        if by is None:
            raise PermissionDenied("only an admin can add users")
        by.require("manage_users")
    elif role != "admin":
        raise FeedbackError("the first user must be an admin, or nobody could manage the others")
    if role not in ROLES:
        raise FeedbackError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if not _NAME.match(name):
        raise FeedbackError(f"user name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'")
    if name in users(ws):
        raise WorkspaceError(f"user {name!r} exists already")
    lines = ["", f"[users.{name}]", f'role = "{role}"']
    if password:
        lines.append(f'password_hash = "{hash_password(password)}"')
    with open(ws.root / CONFIG_NAME, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return Workspace(ws.root)


def add_label(ws: Workspace, by: Actor, name: str, *, description: str = "", hotkey: str = "") -> Workspace:
    """Add a label to the taxonomy (admins); a fixed taxonomy accepts it from then on."""
    by.require("change_taxonomy")
    if not name or name in ("skip", "junk", "unsure"):
        raise FeedbackError(f"{name!r} cannot be a label: it is empty or names a decision (skip, junk, unsure)")
    if name in ws.taxonomy.names:
        raise WorkspaceError(f"label {name!r} is already in the taxonomy")
    lines = ["", "[[taxonomy.labels]]", f"name = {json.dumps(name)}"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in (("description", description), ("hotkey", hotkey)) if value]
    with open(ws.root / CONFIG_NAME, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return Workspace(ws.root)
