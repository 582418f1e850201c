"""The reference model, visible: `evaluate` and `predict` on real releases, their CLI, and the app's heat map."""

import csv
import hashlib
import io
import json

import pandas as pd
import pyarrow as pa
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support
from streamlit.testing.v1 import AppTest

import feedback
from feedback import create_release, ingest_files, init_workspace, load_release
from feedback.errors import FeedbackError
from feedback.learn.model import text_classifier
from feedback.review import relabel_group
from feedback.roles import Actor
from conftest import LABELS, REPO, configure, prediction

LEAD = Actor("lena", "lead")
#: Each label's own words; a text mostly carries its label's words, and every seventh the words of another label.
KEYWORDS = {"card_arrival": "card arrive delivery post", "card_linking": "link app connect add",
            "refund_not_showing_up": "refund money back merchant", "lost_or_stolen_card": "stolen lost thief wallet"}
NOISE = "please hello today still again why what when maybe yes no help".split()


def text(n: int, label: str) -> str:
    words = KEYWORDS[LABELS[(LABELS.index(label) + 1) % 4] if n % 7 == 0 else label].split()
    digest = hashlib.md5(str(n).encode()).digest()
    return " ".join([words[digest[0] % 4], words[digest[1] % 4]] + [NOISE[b % len(NOISE)] for b in digest[2:6]]
                    + [f"w{n}"])


def add_labeled(ws, start: int, stop: int, labels=LABELS) -> None:
    """Items start..stop-1, one prediction event each, labeled round-robin over `labels` by a lead."""
    chosen = {f"req-{n:03d}": labels[n % len(labels)] for n in range(start, stop)}
    path = ws.root / f"events-{start}.jsonl"
    path.write_text("".join(json.dumps(prediction(i, text=text(int(i[4:]), label))) + "\n"
                            for i, label in chosen.items()))
    assert ingest_files(ws, [path]).quarantined == 0
    for name in sorted(set(chosen.values())):
        relabel_group(ws, LEAD, sorted(i for i, v in chosen.items() if v == name), name)


def workspace(root, *, splits=None):
    ws = init_workspace(root, dataset="test", labels=LABELS)
    ws = configure(ws, "release.gates", min_per_label=1)
    return configure(ws, "release", splits=splits or {"train": 0.6, "validation": 0.1, "test": 0.3})


@pytest.fixture(scope="module")
def ews(tmp_path_factory):
    """v1 with 160 labeled items, v2 with 80 more."""
    ws = workspace(tmp_path_factory.mktemp("evaluate") / "ws")
    add_labeled(ws, 0, 160)
    create_release(ws, by=LEAD)
    add_labeled(ws, 160, 240)
    create_release(ws, by=LEAD)
    return ws


def split(ws, version, name):
    return load_release(ws.root / "releases" / "test" / version, split=name)


def test_the_metrics_are_sklearns_on_the_release_test_split_in_its_class_order(ews):
    report = feedback.evaluate(ews, "v1")
    train, test = split(ews, "v1", "train"), split(ews, "v1", "test")
    predicted = text_classifier().fit(train["text"].tolist(), train["label"].tolist()).predict(test["text"].tolist())
    truth = test["label"].tolist()
    assert report["labels"] == LABELS  # the taxonomy's order, which is the release's class order (not sorted)
    assert (report["release"], report["parent"], report["train"], report["test"]) == ("test/v1", None, len(train),
                                                                                      len(test))
    assert report["model"] == "tf-idf + logistic regression"
    assert report["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert report["macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=LABELS, zero_division=0)
    assert [(p["label"], p["support"]) for p in report["per_label"]] == list(zip(LABELS, support.tolist()))
    assert [p["precision"] for p in report["per_label"]] == pytest.approx(precision.tolist())
    assert [p["recall"] for p in report["per_label"]] == pytest.approx(recall.tolist())
    assert [p["f1"] for p in report["per_label"]] == pytest.approx(f1.tolist())
    assert report["confusion"] == confusion_matrix(truth, predicted, labels=LABELS).tolist()
    assert len(report["confusion"]) == 4 and all(len(row) == 4 for row in report["confusion"])
    assert sum(map(sum, report["confusion"])) == len(test)
    assert 0.6 < report["accuracy"] < 1  # the keywords teach it; every seventh text misleads it


