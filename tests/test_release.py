"""Dataset releases on a real store: contents, determinism, splits, gates, diff, immutability, lineage, S3, CLI."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from feedback import Workspace, ingest_files, init_workspace, load_release
from feedback.cli.release import release_group
from feedback.errors import FeedbackError, NotFound
from feedback.review import (decide, forget, mark_distinct, near_duplicate_groups, relabel_group,
                             undo_distinct)
from feedback.release import (GateFailed, Selection, create_release, diff_releases, item_releases, lineage,
                              list_releases, row_hash, show_release, verify_release)
from feedback.roles import Actor, PermissionDenied, add_user, authenticate
from conftest import LABELS, configure, free_port, prediction

pytestmark = pytest.mark.backends

ALICE, BOB, ADMIN = Actor("alice", "reviewer"), Actor("bob", "reviewer"), Actor("root", "admin")
LEAD = Actor("lena", "lead")  # relabels what a reviewer labeled (a reviewer's would raise a dispute)
WORDS = ("card arrived never where money account transfer fee refund cash machine pin blocked stolen lost phone app "
         "top up limit exchange rate euro pound salary rent friend shop online declined pending verify identity "
         "address statement cancel wrong charged twice balance cheque deposit virtual physical contactless").split()
DATA_FILES = ["data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet",
              "data/validation-00000-of-00001.parquet"]


def text(n: int) -> str:
    """A text far from every other text(m): seven words picked by a hash of n."""
    return " ".join(WORDS[b % len(WORDS)] for b in hashlib.md5(str(n).encode()).digest()[:7])


def add(ws: Workspace, texts: dict[str, str], source: str = "test") -> None:
    """One prediction event per item, ingested from a JSONL file."""
    path = ws.root / f"events-{len(list(ws.root.glob('events-*')))}.jsonl"
    path.write_text("".join(json.dumps(prediction(i, text=t, meta={"source": source})) + "\n" for i, t in texts.items()))
    assert ingest_files(ws, [path]).quarantined == 0


def label(ws: Workspace, labels: dict[str, str], who: Actor = ALICE) -> None:
    """Label items, one group decision per label."""
    for name in sorted(set(labels.values())):
        relabel_group(ws, who, sorted(i for i, v in labels.items() if v == name), name)


def items(start: int, stop: int) -> dict[str, str]:
    return {f"req-{n:03d}": text(n) for n in range(start, stop)}


def labels_for(ids, names=LABELS):
    return {item_id: names[n % len(names)] for n, item_id in enumerate(sorted(ids))}


@pytest.fixture
def rws(ws) -> Workspace:
    """A workspace with 40 labeled items (10 per label, one text with non-ASCII characters)."""
    ws = configure(ws, "release.gates", min_per_label=1)
    texts = items(0, 40)
    texts["req-039"] = "Où est ma carte? 카드 💳 still not here"
    add(ws, texts)
    label(ws, labels_for(texts))
    return ws


def folder(ws: Workspace, version: str):
    return ws.path("releases") / ws.dataset / version


def writable(root) -> None:
    """Undo the read-only modes of a release folder, as anyone editing it has to first."""
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def index(ws: Workspace, version: str) -> dict[str, dict]:
    return {r["id"]: r for r in pq.read_table(folder(ws, version) / "index.parquet").to_pylist()}


# -- what a release is ---------------------------------------------------------------------------

def test_a_release_is_a_complete_folder_that_sha256sum_checks(rws):
    result = create_release(rws, by=Actor("ann", "admin"))
    assert (result["created"], result["version"], result["examples"], result["parent"]) == (True, "v1", 40, None)
    root = folder(rws, "v1")
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == ["README.md", "SHA256SUMS", *DATA_FILES, "diff.json", "index.parquet", "manifest.json"]
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=root).returncode == 0
    assert not (root.parent / ".building").exists() or not any((root.parent / ".building").iterdir())

    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["release_id"] == result["release_id"] and len(manifest["release_id"]) == 64
    assert [f["name"] for f in manifest["schema"]] == ["id", "text", "label"]
    assert manifest["split_policy"] == {"group_by": "near_duplicate", "threshold": 90.0, "salt": "test",
                                        "ratios": {"train": 0.8, "validation": 0.1, "test": 0.1}}
    assert sum(s["rows"] for s in manifest["splits"].values()) == 40
    assert manifest["labels"]["card_arrival"] and sum(sum(c.values()) for c in manifest["labels"].values()) == 40
    assert manifest["recipe"]["watermark"]["event_seq"] == 40
    assert manifest["recipe"]["code_version"] == "0.1.0" and manifest["recipe"]["selection"]["from_parent"] is False
    assert manifest["provenance"] == {"one_reviewer": 40, "several_reviewers": 0, "adjudicated": 0, "imported": 0,
                                      "reviewers": 1}
    assert [g["gate"] for g in manifest["gates"]] == ["schema", "taxonomy", "conflicts", "leakage", "agreement",
                                                      "min_per_label", "label_shift", "second_review"]
    assert [g["status"] for g in manifest["gates"]] == ["pass", "pass", "pass", "pass", "skip", "pass", "skip", "pass"]

    rows = index(rws, "v1")
    assert len(rows) == 40 and rows["req-000"]["label"] == "card_arrival"
    assert rows["req-000"]["label_reviewer"] == "alice" and rows["req-000"]["label_decision_id"].startswith("d-")
    assert rows["req-000"]["group"] is None and "event_ids" not in rows["req-000"]
    for split, info in manifest["splits"].items():
        data = pq.read_table(root / info["files"][0]).to_pylist() if info["files"] else []
        assert [r["id"] for r in data] == sorted(r["id"] for r in data)
        assert all(rows[r["id"]]["split"] == split and rows[r["id"]]["row_hash"] == row_hash(r["id"], r["label"], r["text"])
                   for r in data)

    card = (root / "README.md").read_text()
    assert card.startswith("---\nlicense: unknown\n") and "# test v1" in card and "| card_arrival |" in card
    assert "set [release] license and credit in feedback.toml" in card
    assert list_releases(rws)[0] | {"created_at": None} == {
        "dataset": "test", "version": "v1", "release_id": result["release_id"], "parent": None, "examples": 40,
        "created_at": None, "created_by": "ann", "location": str(rws.path("releases")), "overrides": None}


def test_a_release_loads_in_pandas_duckdb_and_hugging_face_datasets(rws, tmp_path, monkeypatch):
    create_release(rws)
    root = folder(rws, "v1")
    manifest = show_release(rws, "v1")
    assert len(pd.read_parquet(root / "data")) == 40
    assert pd.read_parquet(root / DATA_FILES[1]).columns.tolist() == ["id", "text", "label"]
    assert duckdb.sql(f"SELECT count(*) FROM '{root}/data/*.parquet'").fetchall() == [(40,)]

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import datasets

    loaded = datasets.load_dataset("parquet", data_dir=str(root), cache_dir=str(tmp_path / "hf-cache"))
    assert {name: len(split) for name, split in loaded.items()} == {
        name: info["rows"] for name, info in manifest["splits"].items()}
    assert loaded["train"].column_names == ["id", "text", "label"]
    assert loaded["train"].features["label"] == datasets.Value("string")  # the data files hold label names
    card = datasets.load_dataset(str(root), cache_dir=str(tmp_path / "hf-cache"))  # the folder, read by its card
    classes = card["train"].features["label"]
    assert isinstance(classes, datasets.ClassLabel) and classes.names == manifest["class_names"] == LABELS
    row = card["train"][0]
    assert classes.int2str(row["label"]) == pd.read_parquet(root / "data").set_index("id").loc[row["id"], "label"]


def test_the_same_store_gives_the_same_release_id_and_identical_data_files(rws):
    first = create_release(rws)
    assert create_release(rws, if_changed=True) == {
        "created": False, "dataset": "test", "version": "v1", "release_id": first["release_id"],
        "location": str(rws.path("releases")), "examples": 40, "reason": "unchanged since the parent"}
    second = create_release(rws)
    assert (second["version"], second["release_id"]) == ("v2", first["release_id"])
    for name in [*DATA_FILES, "index.parquet"]:
        assert (folder(rws, "v1") / name).read_bytes() == (folder(rws, "v2") / name).read_bytes()
    label(rws, {"req-000": "card_linking"})
    assert create_release(rws, if_changed=True)["version"] == "v3"


def test_the_same_examples_make_the_same_release_on_either_store(tmp_path, pg_url):
    """Row hashes, buckets and exact copies are DuckDB's on both: the same release id, splits and groups."""
    made = []
    for name, url in (("file", None), ("team", pg_url)):
        ws = configure(init_workspace(tmp_path / name, dataset="test", labels=LABELS, store=url),
                       "release.gates", min_per_label=1)
        texts = {**items(0, 60), "req-039": "Où est ma carte? 카드 💳 still not here", "req-040": text(44)}
        add(ws, texts)
        label(ws, labels_for(texts))
        release_id = create_release(ws)["release_id"]
        made.append((release_id, pq.read_table(folder(ws, "v1") / "index.parquet").drop_columns(["label_decision_id"])))
    (file_id, file_index), (team_id, team_index) = made  # decision ids are random; the rest is the same
    assert file_id == team_id and file_index.equals(team_index)


