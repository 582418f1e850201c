"""Release folders after the build: read-only on a local disk, and one that a killed build left in place
without its record is adopted or set aside by the next build."""

import json
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import REPO
from feedback.release import create_release, diff_releases, lineage, list_releases, show_release, verify_release
from feedback.review.purge import releases_containing
from feedback.roles import Actor
from test_release import DATA_FILES, folder, label, rws, writable  # noqa: F401 (rws is a fixture)

pytestmark = pytest.mark.backends


def _modes_bind() -> bool:
    """Whether file modes hold this process (they do not hold root, nor a process with CAP_DAC_OVERRIDE)."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp, "probe")
        probe.touch(0o444)
        try:
            probe.open("a").close()
        except PermissionError:
            return True
        return False


MODES_BIND = _modes_bind()


def test_a_release_folder_is_read_only_on_a_local_disk_and_still_reads(rws):
    create_release(rws)
    label(rws, {"req-000": "card_linking"})
    create_release(rws)
    root = folder(rws, "v1")
    assert modes(root) == {".": 0o555, "data": 0o555, **{name: 0o444 for name in [
        "README.md", "SHA256SUMS", *DATA_FILES, "diff.json", "index.parquet", "manifest.json"]}}
    if MODES_BIND:  # root writes whatever they say
        with pytest.raises(PermissionError):
            (root / "extra.txt").write_text("x")
        with pytest.raises(PermissionError):
            (root / "index.parquet").write_bytes(b"x")
    assert verify_release(rws, "v1")["ok"] and diff_releases(rws, "v1", "v2")["relabeled"] == 1
    assert lineage(rws, "v1", "req-000")["example"]["label"] == "card_arrival"


CRASHING_BUILD = """
import os, sys
from feedback import Workspace
from feedback.release import Destination, create_release
from feedback.roles import Actor

step = getattr(Destination, sys.argv[2])

def step_then_die(self, *args):
    step(self, *args)
    os._exit(9)  # the folder is in place; the store never commits its record

setattr(Destination, sys.argv[2], step_then_die)
create_release(Workspace(sys.argv[1]), by=Actor("ann", "admin"))
"""


def crash_after(ws, step: str = "publish"):
    """Run a build in another process that dies after `step` (`_move`: the rename into place; `publish`: the
    rename and the seal), before the store commits the record of v1."""
    done = subprocess.run([sys.executable, "-c", CRASHING_BUILD, str(ws.root), step], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 9, done.stderr
    left = folder(ws, "v1")
    assert (left / "manifest.json").is_file() and list_releases(ws) == []
    return left


def modes(root) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


@pytest.mark.parametrize("step", ["_move", "publish"])
def test_a_complete_folder_with_this_content_is_adopted(rws, step):
    left = crash_after(rws, step)
    manifest = json.loads((left / "manifest.json").read_text())
    made = create_release(rws, by=Actor("bob", "admin"))
    assert (made["version"], made["release_id"], made["adopted"], made["set_aside"]) == (
        "v1", manifest["release_id"], True, None)
    recorded = list_releases(rws)
    assert [(r["version"], r["release_id"], r["created_by"]) for r in recorded] == [
        ("v1", manifest["release_id"], "ann")]
    assert show_release(rws, "v1") == {**manifest, "location": str(left)}
    assert verify_release(rws, "v1")["anchor"] == {"checked": True, "release": "test/v1"}
    assert verify_release(rws, "v1")["ok"] and set(modes(left).values()) == {0o555, 0o444}
    assert sorted(p.name for p in left.parent.iterdir()) == [".building", "v1"]
    assert list((left.parent / ".building").iterdir()) == []
    assert create_release(rws)["version"] == "v2"


@pytest.mark.parametrize("case", ["the store changed", "an unfinished copy"])
def test_any_other_folder_is_set_aside_and_the_build_goes_on(rws, case):
    left = crash_after(rws)
    before = json.loads((left / "manifest.json").read_text())
    if case == "the store changed":
        label(rws, {"req-000": "card_linking"})
    else:  # an object store copies manifest.json last
        writable(left)
        (left / "manifest.json").unlink()
    made = create_release(rws)
    aside = left.parent / ".orphaned" / made["set_aside"].rsplit("/", 1)[-1]
    assert re.fullmatch(r"v1-\d{8}T\d{6}\.\d{6}Z", aside.name) and made["set_aside"] == str(aside)
    assert (made["version"], made["adopted"]) == ("v1", False)
    assert [(r["version"], r["release_id"]) for r in list_releases(rws)] == [("v1", made["release_id"])]
    assert show_release(rws, "v1")["release_id"] == made["release_id"] and verify_release(rws, "v1")["ok"]
    if case == "the store changed":
        assert made["release_id"] != before["release_id"]
        assert verify_release(None, str(aside))["ok"] and set(modes(aside).values()) == {0o555, 0o444}  # kept whole
        assert f"{rws.dataset}/.orphaned/{aside.name}" in releases_containing(rws, {"req-001"})  # a purge finds it
    else:
        assert made["release_id"] == before["release_id"] and not (aside / "manifest.json").exists()



@pytest.mark.skipif(MODES_BIND, reason="file modes bind this process already")
@pytest.mark.skipif(not shutil.which("setpriv"), reason="needs setpriv (util-linux) to drop the privilege")
def test_this_file_where_file_modes_bind_and_pytest_still_deletes_read_only_releases(tmp_path):
    """This process writes through file modes (it is root), so run this file again without that privilege,
    then once more on the same base temp folder, which pytest deletes first: the first run's read-only
    releases must go without an error. The file modes are the release folder's, whatever the store: the
    runs use the embedded one (a PostgreSQL server's data folder is closed to a root without the privilege)."""
    base, drop = tmp_path / "bound", "-dac_override,-dac_read_search,-fowner"

    def bound(*keywords: str) -> subprocess.CompletedProcess:
        return subprocess.run(["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", sys.executable, "-m",
                               "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-n", "0", f"--basetemp={base}",
                               "-k", " and ".join([*keywords, "not postgres"]), __file__],
                              cwd=REPO, capture_output=True, text=True, timeout=600)

    first = bound()
    assert first.returncode == 0 and "file modes bind this process already" in first.stdout, first.stdout + first.stderr
    again = bound("read_only_on_a_local_disk")
    assert again.returncode == 0, again.stdout + again.stderr
    assert [p.name for p in base.iterdir() if not p.is_symlink()] == ["test_a_release_folder_is_read_0"]


def test_a_trainer_verifies_a_folder_without_any_workspace(rws, tmp_path, monkeypatch):
    from click.testing import CliRunner
    from feedback.cli import main

    create_release(rws)
    monkeypatch.delenv("FEEDBACK_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)  # no workspace here or above
    runner = CliRunner()
    ok = runner.invoke(main, ["release", "verify", str(folder(rws, "v1")), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.output)["anchor"]["checked"] is False
    named = runner.invoke(main, ["release", "verify", "v1"])
    assert named.exit_code == 1 and "without a workspace a release is named by its folder" in named.output


def test_a_manifest_missing_its_keys_is_reported_not_a_crash(rws):
    made = create_release(rws)
    root = folder(rws, made["version"])
    writable(root)
    manifest = json.loads((root / "manifest.json").read_text())
    del manifest["splits"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    report = verify_release(rws, made["version"])
    assert not report["ok"] and {"file": "manifest.json", "problem": "incomplete: no valid 'splits' (restore it "
                                 "from a good copy)"} in report["problems"]
