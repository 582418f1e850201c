"""Who may do what, and who is acting. Reviewers decide; leads also adjudicate, set gold, undo
others' work, change the taxonomy, publish releases and let one through a failing quality gate;
admins also manage users and purge data.

Users live in the store (migration `014_identity`), so every process on the store's URL (app replicas,
API servers, the CLI on any machine) sees the same ones: each with a role, a salted scrypt password
hash and personal API tokens (stored as SHA-256 hashes, revocable, found by one indexed lookup of the
hash). A workspace without users runs open: whoever acts is an admin, under any name.

In a workspace with users, the library's acting functions take only an `Actor` that proved who
it is in this process (`authenticate` with a password, `authenticate_token`), and check the
user's current role in the store on every action; a hand-made `Actor("anyone", "admin")` is refused.

Signing in with a password is limited: after `[sign_in] max_failures` (5) wrong passwords for one
user name within `window_seconds` (60), that name is locked out until the oldest of them is older
than the window, whatever the password; a right password clears the count. The count is kept in the
store, and each attempt is counted before its password is checked, so processes signing in at once
cannot try more between them. The app keeps a sign-in across reloads with a session token
(`start_session`): the user, an expiry (`session_hours`, 12) and a random id, signed with HMAC-SHA256
by a key of the workspace kept in the store; `resume_session` checks it on every page load and
`end_session` signs it out for good, in every process. A token also ends when the user's password
changes or the user is removed.

A workspace made before kept these in `users.json` and `sessions.json` beside feedback.toml: the first
use of this module moves them into the store in one transaction (users, password hashes, tokens with
their expiry and revocation, the session key, so open sessions hold, the wrong-password counts of the
window and the sessions ended early), adding only what the store lacks, so two processes moving at once,
or a move cut short and done again, change nothing more; the files are then renamed
`users.json.moved` and `sessions.json.moved` (mode 0600 kept): delete them once the store is backed up.

The honest boundary: these checks hold for everyone who goes through the library, the CLI, the app or
the HTTP endpoint. Whoever can write the store can bypass them all, and whoever can read it can read
the password hashes (scrypt: only guessing, slowly, finds a password) and the session key (which signs a
session for anyone): guard the embedded file and the workspace folder with file permissions. On the
team store, database roles are the wall (`store.grants`): the roles of processes that sign users in
(reviewer: the app and the CLI; release; loop) read the secrets, and the reviewer role adds users and
tokens, so their database passwords are worth an admin's; the ingest and sampler roles read users and
roles only, never a hash or the key. A process whose role may not add users cannot do the move.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import time
import weakref
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import FeedbackError, StoreError, WorkspaceError
from .workspace import CONFIG_NAME, Workspace, toml_string

ROLES = ("reviewer", "lead", "admin")
PERMISSIONS = {
    "decide": "reviewer",
    "add_to_queue": "reviewer",
    "import_labels": "lead",
    "adjudicate": "lead",
    "set_gold": "lead",
    "undo_others": "lead",
    "release": "lead",
    "override_gates": "lead",
    "change_taxonomy": "lead",  # leads own what labels mean: every change is logged and undoable
    "manage_users": "admin",
    "purge": "admin",
}
USERS_FILE, SESSIONS_FILE = "users.json", "sessions.json"  # where a workspace made before kept them
MOVED = ".moved"  # the suffix they take once moved into the store
SIGN_IN_DEFAULTS = {"max_failures": 5, "window_seconds": 60, "session_hours": 12}
TOKEN_PREFIX = "fbk"
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_SYSTEM = "system"  # what a system actor (the sampler, the label-error finder) is signed in to
_SIGNED_IN: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Actor -> workspace root or _SYSTEM


class PermissionDenied(FeedbackError):
    """The acting user's role does not allow the action, or they have not proved who they are."""


class SignInLocked(PermissionDenied):
    """Too many wrong passwords for this user name lately; sign-in waits until the window has passed."""