def test_the_release_memory_limit_holds_for_the_read_only(rws, store_backend):
    if store_backend == "postgres":
        pytest.skip("memory_limit is the embedded engine's setting; PostgreSQL's memory is the server's")
    setting = "SELECT current_setting('memory_limit')"
    before = rws.store().value(setting)
    with rws.store().memory_limit("300MB"):
        assert rws.store().value(setting) == "286.1 MiB"
    create_release(rws)  # sets its own limit for the read
    assert rws.store().value(setting) == before


def test_large_splits_span_files_of_whole_row_groups(rws):
    rws = configure(rws, "release", rows_per_file=7, row_group_size=3)
    made = create_release(rws)
    manifest = show_release(rws, "v1")
    train = manifest["splits"]["train"]
    assert train["files"][0] == f"data/train-00000-of-{len(train['files']):05d}.parquet"
    groups = []
    for file in train["files"]:
        meta = pq.ParquetFile(folder(rws, "v1") / file).metadata
        groups.append([meta.row_group(g).num_rows for g in range(meta.num_row_groups)])
    assert groups[:-1] == [[3, 3, 1]] * (len(groups) - 1) and sum(map(sum, groups)) == train["rows"]
    ids = pd.read_parquet(folder(rws, "v1") / "data")["id"].tolist()
    assert sorted(ids) == sorted(index(rws, "v1")) and len(ids) == made["examples"] == 40
    assert verify_release(rws, "v1")["ok"]


