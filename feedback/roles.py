"""Who may do what, and who is acting. Reviewers decide; leads also adjudicate, set gold, undo
others' work, change the taxonomy, publish releases and let one through a failing quality gate;
admins also manage users and purge data.

Users live in `users.json` beside feedback.toml, readable by its owner only (mode 0600): each
with a role, a salted scrypt password hash and personal API tokens (stored as SHA-256 hashes,
revocable). A workspace without users runs open: whoever acts is an admin, under any name.

In a workspace with users, the library's acting functions take only an `Actor` that proved who
it is in this process (`authenticate` with a password, `authenticate_token`), and check the
user's current role on every action; a hand-made `Actor("anyone", "admin")` is refused. The
honest boundary: whoever can write the store file or users.json can bypass all of this; on the
team store, database roles are the wall.

Signing in with a password is limited: after `[sign_in] max_failures` (5) wrong passwords for one
user name within `window_seconds` (60), that name is locked out until the oldest of them is older
than the window, whatever the password; a right password clears the count. The app keeps a sign-in
across reloads with a session token (`start_session`): the user, an expiry (`session_hours`, 12)
and a random id, signed with HMAC-SHA256 by a key of the workspace; `resume_session` checks it on
every page load and `end_session` signs it out for good. The count, the key and the sessions ended
early live in `sessions.json` beside users.json (mode 0600), so every process of the workspace sees
them; a token also ends when the user's password changes or the user is removed.
"""

from __future__ import annotations

import base64
import fcntl
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
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import FeedbackError, WorkspaceError
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
USERS_FILE = "users.json"
SESSIONS_FILE = "sessions.json"
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
        if users(ws) and _SIGNED_IN.get(self) != _SYSTEM:
            if _SIGNED_IN.get(self) != ws.root:
                raise PermissionDenied(f"{self.name} has not signed in to this workspace: sign in with a password "
                                       "or an API token (roles.authenticate, $FEEDBACK_PASSWORD, $FEEDBACK_TOKEN)")
            role = users(ws).get(self.name, {}).get("role")
            if role is None:
                raise PermissionDenied(f"{self.name!r} is no longer a user of this workspace")
        if ROLES.index(role) < ROLES.index(PERMISSIONS[action]):
            raise PermissionDenied(f"{self.name} is a {role}; {action.replace('_', ' ')} needs the "
                                   f"{PERMISSIONS[action]} role")


def system_actor(name: str) -> Actor:
    """An actor for a scheduled job (it may queue items, in any workspace, and nothing more)."""
    return _signed_in(Actor(name, "reviewer"), _SYSTEM)


def users(ws: Workspace) -> dict[str, dict]:
    """The workspace's users by name (empty: the workspace runs open)."""
    path = ws.root / USERS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))["users"]
    except FileNotFoundError:
        return {}
    except PermissionError:
        raise WorkspaceError(f"{path} is readable by its owner only; act as that user, or ask an admin") from None
    except (ValueError, KeyError) as exc:
        raise WorkspaceError(f"{path} is damaged ({exc}); restore it from a backup") from None


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
    with _session_state(ws) as state:
        now = time.time()
        failures = _recent_failures(state, now, limits["window_seconds"])
        tried = failures.get(name, [])
        if len(tried) >= limits["max_failures"]:
            wait = math.ceil(min(tried) + limits["window_seconds"] - now)
            raise SignInLocked(f"too many wrong passwords for {name!r}: sign-in is locked for {wait} s more; "
                               "wait, or ask an admin if you forgot the password")
        entry = users(ws).get(name)
        stored = (entry or {}).get("password_hash", "")
        if stored.startswith("scrypt$"):
            _, salt, _ = stored.split("$")
            if hmac.compare_digest(hash_password(password, salt=bytes.fromhex(salt)), stored):
                failures.pop(name, None)
                return _signed_in(Actor(name, entry["role"]), ws.root)
        failures[name] = [*tried, now]
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
    expires = int(time.time() + hours * 3600)
    claims = {"user": actor.name, "session": secrets.token_hex(8), "expires": expires,
              "password": _password_mark(users(ws).get(actor.name, {}))}
    with _session_state(ws) as state:
        key = state.setdefault("key", secrets.token_hex(32))
    payload = _b64(json.dumps(claims, sort_keys=True).encode())
    return {"token": f"{payload}.{_b64(_sign(key, payload))}", "expires": expires, "seconds": int(hours * 3600)}


def resume_session(ws: Workspace, token: str) -> Actor:
    """The user a session token of `start_session` names, signed in to `ws` again; raises PermissionDenied
    when the token is forged, expired, ended, or its user was removed or changed password since."""
    claims = _session_claims(ws, token)
    entry = users(ws).get(claims["user"])
    if entry is None or claims["password"] != _password_mark(entry):
        raise PermissionDenied("this session no longer holds (the user was removed or changed password); sign in again")
    return _signed_in(Actor(claims["user"], entry["role"]), ws.root)


def end_session(ws: Workspace, token: str) -> None:
    """Sign a session out: its token is refused from now on, in every process of the workspace."""
    try:
        claims = _session_claims(ws, token)
    except PermissionDenied:
        return  # nothing valid to end
    with _session_state(ws) as state:
        ended = {sid: until for sid, until in state.get("ended", {}).items() if until > time.time()}
        ended[claims["session"]] = claims["expires"]
        state["ended"] = ended


def session_cookie(ws: Workspace) -> str:
    """The cookie name the app keeps this workspace's session in (two workspaces on one host keep apart)."""
    return "feedback_session_" + hashlib.sha256(str(ws.root).encode()).hexdigest()[:10]