@dataclass(frozen=True, eq=False)
class Actor:
    """Who is acting. Only actors made by this module count where a workspace has users."""

    name: str
    role: str

    def can(self, action: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(PERMISSIONS[action])

    def require(self, ws: Workspace, action: str) -> None:
        """Refuse unless this actor is signed in to `ws` (any actor, in an open workspace) and may do `action`."""
        role = self.role
        if _SIGNED_IN.get(self) != _SYSTEM:
            found = _store(ws).rows("SELECT count(*) > 0 AS anyone, max(role) FILTER (WHERE user_name = ?) AS role "
                                    "FROM users", [self.name])[0]
            if found["anyone"] and _SIGNED_IN.get(self) != ws.root:
                raise PermissionDenied(f"{self.name} has not signed in to this workspace: sign in with a password "
                                       "or an API token (roles.authenticate, $FEEDBACK_PASSWORD, $FEEDBACK_TOKEN)")
            if found["anyone"]:
                role = found["role"]
                if role is None:
                    raise PermissionDenied(f"{self.name!r} is no longer a user of this workspace")
        if ROLES.index(role) < ROLES.index(PERMISSIONS[action]):
            raise PermissionDenied(f"{self.name} is a {role}; {action.replace('_', ' ')} needs the "
                                   f"{PERMISSIONS[action]} role")


def system_actor(name: str) -> Actor:
    """An actor for a scheduled job (it may queue items, in any workspace, and nothing more)."""
    return _signed_in(Actor(name, "reviewer"), _SYSTEM)


def users(ws: Workspace) -> dict[str, dict]:
    """The workspace's users by name, each {"role"} (empty: the workspace runs open); never a secret of theirs."""
    rows = _store(ws).rows("SELECT user_name, role FROM users ORDER BY added_at, user_name")
    return {r["user_name"]: {"role": r["role"]} for r in rows}


def actor(ws: Workspace, name: str | None) -> Actor:
    """In an open workspace, the acting user by name (an admin). A workspace with users needs a sign-in."""
    if not name:
        raise FeedbackError("who is acting? pass --reviewer NAME or set FEEDBACK_USER")
    if users(ws):
        raise PermissionDenied("this workspace has users: sign in with a password or an API token")
    return Actor(name, "admin")


def local_actor() -> Actor:
    """The single local user of an open workspace: $FEEDBACK_USER, else the login name; an admin."""
    return Actor(os.environ.get("FEEDBACK_USER") or getpass.getuser(), "admin")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${salt.hex()}${digest.hex()}"


def authenticate(ws: Workspace, name: str, password: str) -> Actor:
    """The user, signed in to `ws`, if the password matches their stored hash; raises PermissionDenied otherwise,
    and `SignInLocked` (whatever the password) after too many wrong ones for this name (see the module docs)."""
    limits = sign_in_config(ws)
    store, now = _store(ws), _now()
    with store.atomic() as tx:  # the attempt counts as a wrong one until its password checks out
        tx.execute("DELETE FROM sign_in_failures WHERE failed_at <= ?", [now - timedelta(seconds=limits["window_seconds"])])
        tried = tx.rows("SELECT count(*) AS n, min(failed_at) AS first FROM sign_in_failures WHERE user_name = ?",
                        [name])[0]
        if tried["n"] >= limits["max_failures"]:
            wait = math.ceil((tried["first"] - now).total_seconds() + limits["window_seconds"])
            raise SignInLocked(f"too many wrong passwords for {name!r}: sign-in is locked for {wait} s more; "
                               "wait, or ask an admin if you forgot the password")
        tx.execute("INSERT INTO sign_in_failures VALUES (?, ?)", [name, now])
        entry = _entry(tx, name)
    stored = (entry or {}).get("password_hash") or ""
    if stored.startswith("scrypt$"):
        _, salt, _ = stored.split("$")
        if hmac.compare_digest(hash_password(password, salt=bytes.fromhex(salt)), stored):
            with store.atomic() as tx:
                tx.execute("DELETE FROM sign_in_failures WHERE user_name = ?", [name])
            return _signed_in(Actor(name, entry["role"]), ws.root)
    raise PermissionDenied("unknown user or wrong password")


def sign_in_config(ws: Workspace) -> dict:
    """`[sign_in]` of feedback.toml over the defaults: max_failures, window_seconds, session_hours."""
    return {**SIGN_IN_DEFAULTS, **ws.config.get("sign_in", {})}


def start_session(ws: Workspace, actor: Actor, *, hours: float | None = None) -> dict:
    """A signed, expiring session token for a signed-in user: {"token", "expires" (epoch seconds), "seconds"
    (how long it lasts)}.

    The token names the user and carries no secret of theirs; whoever holds it acts as them until it
    expires or `end_session` ends it, so keep it where only their browser sends it (a SameSite cookie).
    """
    actor.require(ws, "decide")
    hours = float(sign_in_config(ws)["session_hours"] if hours is None else hours)
    if hours <= 0:
        raise FeedbackError(f"session_hours {hours}: give a positive number of hours")
    store = _store(ws)
    with store.connect() as tx:
        key, entry = _session_key(tx), _entry(tx, actor.name)
    if key is None:
        with store.atomic() as tx:  # the workspace's first session: make its key, unless another process just did
            if _session_key(tx) is None:
                tx.execute("INSERT INTO session_keys VALUES (?, ?)", [secrets.token_hex(32), _now()])
            key = _session_key(tx)
    expires = int(time.time() + hours * 3600)
    claims = {"user": actor.name, "session": secrets.token_hex(8), "expires": expires,
              "password": _password_mark(entry)}
    payload = _b64(json.dumps(claims, sort_keys=True).encode())
    return {"token": f"{payload}.{_b64(_sign(key, payload))}", "expires": expires, "seconds": int(hours * 3600)}


def resume_session(ws: Workspace, token: str) -> Actor:
    """The user a session token of `start_session` names, signed in to `ws` again; raises PermissionDenied
    when the token is forged, expired, ended, or its user was removed or changed password since."""
    claims, entry = _session_claims(ws, token)
    if entry is None or claims["password"] != _password_mark(entry):
        raise PermissionDenied("this session no longer holds (the user was removed or changed password); sign in again")
    return _signed_in(Actor(claims["user"], entry["role"]), ws.root)


def end_session(ws: Workspace, token: str) -> None:
    """Sign a session out: its token is refused from now on, in every process of the workspace."""
    try:
        claims, _ = _session_claims(ws, token)
    except PermissionDenied:
        return  # nothing valid to end
    with _store(ws).atomic() as tx:
        tx.execute("DELETE FROM sessions_ended WHERE expires_at <= ?", [_now()])
        tx.execute("INSERT INTO sessions_ended SELECT ?, ? WHERE NOT EXISTS "
                   "(SELECT 1 FROM sessions_ended WHERE session_id = ?)",
                   [claims["session"], _from_epoch(claims["expires"]), claims["session"]])


def session_cookie(ws: Workspace) -> str:
    """The cookie name the app keeps this workspace's session in (two workspaces on one host keep apart)."""
    return "feedback_session_" + hashlib.sha256(str(ws.root).encode()).hexdigest()[:10]


def authenticate_token(ws: Workspace, token: str) -> Actor:
    """The user whose live API token this is, signed in to `ws`; raises PermissionDenied otherwise.

    One indexed lookup of the token's hash (the hot path of every REST call), which sees a token revoked
    or a user removed in any process at once.
    """
    prefix, _, rest = token.partition("_")
    name, _, _ = rest.rpartition(".")
    found = _store(ws).rows(
        "SELECT t.user_name, t.expires_at, t.revoked_at, u.role FROM api_tokens t JOIN users u USING (user_name) "
        "WHERE t.token_hash = ?", [_token_hash(token)]) if prefix == TOKEN_PREFIX else []
    for record in found:
        if record["user_name"] == name and _live(record):
            return _signed_in(Actor(name, record["role"]), ws.root)
    raise PermissionDenied("unknown, expired or revoked API token; make one with `feedback token create`")


def add_user(ws: Workspace, by: Actor | None, name: str, *, role: str, password: str | None = None) -> None:
    """Add a user; the first user must be an admin and needs no `by`."""
    password_hash = hash_password(password) if password else None  # slow on purpose: before the store is held
    with _store(ws).atomic() as tx:
        existing = {r["user_name"] for r in tx.rows("SELECT user_name FROM users")}
        if existing:
            if by is None:
                raise PermissionDenied("only an admin can add users")
            by.require(ws, "manage_users")
        elif role != "admin":
            raise FeedbackError("the first user must be an admin, or nobody could manage the others")
        if role not in ROLES:
            raise FeedbackError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if not _NAME.match(name):
            raise FeedbackError(f"user name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'")
        if name in existing:
            raise WorkspaceError(f"user {name!r} exists already")
        _insert_user(tx, name, role, password_hash, by=by.name if by else None, at=_now())


def create_token(ws: Workspace, by: Actor, *, name: str = "", days: int | None = None) -> dict:
    """A new API token for the acting user: {"token_id", "token", "expires"}; the token is shown only now."""
    by.require(ws, "decide")
    if by.name not in users(ws):
        raise FeedbackError(f"{by.name} is not a user of this workspace: API tokens belong to users "
                            "(add one with `feedback user-add`)")
    token_id = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}_{by.name}.{secrets.token_urlsafe(24)}"
    now = _now()
    expires = now + timedelta(days=days) if days else None
    with _store(ws).atomic(shared=True) as tx:
        tx.execute("INSERT INTO api_tokens VALUES (?, ?, ?, ?, ?, ?, NULL)",
                   [_token_hash(token), token_id, by.name, name, now, expires])
    return {"token_id": token_id, "token": token, "expires": _iso(expires)}