def test_splits_stay_put_over_three_releases_with_additions_and_relabels(rws):
    rws = configure(rws, "release", splits={"train": 0.5, "validation": 0.25, "test": 0.25})
    create_release(rws)
    v1 = index(rws, "v1")
    test_item = min(i for i, r in v1.items() if r["split"] == "test")
    add(rws, {**items(40, 60), "copy-1": text(int(test_item[4:])) + "!"})
    label(rws, {**labels_for(items(40, 60)), "copy-1": v1[test_item]["label"]})
    label(rws, {"req-001": "refund_not_showing_up", "req-005": "refund_not_showing_up"}, who=LEAD)
    second = create_release(rws)
    add(rws, items(60, 80))
    label(rws, {**labels_for(items(60, 80)), "req-003": "card_arrival"})
    decide(rws, BOB, "req-004", "junk")
    third = create_release(rws)

    v2, v3 = index(rws, "v2"), index(rws, "v3")
    assert v2["copy-1"]["split"] == "test" and v2["copy-1"]["group"] == "copy-1" == v2[test_item]["group"]
    for older, newer in ((v1, v2), (v2, v3), (v1, v3)):
        assert all(newer[i]["split"] == r["split"] for i, r in older.items() if i in newer)
    assert (second["diff"]["added"], second["diff"]["relabeled"], second["diff"]["split_moves"]) == (21, 2, 0)
    assert (third["diff"]["added"], third["diff"]["removed"], third["diff"]["relabeled"]) == (20, 1, 1)
    assert third["diff"]["split_moves"] == 0 and len(v3) == 80
    assert {r["split"] for r in v3.values()} == {"train", "validation", "test"}


def test_a_near_copy_that_bridges_two_splits_fails_the_leakage_gate(rws):
    # a and b end in words too far apart to be one word misspelled; the bridge's last word is a typo of each
    bases = [text(n) for n in range(200, 260) if 23 <= len(text(n)) <= 52][:12]
    rws = configure(rws, "release", splits={"train": 0.5, "test": 0.5})
    add(rws, {f"pair-{n}-{side}": f"{base} {tail}" for n, base in enumerate(bases)
              for side, tail in (("a", "abcdefgh"), ("b", "abcdwxyz"))})
    label(rws, {f"pair-{n}-{side}": "card_arrival" for n in range(len(bases)) for side in "ab"})
    create_release(rws)
    v1 = index(rws, "v1")
    n = next(n for n in range(len(bases)) if v1[f"pair-{n}-a"]["split"] != v1[f"pair-{n}-b"]["split"])
    add(rws, {"bridge": f"{bases[n]} abcdefyz"})
    label(rws, {"bridge": "card_arrival"})
    with pytest.raises(GateFailed) as failed:
        create_release(rws)
    assert "leakage: 1 duplicate group spans splits" in str(failed.value)
    assert f"pair-{n}-a ({v1[f'pair-{n}-a']['split']})" in str(failed.value)
    assert "would move a released example to another split" in str(failed.value)
    assert [r["version"] for r in list_releases(rws)] == ["v1"]


def test_exact_grouping_keeps_identical_texts_in_one_split(rws):
    rws = configure(rws, "release", group_by="exact", splits={"train": 0.34, "validation": 0.33, "test": 0.33})
    add(rws, {f"same-{n}": "where is my card" for n in range(6)} | {"case": "Where is my card"})
    label(rws, {**{f"same-{n}": "card_arrival" for n in range(6)}, "case": "card_arrival"})
    create_release(rws)
    rows = index(rws, "v1")
    assert {(rows[f"same-{n}"]["split"], rows[f"same-{n}"]["group"]) for n in range(6)} == {
        (rows["same-0"]["split"], "same-0")}
    assert rows["case"]["group"] is None and show_release(rws, "v1")["split_policy"]["group_by"] == "exact"


# -- gates ---------------------------------------------------------------------------------------

def gate(error: GateFailed, name: str) -> str:
    line = next(line for line in str(error).splitlines() if line.strip().startswith(name + ":"))
    return line.strip()


def test_gates_conflicts_schema_and_min_per_label_stop_the_build_and_write_nothing(ws):
    add(ws, {**items(0, 8), "dup-a": "My card is lost", "dup-b": "my card is lost  ", "near-a": text(100),
             "near-b": text(100) + "s", "blank": "   "})
    label(ws, {**labels_for(items(0, 8)), "dup-a": "card_arrival", "dup-b": "lost_or_stolen_card",
               "near-a": "card_linking", "near-b": "card_arrival", "blank": "card_linking"})
    with pytest.raises(GateFailed) as failed:
        create_release(ws)
    assert gate(failed.value, "schema").startswith("schema: 1 example has a blank text or label")
    assert gate(failed.value, "conflicts").startswith("conflicts: 1 text appears with different labels")
    assert "dup-a (card_arrival), dup-b (lost_or_stolen_card)" in gate(failed.value, "conflicts")
    assert gate(failed.value, "min_per_label") == (
        "min_per_label: labels with fewer than 5 examples: card_arrival (4), card_linking (4), "
        "lost_or_stolen_card (3), refund_not_showing_up (2); label more of them, or lower [release.gates] "
        "min_per_label")
    assert not ws.path("releases").exists() or not any(ws.path("releases").rglob("*.parquet"))
    assert list_releases(ws) == []


