"""Identity in the store: users, tokens, lockouts and sessions shared by every process on one store, the
one-time move from users.json and sessions.json, and the team store's roles kept away from the secrets."""

import base64
import hashlib
import hmac
import json
import shutil
import subprocess
import sys
import time

import pytest
from conftest import LABELS

from feedback import Workspace, init_workspace
from feedback.errors import StoreError
from feedback.roles import (
    PermissionDenied,
    SignInLocked,
    add_user,
    authenticate,
    authenticate_token,
    create_token,
    end_session,
    hash_password,
    list_tokens,
    resume_session,
    revoke_token,
    start_session,
    users,
)

pytestmark = pytest.mark.backends

# Another process on the same workspace: it runs each line of stdin against a fresh Workspace and prints
# what it saw, so one long-lived process shows that nothing is cached.
OTHER = """
import json, sys
from feedback import Workspace
from feedback import roles
for line in sys.stdin:
    call, *args = json.loads(line)
    ws = Workspace(sys.argv[1])
    try:
        found = getattr(roles, call)(ws, *args)
        print(json.dumps(found if isinstance(found, (dict, list)) else [found.name, found.role]), flush=True)
    except roles.PermissionDenied as exc:
        print(json.dumps({"refused": type(exc).__name__, "message": str(exc)}), flush=True)
"""


