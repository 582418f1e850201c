"""Rebuild the compact dataset copies of bench/data from public repository snapshots (see bench/README.md).

    python bench/data/build.py MIRROR   # MIRROR holds owner+name/repo bare git dirs of the sources

Each copy is `<name>.csv.gz` with columns text, label, split (train or test), rows in source order.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

OUT = Path(__file__).parent
HWU = "CrossValidation/autoGeneFromRealAnno/autoGene_2018_03_22-13_01_25_169/CrossValidation"
SNIPS = "2017-06-custom-intent-engines"
SNIPS_INTENTS = ("AddToPlaylist", "BookRestaurant", "GetWeather", "PlayMusic", "RateBook", "SearchCreativeWork",
                 "SearchScreeningEvent")


def show(repo: Path, path: str) -> str:
    data = subprocess.run(["git", "--git-dir", str(repo), "show", f"HEAD:{path}"], check=True,
                          capture_output=True).stdout
    return data.decode("utf-8", errors="replace")


def files(repo: Path, under: str) -> list[str]:
    listed = subprocess.run(["git", "--git-dir", str(repo), "ls-tree", "-r", "--name-only", "HEAD", under],
                            check=True, capture_output=True, text=True).stdout
    return sorted(listed.split())


def clinc150(repo: Path) -> pd.DataFrame:
    """The 150 in-scope intents of data_full.json: train (100 each) and test (30 each); val and oos dropped."""
    data = json.loads(show(repo, "data/data_full.json"))
    return pd.DataFrame([(text, label, split) for split in ("train", "test") for text, label in data[split]],
                        columns=["text", "label", "split"])


def hwu64(repo: Path) -> pd.DataFrame:
    """The 10 cross-validation test folds (together, every annotated text once): folds 1-9 train, 10 test."""
    rows = []
    for fold in range(1, 11):
        for path in files(repo, f"{HWU}/KFold_{fold}/testset/text"):
            label = Path(path).stem
            rows += [(line.strip(), label, "test" if fold == 10 else "train")
                     for line in show(repo, path).splitlines() if line.strip()]
    return pd.DataFrame(rows, columns=["text", "label", "split"])


def snips(repo: Path) -> pd.DataFrame:
    """The 7 custom intents: train_<intent>_full.json as train, validate_<intent>.json (100 each) as test."""
    rows = []
    for split, name in (("train", "train_{}_full.json"), ("test", "validate_{}.json")):
        for intent in SNIPS_INTENTS:
            for query in json.loads(show(repo, f"{SNIPS}/{intent}/{name.format(intent)}"))[intent]:
                rows.append(("".join(part["text"] for part in query["data"]).strip(), intent, split))
    return pd.DataFrame(rows, columns=["text", "label", "split"])


def main(mirror: Path) -> None:
    sources = {"clinc150": (clinc150, "clinc+oos-eval"), "hwu64": (hwu64, "xliuhw+NLU-Evaluation-Data"),
               "snips": (snips, "sonos+nlu-benchmark")}
    for name, (build, repo) in sources.items():
        frame = build(mirror / repo / "repo")
        frame = frame[frame["text"] != ""].drop_duplicates(["text", "label"])
        frame.to_csv(OUT / f"{name}.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
        counts = frame["split"].value_counts()
        print(f"{name}: {len(frame):,} rows ({counts.get('train', 0):,} train, {counts.get('test', 0):,} test), "
              f"{frame['label'].nunique()} labels, {(OUT / f'{name}.csv.gz').stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