def test_near_duplicates_with_different_labels_warn_and_a_not_duplicates_mark_clears_them(rws, cli):
    add(rws, {"near-a": text(100), "near-b": text(100) + "s"})  # one letter apart: near-copies
    label(rws, {"near-a": "card_linking", "near-b": "card_arrival"})
    made = create_release(rws)
    conflicts = next(g for g in made["gates"] if g["gate"] == "conflicts")
    assert conflicts["status"] == "warn" and conflicts["detail"].startswith(
        "1 near-duplicate group carries different labels") and set(conflicts["examples"]) == {"near-a", "near-b"}
    assert index(rws, "v1")["near-a"]["split"] == index(rws, "v1")["near-b"]["split"]
    groups = json.loads(cli("groups", "-w", rws.root, "--all", "--json").output)
    assert ["near-a", "near-b"] in [g["item_ids"] for g in groups]
    mark = mark_distinct(rws, ALICE, ["near-a", "near-b"])
    assert ["near-a", "near-b"] not in [g["item_ids"] for g in near_duplicate_groups(rws, queued_only=False)]
    label(rws, {"near-a": "lost_or_stolen_card"})  # a change, so that a new release is made
    again = create_release(rws)
    assert next(g for g in again["gates"] if g["gate"] == "conflicts")["status"] == "pass"
    undo_distinct(rws, ALICE, mark)
    assert ["near-a", "near-b"] in [g["item_ids"] for g in near_duplicate_groups(rws, queued_only=False)]


def test_taxonomy_gate_fails_when_a_label_left_the_taxonomy(rws):
    path = rws.root / "feedback.toml"
    path.write_text(path.read_text().replace('name = "lost_or_stolen_card"\n', 'name = "card_swallowed"\n'))
    with pytest.raises(GateFailed) as failed:
        create_release(Workspace(rws.root))
    assert gate(failed.value, "taxonomy").startswith("taxonomy: labels not in the taxonomy: lost_or_stolen_card (10)")


def test_agreement_gate_fails_below_the_minimum_and_an_override_is_recorded(rws):
    rws = configure(rws, "review", overlap=2, overlap_share=1.0)
    add(rws, items(100, 110))
    label(rws, {i: "card_arrival" for i in items(100, 110)})
    label(rws, {i: "card_arrival" if n < 2 else "card_linking" for n, i in enumerate(sorted(items(100, 110)))}, who=BOB)
    with pytest.raises(GateFailed) as failed:
        create_release(rws)
    assert gate(failed.value, "agreement").startswith("agreement: Krippendorff's alpha -0.")
    with pytest.raises(FeedbackError, match="say why you override a gate"):
        create_release(rws, override=("agreement",))
    with pytest.raises(FeedbackError, match="no gate named agreemnt"):
        create_release(rws, override=("agreemnt",), reason="x")

    made = create_release(rws, override=("agreement",), reason="pilot guidelines, ticket ML-7",
                          by=Actor("lena", "admin"))
    manifest = show_release(rws, "v1")
    assert manifest["overrides"] == {"gates": ["agreement"], "reason": "pilot guidelines, ticket ML-7", "by": "lena"}
    assert [g["gate"] for g in manifest["gates"] if g["overridden"]] == ["agreement"]
    assert made["examples"] == 42 and manifest["provenance"]["several_reviewers"] == 2
    assert list_releases(rws)[0]["overrides"] == ["agreement"]
    assert "Gate agreement was overridden" in (folder(rws, "v1") / "README.md").read_text()


def test_only_a_signed_in_lead_or_admin_publishes_or_overrides_a_gate(rws, run):
    add(rws, {"req-900": text(0)})  # an exact copy of req-000 with another label: conflicts
    label(rws, {"req-900": "card_linking"})
    add_user(rws, None, "root", role="admin", password="pw-root")
    root = authenticate(rws, "root", "pw-root")
    for name, role in (("lena", "lead"), ("rita", "reviewer")):
        add_user(rws, root, name, role=role, password=f"pw-{name}")
    rita, lena = authenticate(rws, "rita", "pw-rita"), authenticate(rws, "lena", "pw-lena")
    with pytest.raises(PermissionDenied, match="^rita is a reviewer; release needs the lead role$"):
        create_release(rws, by=rita)
    refused = run("create", "-w", rws.root, "-r", "rita", env={"FEEDBACK_PASSWORD": "pw-rita"})
    assert (refused.exit_code, refused.output) == (1, "Error: rita is a reviewer; release needs the lead role\n")
    with pytest.raises(PermissionDenied, match="has not signed in"):
        create_release(rws, by=Actor("lena", "lead"))  # a name is not a sign-in
    with pytest.raises(FeedbackError, match="who is publishing"):
        create_release(rws)
    assert not folder(rws, "v1").exists() and list_releases(rws) == []

    made = run("create", "-w", rws.root, "--override", "conflicts", "--reason", "known", "-r", "lena", "--json",
               env={"FEEDBACK_PASSWORD": "pw-lena"})
    assert made.exit_code == 0 and json.loads(made.output)["version"] == "v1"
    assert show_release(rws, "v1")["overrides"] == {"gates": ["conflicts"], "reason": "known", "by": "lena"}
    assert show_release(rws, "v1")["created_by"] == "lena"
    assert create_release(rws, override=("conflicts",), reason="still known", by=lena)["version"] == "v2"