class Other:
    """A second process of the workspace, asked one call at a time."""

    def __init__(self, ws):
        self.proc = subprocess.Popen([sys.executable, "-c", OTHER, str(ws.root)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def __call__(self, call, *args):
        self.proc.stdin.write(json.dumps([call, *args]) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        assert self.proc.wait(30) == 0


def test_a_second_process_sees_users_tokens_lockouts_and_revocations_at_once(ws):
    other = Other(ws)
    try:
        assert other("users") == {}  # open, as seen before any user exists
        add_user(ws, None, "ann", role="admin", password="pw-ann")
        add_user(ws, authenticate(ws, "ann", "pw-ann"), "rita", role="reviewer", password="pw-rita")
        assert other("users") == {"ann": {"role": "admin"}, "rita": {"role": "reviewer"}}
        token = create_token(ws, authenticate(ws, "rita", "pw-rita"), name="ci")
        assert other("authenticate_token", token["token"]) == ["rita", "reviewer"]
        for _ in range(3):
            with pytest.raises(PermissionDenied, match="^unknown user or wrong password$"):
                authenticate(ws, "rita", "guess")
        assert other("authenticate", "rita", "guess")["refused"] == "PermissionDenied"
        assert other("authenticate", "rita", "guess")["refused"] == "PermissionDenied"
        with pytest.raises(SignInLocked):  # 3 wrong here and 2 there: five for the store
            authenticate(ws, "rita", "pw-rita")
        assert other("authenticate", "rita", "pw-rita")["refused"] == "SignInLocked"
        revoke_token(ws, authenticate(ws, "ann", "pw-ann"), f"rita:{token['token_id']}")
        assert other("authenticate_token", token["token"]) == {
            "refused": "PermissionDenied",
            "message": "unknown, expired or revoked API token; make one with `feedback token create`"}
        session = start_session(ws, authenticate(ws, "ann", "pw-ann"))["token"]
        assert other("resume_session", session) == ["ann", "admin"]
        end_session(ws, session)
        assert other("resume_session", session)["message"] == "this session was signed out; sign in again"
    finally:
        other.close()
    assert sorted(p.name for p in ws.root.iterdir() if "json" in p.name or "session" in p.name) == []


def _legacy_files(ws) -> dict:
    """users.json and sessions.json as the file-keeping version wrote them; what should survive the move."""
    now = time.time()
    live, revoked = "fbk_ann." + "a" * 32, "fbk_ann." + "b" * 32
    token = {"name": "ci", "created": "2026-01-02T03:04:05+00:00", "expires": None, "revoked": None}
    everyone = {"ann": {"role": "admin", "password_hash": hash_password("pw-ann"), "tokens": {
                    "t1": {**token, "hash": hashlib.sha256(live.encode()).hexdigest()},
                    "t2": {**token, "hash": hashlib.sha256(revoked.encode()).hexdigest(),
                           "revoked": "2026-01-03T00:00:00+00:00"}}},
                "rita": {"role": "reviewer", "password_hash": hash_password("pw-rita"), "tokens": {}}}
    key = "ab" * 32

    def session(sid: str) -> str:
        mark = hashlib.sha256(everyone["ann"]["password_hash"].encode()).hexdigest()[:16]
        claims = {"user": "ann", "session": sid, "expires": int(now + 3600), "password": mark}
        payload = base64.urlsafe_b64encode(json.dumps(claims, sort_keys=True).encode()).decode().rstrip("=")
        signature = hmac.new(bytes.fromhex(key), payload.encode(), hashlib.sha256).digest()
        return f"{payload}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"

    state = {"key": key, "failures": {"rita": [now - 5, now - 4, now - 3, now - 2], "old": [now - 3600]},
             "ended": {"s-ended": int(now + 3600)}}
    for name, data in (("users.json", {"users": everyone}), ("sessions.json", state)):
        (ws.root / name).write_text(json.dumps(data))
        (ws.root / name).chmod(0o600)
    return {"live": live, "revoked": revoked, "open session": session("s-open"), "ended session": session("s-ended")}


def _counts(ws) -> dict:
    tables = ("users", "user_passwords", "api_tokens", "session_keys", "sign_in_failures", "sessions_ended")
    return {t: ws.store().value(f"SELECT count(*) FROM {t}") for t in tables}


def test_users_json_moves_into_the_store_once_and_loses_nothing(ws):
    kept = _legacy_files(ws)
    code = "import sys; from feedback import Workspace, roles; print(sorted(roles.users(Workspace(sys.argv[1]))))"
    both = [subprocess.Popen([sys.executable, "-c", code, str(ws.root)], stdout=subprocess.PIPE, text=True)
            for _ in range(2)]  # two processes moving at once
    assert [p.communicate(timeout=60)[0] for p in both] == ["['ann', 'rita']\n"] * 2
    moved = {"users": 2, "user_passwords": 2, "api_tokens": 2, "session_keys": 1, "sign_in_failures": 4,
             "sessions_ended": 1}  # wrong passwords older than the window are not moved
    assert _counts(ws) == moved
    assert {p.name for p in ws.root.iterdir() if "json" in p.name} == {"users.json.moved", "sessions.json.moved"}
    assert (ws.root / "users.json.moved").stat().st_mode & 0o777 == 0o600

    assert authenticate_token(ws, kept["live"]).name == "ann"  # tokens, passwords and sessions still work
    with pytest.raises(PermissionDenied, match="revoked API token"):
        authenticate_token(ws, kept["revoked"])
    ann = authenticate(ws, "ann", "pw-ann")
    assert {t["token_id"]: (t["created"], t["live"]) for t in list_tokens(ws, ann)} == {
        "t1": ("2026-01-02T03:04:05+00:00", True), "t2": ("2026-01-02T03:04:05+00:00", False)}
    assert resume_session(ws, kept["open session"]).name == "ann"
    with pytest.raises(PermissionDenied, match="this session was signed out"):
        resume_session(ws, kept["ended session"])
    with pytest.raises(PermissionDenied, match="^unknown user or wrong password$"):
        authenticate(ws, "rita", "guess")  # the count of the window was kept: four then, the fifth now
    with pytest.raises(SignInLocked):
        authenticate(ws, "rita", "pw-rita")

    for name in ("users.json", "sessions.json"):  # the files back (a restored backup, a move cut short): no copies
        shutil.copy(ws.root / f"{name}.moved", ws.root / name)
    assert sorted(users(Workspace(ws.root))) == ["ann", "rita"]
    assert _counts(ws) == {**moved, "sign_in_failures": 5}  # rita's fifth
    assert not (ws.root / "users.json").exists() and not (ws.root / "sessions.json").exists()


def test_a_damaged_users_json_is_not_moved(ws):
    (ws.root / "users.json").write_text("{not json")
    with pytest.raises(Exception, match=r"users.json is damaged .*; restore it from a backup"):
        users(ws)
    assert (ws.root / "users.json").exists() and _counts(ws)["users"] == 0


def test_team_store_roles_that_sign_nobody_in_cannot_read_the_secrets(tmp_path, pg_url):
    from feedback.store.grants import grants_sql

    ws = init_workspace(tmp_path / "owner", dataset="test", labels=LABELS, store=pg_url)
    add_user(ws, None, "ann", role="admin", password="pw-ann")
    token = create_token(ws, authenticate(ws, "ann", "pw-ann"))["token"]
    schema = pg_url.rsplit("%3D", 1)[1]
    with ws.store().atomic() as tx:
        tx.execute(grants_sql(schema, prefix=schema))
    role = {kind: init_workspace(tmp_path / kind, dataset="test", labels=LABELS,
                                 store=pg_url.replace("feedback@", f"{schema}_{kind}@"))
            for kind in ("sampler", "reviewer")}
    assert users(role["sampler"]) == {"ann": {"role": "admin"}}  # who is who: every role may know
    for secret in ("user_passwords", "api_tokens", "session_keys"):
        with pytest.raises(StoreError, match="permission denied"):
            role["sampler"].store().rows(f"SELECT * FROM {secret}")
    with pytest.raises(StoreError, match="permission denied"):
        authenticate_token(role["sampler"], token)
    reviewer = authenticate_token(role["reviewer"], token)  # the app and the CLI sign users in
    assert (reviewer.name, authenticate(role["reviewer"], "ann", "pw-ann").name) == ("ann", "ann")
    assert resume_session(role["reviewer"], start_session(role["reviewer"], reviewer)["token"]).name == "ann"
    with pytest.raises(StoreError, match="permission denied"), role["reviewer"].store().atomic() as tx:
        tx.execute("DELETE FROM users")  # the reviewer's database role may add users, not remove them