def test_the_latest_release_by_default_with_its_parent(ews):
    report = feedback.evaluate(ews)
    assert (report["release"], report["parent"]) == ("test/v2", "test/v1")
    assert report["train"] + report["test"] < 240 and report["release_id"] == feedback.list_releases(ews)[-1][
        "release_id"]


def test_predict_ranks_the_labels_of_each_text(ews):
    rows = feedback.predict(ews, ["my stolen wallet thief", "refund money back please"], top=2)
    assert [r["text"] for r in rows] == ["my stolen wallet thief", "refund money back please"]
    assert [r["labels"][0]["label"] for r in rows] == ["lost_or_stolen_card", "refund_not_showing_up"]
    assert all(len(r["labels"]) == 2 and r["release"] == "test/v2" for r in rows)
    for r in rows:
        p = [x["probability"] for x in r["labels"]]
        assert p == sorted(p, reverse=True) and 0 < sum(p) <= 1 + 1e-9
    everything = feedback.predict(ews, ["link app"], release="v1", top=10)[0]
    assert everything["release"] == "test/v1" and sorted(x["label"] for x in everything["labels"]) == sorted(LABELS)
    assert sum(x["probability"] for x in everything["labels"]) == pytest.approx(1)


def test_bad_input_says_what_is_wrong(ews, tmp_path):
    with pytest.raises(FeedbackError, match=r"^release test/v9 is not recorded in this workspace"):
        feedback.evaluate(ews, "v9")
    with pytest.raises(FeedbackError, match="give one text or more"):
        feedback.predict(ews, "one text")
    with pytest.raises(FeedbackError, match="top = 0"):
        feedback.predict(ews, ["x"], top=0)
    empty = workspace(tmp_path / "empty")
    with pytest.raises(FeedbackError, match=r"^no release of test yet: make one with `feedback release create`$"):
        feedback.evaluate(empty)
    untested = workspace(tmp_path / "untested", splits={"train": 0.9, "validation": 0.1})
    add_labeled(untested, 0, 40)
    create_release(untested, by=LEAD)
    with pytest.raises(FeedbackError, match=r"^release test/v1 has no test examples \(its splits: train \d+, "
                                            r"validation \d+\); give \[release\] splits a test share"):
        feedback.evaluate(untested)
    assert feedback.predict(untested, ["link app"])[0]["labels"]  # predict needs no test split
    single = workspace(tmp_path / "single")
    add_labeled(single, 0, 20, labels=["card_linking"])
    create_release(single, by=LEAD)
    with pytest.raises(FeedbackError, match=r"^the train split of test/v1 has one label only \(card_linking\)"):
        feedback.predict(single, ["link app"])


def test_cli_evaluate_text_json_and_csv(ews, cli, tmp_path):
    report = feedback.evaluate(ews, "v2")
    result = cli("evaluate", "-w", ews.root)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith(f"test/v2: tf-idf + logistic regression trained on {report['train']:,} train examples")
    assert lines[1] == f"accuracy {report['accuracy']:.3f}, macro-F1 {report['macro_f1']:.3f}"
    assert lines[3].split() == ["label", "precision", "recall", "f1", "support"]
    assert [line.split()[0] for line in lines[4:8]] == LABELS
    matrix = lines[lines.index("confusion (rows: true label, columns: predicted, numbered as above):") + 2:]
    assert [[int(c) for c in line.split()[2:]] for line in matrix] == report["confusion"]
    assert json.loads(cli("evaluate", "v2", "--json", "-w", ews.root).output) == report
    out = tmp_path / "v2.csv"
    assert cli("evaluate", "v2", "--csv", out, "-q", "-w", ews.root).output == ""
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["label"] for r in rows] == LABELS
    for row, per_label, confusion in zip(rows, report["per_label"], report["confusion"]):
        assert float(row["f1"]) == pytest.approx(per_label["f1"]) and int(row["support"]) == per_label["support"]
        assert [int(row[f"predicted:{label}"]) for label in LABELS] == confusion
    piped = cli("evaluate", "v2", "--csv", "-", "-w", ews.root).output  # CSV alone on stdout
    assert list(csv.reader(io.StringIO(piped))) == list(csv.reader(out.open(encoding="utf-8")))