def list_tokens(ws: Workspace, by: Actor) -> list[dict]:
    """The acting user's tokens (never the tokens themselves), each with whether it still works."""
    by.require(ws, "decide")
    rows = _store(ws).rows("SELECT token_id, name, created_at, expires_at, revoked_at FROM api_tokens "
                           "WHERE user_name = ? ORDER BY created_at, token_id", [by.name])
    return [{"token_id": t["token_id"], "name": t["name"], "created": _iso(t["created_at"]),
             "expires": _iso(t["expires_at"]), "revoked": _iso(t["revoked_at"]), "live": _live(t)} for t in rows]


def revoke_token(ws: Workspace, by: Actor, token_id: str) -> None:
    """Revoke one of the acting user's tokens (an admin may revoke anyone's, as `user:token_id`)."""
    by.require(ws, "decide")
    owner, _, token_id = token_id.rpartition(":") if ":" in token_id else (by.name, "", token_id)
    if owner != by.name:
        by.require(ws, "manage_users")
    with _store(ws).atomic(shared=True) as tx:
        where, key = "WHERE user_name = ? AND token_id = ?", [owner, token_id]
        if not tx.value(f"SELECT count(*) FROM api_tokens {where}", key):
            raise FeedbackError(f"{owner} has no token {token_id!r}; see `feedback token list`")
        tx.execute(f"UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?) {where}", [_now(), *key])


