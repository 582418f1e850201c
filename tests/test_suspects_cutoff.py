"""The suspects cutoff follows the noise: real human label errors on ambiguous news texts, and small labels."""

import pandas as pd
import pytest

from feedback import init_workspace
from feedback.learn import find_suspects
from feedback.review import import_labels
from feedback.roles import Actor
from conftest import REPO

LEAD = Actor("lead", "lead")
NEWS = REPO / "bench" / "data" / "noisyag_news.csv.gz"  # NoisyAG-News: human majority labels against AG News


def workspace(root, rows: pd.DataFrame):
    """A workspace whose trusted labels are the human ones of `rows`, imported."""
    ws = init_workspace(root / "ws", dataset="news")
    path = root / "labels.csv"
    rows.assign(item_id=[f"n{i:04d}" for i in range(len(rows))])[["item_id", "text", "label_human"]].rename(
        columns={"label_human": "label"}).to_csv(path, index=False)
    import_labels(ws, [path], by=LEAD)
    return ws


@pytest.fixture(scope="module")
def news():
    return pd.read_csv(NEWS).sample(1000, random_state=0).reset_index(drop=True)


def test_on_ambiguous_texts_the_default_flags_about_as_many_as_are_wrong(news, tmp_path):
    """1,000 news texts, 206 human labels wrong, most on texts the model is unsure of: the confident
    joint's count flagged 51; the default now flags close to the true count, and finds a third of them."""
    found = find_suspects(workspace(tmp_path, news), dry_run=True, scores=True)
    wrong = {f"n{i:04d}" for i in range(len(news)) if news.label_gold[i] != news.label_human[i]}
    assert found["judged"] == 1000 and len(wrong) == 206
    assert 0.6 * len(wrong) <= found["flagged"] <= 1.4 * len(wrong)
    flagged = {s["item_id"] for s in found["scores"] if s["flagged"]}
    assert len(flagged & wrong) >= 0.3 * len(wrong) and len(flagged & wrong) >= 0.4 * len(flagged)


def test_labels_with_10_to_29_examples_are_judged(news, tmp_path):
    small = news.groupby("label_human", group_keys=False).head(12).reset_index(drop=True)
    found = find_suspects(workspace(tmp_path, small), dry_run=True)
    assert (found["labeled"], found["judged"], found["too_few"]) == (48, 48, 0)