def test_cli_bad_input_exits_1_with_a_message(ews, cli, tmp_path):
    result = cli("evaluate", "v9", "-w", ews.root)
    assert result.exit_code == 1
    assert result.output.startswith("Error: release test/v9 is not recorded in this workspace")
    result = cli("predict", "hi", "-w", workspace(tmp_path / "empty").root)
    assert (result.exit_code, result.output) == (1, "Error: no release of test yet: make one with "
                                                    "`feedback release create`\n")
    assert cli("predict", "-w", ews.root).exit_code == 2  # no TEXT


def test_cli_predict(ews, cli):
    result = cli("predict", "stolen thief", "add link app", "--top", "2", "-w", ews.root)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "'stolen thief'" and lines[1].split()[1] == "lost_or_stolen_card" and len(lines) == 6
    assert lines[3] == "'add link app'" and lines[4].split()[1] == "card_linking"
    rows = json.loads(cli("predict", "stolen thief", "--release", "v1", "--json", "-w", ews.root).output)
    assert rows == feedback.predict(ews, ["stolen thief"], release="v1")


def heatmap(at) -> tuple[dict, pd.DataFrame]:
    """The spec and the data of the page's heat map (a layered Vega-Lite chart of rects)."""
    chart = next(c for c in at.get("vega_lite_chart") if '"rect"' in c.proto.spec)
    return json.loads(chart.proto.spec), pa.ipc.open_stream(chart.proto.data.data).read_pandas()


def test_the_releases_page_shows_the_confusion_heat_map_and_f1_against_the_parent_on_demand(ews, monkeypatch):
    monkeypatch.setenv("FEEDBACK_WORKSPACE", str(ews.root))
    monkeypatch.setenv("FEEDBACK_USER", "tess")
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.session_state["start_page"] = "releases"
    at.run()
    assert not at.exception and [b.label for b in at.button if b.key == "evaluate"] == ["Evaluate test/v2"]
    assert all('"rect"' not in c.proto.spec for c in at.get("vega_lite_chart"))  # nothing trained before it is asked
    at.button(key="evaluate").click().run()
    assert not at.exception and not at.error
    v2, v1 = feedback.evaluate(ews, "v2"), feedback.evaluate(ews, "v1")
    spec, cells = heatmap(at)
    assert spec["encoding"]["x"]["sort"] == spec["encoding"]["y"]["sort"] == LABELS
    assert cells.pivot(index="actual", columns="predicted", values="examples").loc[LABELS, LABELS].values.tolist() \
        == v2["confusion"]
    metrics = {m.label: (m.value, m.delta) for m in at.metric}
    assert metrics["Accuracy"] == (f"{v2['accuracy']:.3f}", f"{v2['accuracy'] - v1['accuracy']:+.3f}")
    f1 = next(d.value for d in at.dataframe if "parent_f1" in d.value.columns).set_index("label")
    for before, after in zip(v1["per_label"], v2["per_label"]):
        assert f1.loc[after["label"], "change"] == pytest.approx(after["f1"] - before["f1"])
    assert list(f1["change"]) == sorted(f1["change"])  # most fallen first
    at.selectbox(key="release-ref").set_value("test/v1").run()  # another release: asked again, and no parent
    at.button(key="evaluate").click().run()
    assert not at.exception and {m.label: m.delta for m in at.metric}["Accuracy"] == ""
    assert next(d.value for d in at.dataframe if "parent_f1" in d.value.columns)["parent_f1"].isna().all()
    assert heatmap(at)[1]["examples"].sum() == v1["test"]