def test_label_shift_against_the_parent_warns_without_stopping(rws):
    create_release(rws)
    add(rws, items(40, 80))
    label(rws, {i: "card_arrival" for i in items(40, 80)})
    made = create_release(rws)
    shift = next(g for g in made["gates"] if g["gate"] == "label_shift")
    assert shift["status"] == "warn" and shift["detail"].startswith("label distribution moved 0.375 ")
    assert "Gate label_shift warns" in (folder(rws, "v2") / "README.md").read_text()


# -- immutability and verification -----------------------------------------------------------------

def test_a_release_is_never_rewritten_and_verify_names_every_changed_file(rws):
    create_release(rws)
    with pytest.raises(FeedbackError, match="cannot be made: test/v1 exists and releases are immutable"):
        create_release(rws, version="v1")
    root = folder(rws, "v1")
    assert verify_release(rws, "v1") == {"location": str(root), "ok": True, "problems": [],
                                         "anchor": {"checked": True, "release": "test/v1"}}

    writable(root)
    with open(root / DATA_FILES[1], "ab") as f:
        f.write(b"tampered")
    (root / "data" / "extra.parquet").write_bytes(b"x")
    (root / "README.md").unlink()
    report = verify_release(rws, str(root))
    assert report["ok"] is False
    assert [(p["file"], p["problem"][:40]) for p in report["problems"]] == [
        ("README.md", "missing"),
        ("data/extra.parquet", "not listed in SHA256SUMS (added after th"),
        (DATA_FILES[1], "checksum differs from SHA256SUMS"),
        (DATA_FILES[1], "unreadable: Could not open Parquet input")]


BUILDER = """
import os, signal, sys
from feedback.release import Destination

dest = Destination(sys.argv[1])
with dest.building("test", "v1") as folder:
    dest.create(folder + "/data/train-00000-of-00001.parquet", lambda f: f.write(b"half a file"))
    print(folder, flush=True)
    if sys.argv[2] == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.stdin.read()
"""


def test_a_killed_build_leaves_a_folder_that_the_next_build_deletes(rws):
    root = rws.path("releases")

    def builder(how: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", BUILDER, str(root), how], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)

    killed = builder("die")
    dead = killed.stdout.readline().strip()
    killed.communicate()
    assert killed.returncode == -signal.SIGKILL and os.path.isdir(dead)
    running = builder("wait")
    alive = running.stdout.readline().strip()
    elsewhere = root / "test" / ".building"
    (elsewhere / "v1-otherhost-7-0a1b2c3d").mkdir()  # another machine's build, written to a minute ago
    (elsewhere / "v1-otherhost-8-4e5f6a7b").mkdir()  # ... and one nothing wrote to for two days
    os.utime(elsewhere / "v1-otherhost-8-4e5f6a7b", (time.time() - 2 * 86400,) * 2)
    os.utime(elsewhere / "v1-otherhost-7-0a1b2c3d", (time.time() - 60,) * 2)
    try:
        assert create_release(rws)["version"] == "v1"
        assert sorted(p.name for p in elsewhere.iterdir()) == sorted([os.path.basename(alive), "v1-otherhost-7-0a1b2c3d"])
    finally:
        running.communicate("")
    create_release(rws)
    assert [p.name for p in elsewhere.iterdir()] == ["v1-otherhost-7-0a1b2c3d"]
    assert verify_release(rws, "v1")["ok"]


HOLDER = """
import sys
from feedback import Workspace

store = Workspace(sys.argv[1]).store()
store.busy_timeout = 2
with store.atomic() as tx:
    print(tx.value("SELECT count(*) FROM releases"))
"""


def test_a_release_writes_and_moves_its_files_without_holding_the_store(rws, monkeypatch):
    from feedback.release.files import Destination

    reads = []
    original = Destination.publish

    def publish(self, built, final):  # another process takes the store while the folder moves into place
        reads.append(subprocess.run([sys.executable, "-c", HOLDER, str(rws.root)], capture_output=True, text=True,
                                    timeout=120))
        original(self, built, final)

    monkeypatch.setattr(Destination, "publish", publish)
    assert create_release(rws)["version"] == "v1"
    assert [(r.returncode, r.stdout.strip()) for r in reads] == [(0, "0")], reads[0].stderr
    assert [r["version"] for r in list_releases(rws)] == ["v1"]


def test_overlapping_scheduled_runs_make_one_release(rws):
    outcomes = []

    def scheduled():
        try:
            outcomes.append(create_release(rws, if_changed=True)["created"])
        except FeedbackError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=scheduled) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count(True) == 1
    assert all(o is False or "was made meanwhile" in str(o) for o in outcomes if o is not True)
    assert [r["version"] for r in list_releases(rws)] == ["v1"]
    assert sorted(p.name for p in (rws.path("releases") / "test").iterdir()) == [".building", "v1"]
    assert list((rws.path("releases") / "test" / ".building").iterdir()) == []


def resum(root) -> None:
    """Rewrite SHA256SUMS from the files as they are now, as someone covering an edit would."""
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    (root / "SHA256SUMS").write_text("".join(f"{hashlib.sha256((root / n).read_bytes()).hexdigest()}  {n}\n"
                                             for n in names))


def test_verify_recomputes_digests_so_a_rewritten_data_file_with_new_sums_is_caught(rws):
    create_release(rws)
    root = folder(rws, "v1")
    writable(root)
    table = pq.read_table(root / DATA_FILES[1])
    labels = table["label"].to_pylist()
    pq.write_table(table.set_column(2, "label", pa.array(labels[1:] + labels[:1])), root / DATA_FILES[1])
    resum(root)
    problems = verify_release(rws, "v1")["problems"]
    assert [p["file"] for p in problems] == [DATA_FILES[1], "index.parquet", "manifest.json", "SHA256SUMS"]
    assert problems[0]["problem"] == "split train: rows or digest differ from manifest.json"


