"""A release folder that a killed build left in place without its record: the next build adopts it or sets it aside."""

import json
import re
import subprocess
import sys

import pytest

from feedback.release import create_release, list_releases, show_release, verify_release
from test_release import folder, label, rws  # noqa: F401 (rws is a fixture)

CRASHING_BUILD = """
import os, sys
from feedback import Workspace
from feedback.release import Destination, create_release

publish = Destination.publish

def publish_then_die(self, built, final):
    publish(self, built, final)
    os._exit(9)  # the folder is in place; the store never commits its record

Destination.publish = publish_then_die
create_release(Workspace(sys.argv[1]), by="ann")
"""


def crash_after_publish(ws):
    """Run a build in another process that dies between publishing v1 and committing its record."""
    done = subprocess.run([sys.executable, "-c", CRASHING_BUILD, str(ws.root)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 9, done.stderr
    left = folder(ws, "v1")
    assert (left / "manifest.json").is_file() and list_releases(ws) == []
    return left


def test_a_complete_folder_with_this_content_is_adopted(rws):
    left = crash_after_publish(rws)
    manifest = json.loads((left / "manifest.json").read_text())
    made = create_release(rws, by="bob")
    assert (made["version"], made["release_id"], made["adopted"], made["set_aside"]) == (
        "v1", manifest["release_id"], True, None)
    recorded = list_releases(rws)
    assert [(r["version"], r["release_id"], r["created_by"]) for r in recorded] == [
        ("v1", manifest["release_id"], "ann")]
    assert show_release(rws, "v1") == {**manifest, "location": str(left)}
    assert verify_release(rws, "v1")["anchor"] == {"checked": True, "release": "test/v1"}
    assert verify_release(rws, "v1")["ok"]
    assert sorted(p.name for p in left.parent.iterdir()) == [".building", "v1"]
    assert list((left.parent / ".building").iterdir()) == []
    assert create_release(rws)["version"] == "v2"


@pytest.mark.parametrize("case", ["the store changed", "an unfinished copy"])
def test_any_other_folder_is_set_aside_and_the_build_goes_on(rws, case):
    left = crash_after_publish(rws)
    before = json.loads((left / "manifest.json").read_text())
    if case == "the store changed":
        label(rws, {"req-000": "card_linking"})
    else:  # an object store copies manifest.json last
        (left / "manifest.json").unlink()
    made = create_release(rws)
    aside = left.parent / ".orphaned" / made["set_aside"].rsplit("/", 1)[-1]
    assert re.fullmatch(r"v1-\d{8}T\d{6}\.\d{6}Z", aside.name) and made["set_aside"] == str(aside)
    assert (made["version"], made["adopted"]) == ("v1", False)
    assert [(r["version"], r["release_id"]) for r in list_releases(rws)] == [("v1", made["release_id"])]
    assert show_release(rws, "v1")["release_id"] == made["release_id"] and verify_release(rws, "v1")["ok"]
    if case == "the store changed":
        assert made["release_id"] != before["release_id"]
        assert verify_release(None, str(aside))["ok"]  # kept whole, for whoever wants to look
    else:
        assert made["release_id"] == before["release_id"] and not (aside / "manifest.json").exists()
