"""The public intent datasets the learning benchmarks run on (sources and licenses in bench/README.md).

`load(name, split)` gives (texts, labels) of one split ("train", "test", or None for both). The
copies live in bench/data (rebuilt by bench/data/build.py); BANKING77 is read from $BANKING77_DIR,
by default /work/shared/data/banking77 (train.csv, test.csv with columns text, category).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

DATA = Path(__file__).parent / "data"
BANKING77 = Path(os.environ.get("BANKING77_DIR", "/work/shared/data/banking77"))
#: name -> what it is (class count and text shape)
NAMES = {
    "banking77": "77 online-banking intents, short queries",
    "clinc150": "150 intents over 10 domains, short queries (out-of-scope dropped)",
    "hwu64": "64 home-assistant intents, short commands, unbalanced (38 to 194 per intent)",
    "snips": "7 voice-assistant intents, short queries with names and places",
}


def load(name: str, split: str | None = "train") -> tuple[list[str], list[str]]:
    """(texts, labels) of dataset `name`, one split ("train" or "test") or both (None), in file order."""
    frame = _frame(name)
    if split is not None:
        if split not in ("train", "test"):
            raise ValueError(f"split {split!r} is not train, test or None")
        frame = frame[frame["split"] == split]
    return frame["text"].tolist(), frame["label"].tolist()


def _frame(name: str) -> pd.DataFrame:
    if name not in NAMES:
        raise ValueError(f"no dataset named {name!r}; choose from {', '.join(NAMES)}")
    if name != "banking77":
        return pd.read_csv(DATA / f"{name}.csv.gz", keep_default_na=False)
    try:
        parts = [pd.read_csv(BANKING77 / f"{split}.csv").assign(split=split) for split in ("train", "test")]
    except FileNotFoundError:
        raise FileNotFoundError(f"BANKING77 is not in {BANKING77} (train.csv, test.csv with columns text, category); "
                                "set BANKING77_DIR to its folder") from None
    return pd.concat(parts, ignore_index=True).rename(columns={"category": "label"})