def add_label(ws: Workspace, by: Actor, name: str, *, description: str = "", hotkey: str = "") -> Workspace:
    """Add a label to the taxonomy (leads); a fixed taxonomy accepts it from then on."""
    by.require(ws, "change_taxonomy")
    if not name or name in ("skip", "junk", "unsure"):
        raise FeedbackError(f"{name!r} cannot be a label: it is empty or names a decision (skip, junk, unsure)")
    if name in ws.taxonomy.names:
        raise WorkspaceError(f"label {name!r} is already in the taxonomy")
    lines = ["", "[[taxonomy.labels]]", f"name = {toml_string(name)}"]
    lines += [f"{key} = {toml_string(value)}" for key, value in (("description", description), ("hotkey", hotkey))
              if value]
    with open(ws.root / CONFIG_NAME, "a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return Workspace(ws.root)


def _signed_in(actor: Actor, where) -> Actor:
    _SIGNED_IN[actor] = where
    return actor


def _store(ws: Workspace):
    """The workspace's store, with users.json and sessions.json moved into it first if they are still there."""
    store = ws.store()
    if (ws.root / USERS_FILE).exists() or (ws.root / SESSIONS_FILE).exists():
        _move_files(ws, store)
    return store


def _move_files(ws: Workspace, store) -> None:
    """Move users.json and sessions.json into the store (see the module docs), then rename them.

    A file another process renamed meanwhile reads as empty, and what it moved is skipped: moving twice,
    or again after a crash before the renames, changes nothing.
    """
    try:
        _add_from_files(ws, store)
    except StoreError as exc:
        raise WorkspaceError(f"{ws.root / USERS_FILE} and {SESSIONS_FILE} are to move into the store, and this failed "
                             f"({exc}); on a team store, run one command as the reviewer role or the owner, whose "
                             "database roles may add users") from None
    for name in (USERS_FILE, SESSIONS_FILE):
        with suppress(FileNotFoundError):
            os.replace(ws.root / name, ws.root / (name + MOVED))
    with suppress(FileNotFoundError):
        os.unlink(ws.root / f".{SESSIONS_FILE}.lock")


def _add_from_files(ws: Workspace, store) -> None:
    """Add what the files hold and the store lacks, in one transaction holding the store alone."""
    with store.atomic() as tx:
        everyone = _read_file(ws.root / USERS_FILE).get("users", {})
        if (ws.root / USERS_FILE).exists() and not everyone:
            raise WorkspaceError(f"{ws.root / USERS_FILE} is damaged (no users); restore it from a backup")
        state = _read_file(ws.root / SESSIONS_FILE, damaged={})  # a damaged file costs open sessions and counts only
        known = {r["user_name"] for r in tx.rows("SELECT user_name FROM users")}
        for name, entry in everyone.items():
            if name not in known:
                _insert_user(tx, name, entry["role"], entry.get("password_hash"), by=None, at=_now())
            for token_id, t in entry.get("tokens", {}).items():
                tx.execute("INSERT INTO api_tokens SELECT ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS "
                           "(SELECT 1 FROM api_tokens WHERE token_hash = ?)",
                           [t["hash"], token_id, name, t["name"], *map(_from_iso, (t["created"], t["expires"],
                                                                                  t["revoked"])), t["hash"]])
        if state.get("key") and _session_key(tx) is None:
            tx.execute("INSERT INTO session_keys VALUES (?, ?)", [state["key"], _now()])
        since = time.time() - sign_in_config(ws)["window_seconds"]
        for name, times in state.get("failures", {}).items():
            for at in (_from_epoch(t) for t in times if t > since):
                tx.execute("INSERT INTO sign_in_failures SELECT ?, ? WHERE NOT EXISTS "
                           "(SELECT 1 FROM sign_in_failures WHERE user_name = ? AND failed_at = ?)", [name, at, name, at])
        for session, until in ((s, u) for s, u in state.get("ended", {}).items() if u > time.time()):
            tx.execute("INSERT INTO sessions_ended SELECT ?, ? WHERE NOT EXISTS "
                       "(SELECT 1 FROM sessions_ended WHERE session_id = ?)", [session, _from_epoch(until), session])


def _read_file(path, *, damaged=None) -> dict:
    """A JSON file of a workspace made before ({} when gone); `damaged` what a damaged one reads as (else: an error)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except PermissionError:
        raise WorkspaceError(f"{path} is readable by its owner only; act as that user, or ask an admin") from None
    except ValueError as exc:
        if damaged is not None:
            return damaged
        raise WorkspaceError(f"{path} is damaged ({exc}); restore it from a backup") from None


def _insert_user(tx, name: str, role: str, password_hash: str | None, *, by: str | None, at: datetime) -> None:
    tx.execute("INSERT INTO users VALUES (?, ?, ?, ?)", [name, role, at, by])
    if password_hash:
        tx.execute("INSERT INTO user_passwords VALUES (?, ?, ?)", [name, password_hash, at])


def _entry(tx, name: str) -> dict | None:
    """A user's role and password hash, or None for no such user."""
    found = tx.rows("SELECT u.role, p.password_hash FROM users u LEFT JOIN user_passwords p USING (user_name) "
                    "WHERE u.user_name = ? LIMIT 1", [name])
    return found[0] if found else None


def _session_key(tx) -> str | None:
    return tx.value("SELECT secret FROM session_keys ORDER BY created_at LIMIT 1")


def _session_claims(ws: Workspace, token: str) -> tuple[dict, dict | None]:
    """The claims of a session token whose signature, expiry and session check out, and the user it names
    (`_entry`; None when removed), read in one statement."""
    payload, _, signature = token.partition(".") if isinstance(token, str) else ("", "", "")
    try:
        claims = json.loads(_unb64(payload))
    except (ValueError, TypeError):
        claims = None
    if not isinstance(claims, dict) or not {"user", "session", "expires", "password"} <= claims.keys():
        raise PermissionDenied("not a session of this workspace; sign in")
    found = _store(ws).rows(
        "SELECT (SELECT secret FROM session_keys ORDER BY created_at LIMIT 1) AS secret, "
        "EXISTS (SELECT 1 FROM sessions_ended WHERE session_id = ?) AS ended, "
        "(SELECT role FROM users WHERE user_name = ? LIMIT 1) AS role, "
        "(SELECT password_hash FROM user_passwords WHERE user_name = ? LIMIT 1) AS password_hash",
        [str(claims["session"]), str(claims["user"]), str(claims["user"])])[0]
    try:
        good = found["secret"] is not None and hmac.compare_digest(signature, _b64(_sign(found["secret"], payload)))
    except (ValueError, TypeError):
        good = False
    if not good:
        raise PermissionDenied("not a session of this workspace; sign in")
    if claims["expires"] <= time.time():
        raise PermissionDenied("your session has expired; sign in again")
    if found["ended"]:
        raise PermissionDenied("this session was signed out; sign in again")
    return claims, (None if found["role"] is None else {"role": found["role"], "password_hash": found["password_hash"]})


def _password_mark(entry: dict) -> str:
    """A short digest of the user's password hash: a session ends when the password changes."""
    return hashlib.sha256((entry.get("password_hash") or "").encode()).hexdigest()[:16]


def _sign(key: str, payload: str) -> bytes:
    return hmac.new(bytes.fromhex(key), payload.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _live(record: dict) -> bool:
    return not record["revoked_at"] and (record["expires_at"] is None or record["expires_at"] > _now())


def _now() -> datetime:
    """Now in UTC, without a zone, as the store keeps times."""
    return datetime.now(UTC).replace(tzinfo=None)


def _iso(at: datetime | None) -> str | None:
    """A stored time as ISO 8601 in UTC (`2026-01-31T12:00:00+00:00`)."""
    return at.replace(tzinfo=UTC).isoformat() if at else None


def _from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).astimezone(UTC).replace(tzinfo=None) if text else None


def _from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