def test_an_edited_manifest_with_regenerated_sums_fails_against_the_store(rws, run, tmp_path):
    create_release(rws, by=Actor("ann", "admin"))
    root = folder(rws, "v1")
    writable(root)
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps({**manifest, "created_by": "lena"}, indent=2) + "\n")
    resum(root)
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=root).returncode == 0
    changed = "differs from the digest the store recorded for test/v1 at build time: the file was changed after " \
              "the build (restore the release from a good copy)"
    assert verify_release(rws, "v1") == {
        "location": str(root), "ok": False, "anchor": {"checked": True, "release": "test/v1"},
        "problems": [{"file": "SHA256SUMS", "problem": changed}, {"file": "manifest.json", "problem": changed}]}
    assert verify_release(rws, str(root))["problems"] == verify_release(rws, "v1")["problems"]
    failed = run("verify", "v1", "-w", rws.root)
    assert (failed.exit_code, failed.output) == (
        1, f"Error: {root} failed verification: SHA256SUMS: {changed}; manifest.json: {changed}\n")

    # a trainer's copy, or a folder checked without the workspace, verifies against itself and says so
    assert verify_release(None, str(root)) == {"location": str(root), "ok": True, "problems": [],
                                               "anchor": {"checked": False, "why": "no workspace was given"}}
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    assert run("verify", copy, "-w", rws.root).output == (
        f"{copy}: every file and digest checks out against the folder itself; could not check it against the "
        f"store: no release of this workspace is recorded at {copy}.\n")
    with rws.store().atomic() as tx:  # as a release recorded before the store kept anchors
        tx.execute("UPDATE releases SET manifest_sha256 = NULL, sums_sha256 = NULL")
    assert verify_release(rws, "v1")["anchor"] == {
        "checked": False, "why": "test/v1 was recorded before the store kept these digests"}


# -- diff, selection, lineage --------------------------------------------------------------------

def test_diff_of_a_constructed_case(rws):
    create_release(rws)
    add(rws, items(40, 42))
    label(rws, labels_for(items(40, 42), names=("refund_not_showing_up",)))
    label(rws, {"req-000": "card_linking", "req-004": "card_linking", "req-002": "lost_or_stolen_card"}, who=LEAD)
    decide(rws, LEAD, "req-001", "junk")
    made = create_release(rws)
    diff = diff_releases(rws, "v1", "test/v2")
    assert json.loads((folder(rws, "v2") / "diff.json").read_text()) == {**diff, "from": "v1", "to": "v2"}
    assert (diff["from"], diff["to"], diff["examples"]) == ("test/v1", "test/v2", {"before": 40, "after": 41})
    assert (diff["added"], diff["removed"], diff["relabeled"], diff["split_moves"]) == (2, 1, 3, 0)
    assert diff["relabel_matrix"] == [{"from": "card_arrival", "to": "card_linking", "count": 2},
                                      {"from": "refund_not_showing_up", "to": "lost_or_stolen_card", "count": 1}]
    assert diff["labels"] == [
        {"label": "card_arrival", "before": 10, "after": 8, "change": -2},
        {"label": "card_linking", "before": 10, "after": 11, "change": 1},
        {"label": "lost_or_stolen_card", "before": 10, "after": 11, "change": 1},
        {"label": "refund_not_showing_up", "before": 10, "after": 11, "change": 1}]
    assert diff["samples"] == {"added": ["req-040", "req-041"], "removed": ["req-001"],
                               "relabeled": ["req-000", "req-002", "req-004"], "split_moves": []}
    assert made["diff"] == {k: diff[k] for k in ("added", "removed", "relabeled", "split_moves", "relabel_matrix")}


def test_selection_by_label_batch_and_parent_plus_changes(rws):
    made = create_release(rws, selection=Selection(labels=("card_arrival", "card_linking")))
    assert made["examples"] == 20
    add(rws, items(40, 44))
    batch = relabel_group(rws, BOB, sorted(items(40, 44)), "refund_not_showing_up")
    label(rws, {"req-002": "card_linking"})
    both = create_release(rws, selection=Selection(from_parent=True, batch=batch))
    assert both["examples"] == 24 and both["diff"]["added"] == 4 and both["parent"]["version"] == "v1"
    assert create_release(rws, selection=Selection(batch=batch))["examples"] == 4
    assert create_release(rws, selection=Selection(items=("req-000", "req-001", "nope")))["examples"] == 2
    assert show_release(rws, "v4")["recipe"]["selection"]["items"] == {
        "count": 3, "sha256": hashlib.sha256(b"nope\nreq-000\nreq-001").hexdigest()}
    with pytest.raises(FeedbackError, match="nothing to release"):
        create_release(rws, selection=Selection(labels=("card_swallowed",)))


def test_purged_items_are_left_out_and_counted(rws):
    forget(rws, ADMIN, item_ids=["req-005"], why="GDPR-1")
    made = create_release(rws)
    manifest = show_release(rws, "v1")
    assert made["examples"] == 39 and manifest["excluded"] == {"no_text": 1}
    assert "1 labeled items were left out because they have no text" in (folder(rws, "v1") / "README.md").read_text()