def authenticate_token(ws: Workspace, token: str) -> Actor:
    """The user whose live API token this is, signed in to `ws`; raises PermissionDenied otherwise."""
    prefix, _, rest = token.partition("_")
    name, _, _ = rest.rpartition(".")
    entry = users(ws).get(name) if prefix == TOKEN_PREFIX else None
    for record in (entry or {}).get("tokens", {}).values():
        if hmac.compare_digest(record["hash"], _token_hash(token)) and _live(record):
            return _signed_in(Actor(name, entry["role"]), ws.root)
    raise PermissionDenied("unknown, expired or revoked API token; make one with `feedback token create`")


def add_user(ws: Workspace, by: Actor | None, name: str, *, role: str, password: str | None = None) -> None:
    """Add a user; the first user must be an admin and needs no `by`."""
    existing = users(ws)
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
    entry = {"role": role, "tokens": {}}
    if password:
        entry["password_hash"] = hash_password(password)
    _write_users(ws, {**existing, name: entry})


def create_token(ws: Workspace, by: Actor, *, name: str = "", days: int | None = None) -> dict:
    """A new API token for the acting user: {"token_id", "token", "expires"}; the token is shown only now."""
    by.require(ws, "decide")
    token_id = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}_{by.name}.{secrets.token_urlsafe(24)}"
    expires = (_now() + timedelta(days=days)).isoformat() if days else None
    everyone = users(ws)
    everyone[by.name].setdefault("tokens", {})[token_id] = {
        "hash": _token_hash(token), "name": name, "created": _now().isoformat(), "expires": expires, "revoked": None}
    _write_users(ws, everyone)
    return {"token_id": token_id, "token": token, "expires": expires}


def list_tokens(ws: Workspace, by: Actor) -> list[dict]:
    """The acting user's tokens (never the tokens themselves), each with whether it still works."""
    by.require(ws, "decide")
    return [{"token_id": token_id, "name": t["name"], "created": t["created"], "expires": t["expires"],
             "revoked": t["revoked"], "live": _live(t)} for token_id, t in users(ws)[by.name].get("tokens", {}).items()]


def revoke_token(ws: Workspace, by: Actor, token_id: str) -> None:
    """Revoke one of the acting user's tokens (an admin may revoke anyone's, as `user:token_id`)."""
    by.require(ws, "decide")
    owner, _, token_id = token_id.rpartition(":") if ":" in token_id else (by.name, "", token_id)
    if owner != by.name:
        by.require(ws, "manage_users")
    everyone = users(ws)
    record = everyone.get(owner, {}).get("tokens", {}).get(token_id)
    if record is None:
        raise FeedbackError(f"{owner} has no token {token_id!r}; see `feedback token list`")
    record["revoked"] = _now().isoformat()
    _write_users(ws, everyone)


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


def _write_users(ws: Workspace, everyone: dict) -> None:
    """Replace users.json atomically, readable by its owner only."""
    _write_private(ws.root / USERS_FILE, {"users": everyone})


def _write_private(path, data: dict) -> None:
    """Replace a JSON file atomically, readable by its owner only."""
    fresh = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    os.replace(fresh, path)


def _session_claims(ws: Workspace, token: str) -> dict:
    """The claims of a session token whose signature, expiry and session check out."""
    payload, _, signature = token.partition(".") if isinstance(token, str) else ("", "", "")
    with _session_state(ws) as state:
        key, ended = state.get("key"), state.get("ended", {})
    try:
        good = key is not None and hmac.compare_digest(signature, _b64(_sign(key, payload)))
        claims = json.loads(_unb64(payload)) if good else None
    except (ValueError, TypeError):
        claims = None
    if not isinstance(claims, dict) or not {"user", "session", "expires", "password"} <= claims.keys():
        raise PermissionDenied("not a session of this workspace; sign in")
    if claims["expires"] <= time.time():
        raise PermissionDenied("your session has expired; sign in again")
    if claims["session"] in ended:
        raise PermissionDenied("this session was signed out; sign in again")
    return claims


@contextmanager
def _session_state(ws: Workspace):
    """sessions.json read and, when the block changed it, written back, under an exclusive lock across processes."""
    path = ws.root / SESSIONS_FILE
    fd = os.open(ws.root / f".{SESSIONS_FILE}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            state = {}
        except ValueError:
            state = {}  # a damaged file costs the open sessions and the failure counts, nothing more
        before = json.dumps(state, sort_keys=True)
        yield state
        if json.dumps(state, sort_keys=True) != before:
            _write_private(path, state)
    finally:
        os.close(fd)


def _recent_failures(state: dict, now: float, window: float) -> dict[str, list[float]]:
    """The wrong-password times within the window, by user name (older ones dropped from `state`)."""
    recent = {name: [t for t in times if t > now - window] for name, times in state.get("failures", {}).items()}
    state["failures"] = {name: times for name, times in recent.items() if times}
    return state["failures"]


def _password_mark(entry: dict) -> str:
    """A short digest of the user's password hash: a session ends when the password changes."""
    return hashlib.sha256(entry.get("password_hash", "").encode()).hexdigest()[:16]


def _sign(key: str, payload: str) -> bytes:
    return hmac.new(bytes.fromhex(key), payload.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _live(record: dict) -> bool:
    return not record["revoked"] and (record["expires"] is None or datetime.fromisoformat(record["expires"]) > _now())


def _now() -> datetime:
    return datetime.now(UTC)
