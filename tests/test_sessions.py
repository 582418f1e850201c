"""Sign-in that lasts and sign-in that is limited: session tokens and the wrong-password lockout of `roles`."""

import base64
import json
import subprocess
import sys
import time

import pytest
from conftest import configure

from feedback import Workspace, init_workspace
from feedback.roles import (
    PermissionDenied,
    SignInLocked,
    add_user,
    authenticate,
    end_session,
    hash_password,
    resume_session,
    session_cookie,
    start_session,
)

pytestmark = pytest.mark.backends


@pytest.fixture
def team(ws):
    add_user(ws, None, "ann", role="admin", password="pw-ann")
    add_user(ws, authenticate(ws, "ann", "pw-ann"), "rita", role="reviewer", password="pw-rita")
    return ws


def with_sign_in(ws, **settings) -> Workspace:
    return configure(ws, "sign_in", **settings)


def test_a_session_token_signs_the_user_in_again(team):
    session = start_session(team, authenticate(team, "rita", "pw-rita"))
    assert session["seconds"] == 12 * 3600 and session["expires"] > time.time() + 11 * 3600
    again = resume_session(Workspace(team.root), session["token"])
    assert (again.name, again.role) == ("rita", "reviewer")
    again.require(team, "decide")  # signed in: the library lets it act
    with pytest.raises(PermissionDenied, match="needs the lead role"):
        again.require(team, "adjudicate")
    assert not (team.root / "sessions.json").exists()  # the key lives in the store, the token nowhere
    assert session["token"] not in str(team.store().rows("SELECT * FROM session_keys"))


def test_forged_tampered_and_foreign_tokens_are_refused(team, tmp_path):
    token = start_session(team, authenticate(team, "rita", "pw-rita"))["token"]
    payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "user": "ann"}).encode()).decode().rstrip("=")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    same_bytes = signature[:-1] + alphabet[alphabet.index(signature[-1]) + 1]  # sets a padding bit
    assert base64.urlsafe_b64decode(same_bytes + "=") == base64.urlsafe_b64decode(signature + "=")
    flipped = signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]
    bad_tokens = (f"{forged}.{signature}", f"{payload}.{same_bytes}", f"{payload}.{flipped}", "", "garbage", "a.b.c",
                  f"{payload}.{signature}\u00e9", None)
    for bad in bad_tokens:
        with pytest.raises(PermissionDenied, match="not a session of this workspace"):
            resume_session(team, bad)
    foreign = init_workspace(tmp_path / "foreign", dataset="x")
    add_user(foreign, None, "rita", role="admin", password="pw-rita")
    with pytest.raises(PermissionDenied, match="not a session of this workspace"):
        resume_session(foreign, token)
    assert session_cookie(foreign) != session_cookie(team)


def test_a_session_expires(team):
    token = start_session(team, authenticate(team, "rita", "pw-rita"), hours=1 / 3600)["token"]
    assert resume_session(team, token).name == "rita"
    time.sleep(1.1)
    with pytest.raises(PermissionDenied, match="your session has expired; sign in again"):
        resume_session(team, token)
    with pytest.raises(Exception, match="give a positive number of hours"):
        start_session(team, authenticate(team, "rita", "pw-rita"), hours=0)


def test_signing_out_ends_the_session_in_every_process(team):
    rita = authenticate(team, "rita", "pw-rita")
    ended, kept = start_session(team, rita)["token"], start_session(team, rita)["token"]
    end_session(team, ended)
    with pytest.raises(PermissionDenied, match="this session was signed out; sign in again"):
        resume_session(team, ended)
    assert resume_session(team, kept).name == "rita"  # another browser of hers stays signed in
    code = ("import sys; from feedback import Workspace; from feedback.roles import resume_session\n"
            "ws = Workspace(sys.argv[1])\n"
            "try:\n    resume_session(ws, sys.argv[2]); print('accepted')\n"
            "except Exception as exc:\n    print(exc)\n")
    seen = [subprocess.run([sys.executable, "-c", code, str(team.root), t], capture_output=True, text=True,
                           check=True).stdout.strip() for t in (ended, kept)]
    assert seen == ["this session was signed out; sign in again", "accepted"]
    end_session(team, "not a token")  # ending nothing is no error


def test_a_session_ends_when_the_password_changes_or_the_user_goes(team):
    token = start_session(team, authenticate(team, "rita", "pw-rita"))["token"]
    with team.store().atomic() as tx:
        tx.execute("UPDATE user_passwords SET password_hash = ? WHERE user_name = 'rita'", [hash_password("new-pw")])
    with pytest.raises(PermissionDenied, match="changed password"):
        resume_session(team, token)
    token = start_session(team, authenticate(team, "rita", "new-pw"))["token"]
    with team.store().atomic() as tx:
        tx.execute("DELETE FROM users WHERE user_name = 'rita'")
    with pytest.raises(PermissionDenied, match="the user was removed"):
        resume_session(team, token)


def test_five_wrong_passwords_lock_the_name_out_for_the_window(team):
    ws = with_sign_in(team, window_seconds=2)
    for _ in range(5):
        with pytest.raises(PermissionDenied, match="^unknown user or wrong password$"):
            authenticate(ws, "rita", "guess")
    with pytest.raises(SignInLocked, match=r"too many wrong passwords for 'rita': sign-in is locked for [12] s more"):
        authenticate(ws, "rita", "pw-rita")  # the right password too, while locked
    assert authenticate(ws, "ann", "pw-ann").name == "ann"  # other names are not locked
    for _ in range(5):  # unknown names count alike, so a lockout does not tell who exists
        with pytest.raises(PermissionDenied, match="^unknown user or wrong password$"):
            authenticate(ws, "nobody", "guess")
    with pytest.raises(SignInLocked):
        authenticate(ws, "nobody", "guess")
    time.sleep(2.1)
    assert authenticate(ws, "rita", "pw-rita").name == "rita"


def test_a_right_password_clears_the_count(team):
    for _ in range(4):
        with pytest.raises(PermissionDenied):
            authenticate(team, "rita", "guess")
    authenticate(team, "rita", "pw-rita")
    for _ in range(4):
        with pytest.raises(PermissionDenied, match="^unknown user or wrong password$"):
            authenticate(team, "rita", "guess")
    with pytest.raises(PermissionDenied, match="^unknown user or wrong password$"):
        authenticate(team, "rita", "guess")  # the fifth since the right one: counted, not yet locked
    with pytest.raises(SignInLocked):
        authenticate(team, "rita", "pw-rita")