def test_lineage_from_an_example_and_the_releases_of_an_item(rws):
    create_release(rws)
    path = rws.root / "late.jsonl"
    path.write_text(json.dumps({"type": "correction", "item_id": "req-000", "correction": {"label": "card_linking"}}))
    assert ingest_files(rws, [path]).quarantined == 0
    label(rws, {"req-000": "card_linking"}, who=LEAD)
    create_release(rws)
    trace = lineage(rws, "v2", "req-000")
    assert (trace["release"], trace["example"]["label"], trace["example"]["label_reviewer"]) == (
        "test/v2", "card_linking", "lena")
    assert [(d["kind"], d["label"], d["reviewer"]) for d in trace["decisions"]] == [
        ("label", "card_arrival", "alice"), ("label", "card_linking", "lena")]
    assert trace["decisions"][-1]["decision_id"] == trace["example"]["label_decision_id"]
    assert [(e["type"], e["input_text"], e["corr_label"]) for e in trace["events"]] == [
        ("prediction", text(0), None), ("correction", None, "card_linking")]
    earlier = lineage(rws, "v1", "req-000")  # the correction came after v1 was built
    assert [e["type"] for e in earlier["events"]] == ["prediction"]
    assert [d["reviewer"] for d in earlier["decisions"]] == ["alice"]
    assert [(r["release"], r["label"]) for r in item_releases(rws, "req-000")] == [
        ("test/v1", "card_arrival"), ("test/v2", "card_linking")]
    with pytest.raises(NotFound, match="'nope' is not in release test/v1"):
        lineage(rws, "v1", "nope")
    with pytest.raises(NotFound, match="release test/v9 is not recorded"):
        show_release(rws, "v9")


def test_the_data_card_credits_banking77_or_the_configured_license(rws):
    add(rws, items(40, 42), source="banking77:test")
    label(rws, labels_for(items(40, 42)))
    create_release(rws)
    card = (folder(rws, "v1") / "README.md").read_text()
    assert card.startswith("---\nlicense: cc-by-4.0\n")
    assert "Credit: Casanueva, Temčinas, Gerz, Henderson, Vulić." in card
    rws = configure(rws, "release", license="cc-by-sa-4.0", credit="Support logs of Acme Bank, used with consent.")
    create_release(rws)
    card = (folder(rws, "v2") / "README.md").read_text()
    assert card.startswith("---\nlicense: cc-by-sa-4.0\n") and "Support logs of Acme Bank, used with consent." in card


# -- a remote destination ------------------------------------------------------------------------

def test_release_to_s3_verify_and_read_back(rws, monkeypatch):
    from moto.server import ThreadedMotoServer
    import boto3
    from pyarrow import fs

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                           "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(key, value)
        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}").create_bucket(Bucket="ml-data")
        # allow_delayed_open makes small writes one PUT: moto 5.2.1 answers multipart uploads wrongly (moto#10055)
        url = (f"s3://ml-data/releases?endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
               "&allow_delayed_open=true")
        made = create_release(rws, destination=url)
        assert made["location"] == "s3://ml-data/releases/test/v1"
        assert verify_release(rws, "v1") == {"location": "s3://ml-data/releases/test/v1", "ok": True,
                                             "problems": [], "anchor": {"checked": True, "release": "test/v1"}}
        s3, _ = fs.FileSystem.from_uri(url)
        listed = sorted(i.path for i in s3.get_file_info(fs.FileSelector("ml-data/releases/test/v1", recursive=True))
                        if i.type == fs.FileType.File)
        assert listed == [f"ml-data/releases/test/v1/{f}" for f in (
            "README.md", "SHA256SUMS", *DATA_FILES, "diff.json", "index.parquet", "manifest.json")]
        assert pq.read_table("ml-data/releases/test/v1/data", filesystem=s3).num_rows == 40
        assert [r["release"] for r in item_releases(rws, "req-000")] == ["test/v1"]
        assert create_release(rws, destination=url)["version"] == "v2"
        with pytest.raises(FeedbackError, match="holds credentials"):
            create_release(rws, destination=url + "&secret_key=abc")
    finally:
        server.stop()


def test_a_scheme_pyarrow_lacks_goes_through_fsspec(rws):
    made = create_release(rws, destination="memory://ml-data/releases")
    assert made["location"] == "memory:///ml-data/releases/test/v1"
    assert verify_release(rws, "v1")["ok"]
    assert len(load_release(made["location"], split="train")) == made["splits"]["train"]
    with pytest.raises(FeedbackError, match="cannot open release destination 'nosuch://x'"):
        create_release(rws, destination="nosuch://x")


# -- the command line ----------------------------------------------------------------------------

@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args, env=None):
        return runner.invoke(release_group, [str(a) for a in args], env=env, catch_exceptions=False)

    return invoke


def test_release_commands_through_the_cli(rws, run, tmp_path):
    w = ("-w", rws.root)
    made = run("create", *w, "--json", "-r", "ann")
    assert made.exit_code == 0 and json.loads(made.output)["version"] == "v1"
    assert run("create", *w, "--if-changed").output.startswith("No release made: test/v1 has the same content")
    ids = tmp_path / "batch.txt"
    ids.write_text("req-000\n\nreq-001\n")
    assert "Released test/v2: 2 examples" in run("create", *w, "--items", ids).output
    assert [r["version"] for r in json.loads(run("list", *w, "--json").output)] == ["v1", "v2"]
    assert run("show", "v2", *w).output.startswith("test/v2  ")
    assert "relabeled 0, split moves 0" in run("diff", "v1", "v2", *w).output
    assert "req-000 in test/v1: " in run("lineage", "v1", "req-000", *w).output
    assert run("containing", "req-000", *w).output.splitlines()[0].startswith("test/v1")
    root = folder(rws, "v1")
    assert run("verify", "v1", *w).output == (f"{root}: every file and digest checks out, and manifest.json "
                                            "and SHA256SUMS are those the store recorded for test/v1.\n")

    writable(root)
    (root / "index.parquet").write_bytes(b"broken")
    failed = run("verify", "v1", *w)
    assert (failed.exit_code, failed.output) == (1, f"Error: {root} failed verification: index.parquet: checksum "
                                                    "differs from SHA256SUMS; index.parquet: does not match the data "
                                                    "files (ids, splits, labels, row hashes)\n")
    assert json.loads(run("verify", "v1", *w, "--json").stdout)["ok"] is False
    refused = run("create", *w, "--version", "v2")
    assert refused.exit_code == 1 and refused.output.startswith("Error: release test/v2 cannot be made")
    assert run("create", *w, "--override", "nope").exit_code == 2


def test_every_release_command_has_help_with_an_example(run):
    for name in ["", *release_group.commands]:
        result = run(*([name] if name else []), "--help")
        assert result.exit_code == 0 and "Example" in result.output, name


def test_the_release_group_plugs_into_the_feedback_command(rws):
    from feedback.cli import main

    added = "release" not in main.commands
    main.add_command(release_group)
    try:
        result = CliRunner().invoke(main, ["release", "list", "-w", str(rws.root)])
        assert result.exit_code == 0 and result.output == "No releases yet.\n"
    finally:
        if added:
            main.commands.pop("release")


def test_load_release_gives_a_trainer_its_examples_after_checking_them(rws, tmp_path, monkeypatch):
    import datasets
    from feedback import load_release

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    made = create_release(rws, formats=("csv", "jsonl"))
    root = folder(rws, made["version"])
    everything = load_release(root)
    assert len(everything) == 40 and set(everything["split"]) <= {"train", "validation", "test"}
    train = load_release("v1", ws=rws, split="train", format="arrow")
    assert train.column_names == ["id", "text", "label"] and train.num_rows == (everything["split"] == "train").sum()
    loaded = load_release(root, format="datasets", split="train")
    assert isinstance(loaded.features["label"], datasets.ClassLabel) and len(loaded) == train.num_rows
    assert pd.read_csv(root / "data" / "train.csv")["id"].tolist() == train["id"].to_pylist()
    assert [json.loads(line)["id"] for line in (root / "data" / "test.jsonl").read_text().splitlines()] == \
        everything[everything["split"] == "test"]["id"].tolist()
    assert verify_release(rws, "v1")["ok"]  # the copies are listed in SHA256SUMS
    with pytest.raises(FeedbackError, match="has no split 'dev'"):
        load_release(root, split="dev")
    writable(root)
    (root / "data" / "train.csv").write_text("tampered\n")
    with pytest.raises(FeedbackError, match=r"does not match its SHA256SUMS: data/train.csv: checksum differs"):
        load_release(root)


def test_the_fitness_gate_compares_models_trained_on_the_candidate_and_the_parent(ws, tmp_path):
    from feedback.review import decide_many, import_labels

    ws = configure(ws, "release.gates", min_per_label=1, fitness=True, fitness_margin=0.05)
    phrases = {"card_arrival": "where is my card {} it has not arrived", "card_linking": "link card {} to the app",
               "refund_not_showing_up": "refund {} missing from balance", "lost_or_stolen_card": "card {} stolen help"}
    rows = [(f"{k}-{n}", phrase.format(text(1000 * k + n)), label, "test" if n < 6 else "")
            for k, (label, phrase) in enumerate(phrases.items()) for n in range(30)]
    path = tmp_path / "seed.csv"
    with open(path, "w", newline="") as f:
        csv_writer = __import__("csv").writer(f)
        csv_writer.writerow(["item_id", "text", "label", "split"])
        csv_writer.writerows(rows)
    import_labels(ws, [path])
    first = create_release(ws)
    assert next(g for g in first["gates"] if g["gate"] == "fitness")["status"] == "skip"  # no parent yet

    add(ws, {f"new-{n}": phrases[LABELS[n % 4]].format(text(5000 + n)) for n in range(8)})
    label(ws, {f"new-{n}": LABELS[n % 4] for n in range(8)})
    fit = next(g for g in create_release(ws)["gates"] if g["gate"] == "fitness")
    assert fit["status"] == "pass" and {"test split", "pinned test set"} <= set(fit["metrics"]), fit["detail"]
    assert fit["metrics"]["pinned test set"]["candidate"]["accuracy"] == pytest.approx(1.0)

    train = [r[0] for r in rows if not r[3]]  # a bad batch: every train label rotated to the next one
    decide_many(ws, ALICE, [(n, {"item_id": i, "label": LABELS[(LABELS.index(r[2]) + 1) % 4]})
                            for n, (i, r) in enumerate(zip(train, [r for r in rows if not r[3]]))])
    with pytest.raises(GateFailed) as failed:
        create_release(ws)
    assert "fitness: " in str(failed.value) and "less accurate than on the parent" in str(failed.value)
    manifest = show_release(ws, "v2")
    assert any(g["gate"] == "fitness" and g["metrics"] for g in manifest["gates"])
