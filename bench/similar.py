"""Near-duplicate groups and pairs against exhaustive rapidfuzz comparison.

Texts: `python sample_data/make_sample.py --texts N` (100,000 at scale 1): BANKING77 texts
and perturbed near-copies of them, in skewed clusters.
ours:     `similar.group` and `similar.near_duplicate_pairs` (blocking, verification, union-find).
baseline: `similar.exhaustive_pairs`: rapidfuzz `cdist` over every pair at the same threshold,
          on all cores.
recall:   the share of the exhaustive pairs that `near_duplicate_pairs` finds; it must find
          no pair the exhaustive run does not (none below the threshold).
When the exhaustive run would take longer than EXHAUSTIVE_BUDGET (estimated from a timed
random subsample of SUBSAMPLE texts), its time is extrapolated from the subsample by the
ratio of pair counts, recall is measured on the subsample, and the rows say so.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import result
from feedback.review import similar

REPO = Path(__file__).resolve().parent.parent
TEXTS = 100_000
THRESHOLD = 90.0
SPEEDUP_TARGET = 10  # times faster than exhaustive
RECALL_TARGET = 0.95
EXHAUSTIVE_BUDGET = 600  # seconds
SUBSAMPLE = 10_000
SEED = 7


def run(scale: float) -> list[dict]:
    n = max(2, round(TEXTS * scale))
    texts = sample_texts(n)
    similar.near_duplicate_pairs(texts[:1000], threshold=THRESHOLD)  # warm up: imports, thread pools
    seconds_group, _ = timed(similar.group, texts, threshold=THRESHOLD)
    seconds_pairs, pairs = timed(similar.near_duplicate_pairs, texts, threshold=THRESHOLD)

    # Exhaustive: on a subsample first, to see whether the full run fits the budget.
    m = min(n, SUBSAMPLE)
    subsample = sorted(random.Random(SEED).sample(range(n), m))
    sub_texts = [texts[i] for i in subsample]
    seconds_sub, exact = timed(similar.exhaustive_pairs, sub_texts, threshold=THRESHOLD)
    estimate = seconds_sub * (n * (n - 1)) / max(m * (m - 1), 1)
    if m == n or estimate <= EXHAUSTIVE_BUDGET:
        if m < n:
            seconds_sub, exact = timed(similar.exhaustive_pairs, texts, threshold=THRESHOLD)
        exhaustive, how = seconds_sub, "exact run"
        recall_of = f"{n:,} texts"
    else:
        pairs = similar.near_duplicate_pairs(sub_texts, threshold=THRESHOLD)
        exhaustive = estimate
        how = f"EXTRAPOLATED (n^2) from a {m:,}-text random subsample taking {seconds_sub:.1f} s"
        recall_of = f"a {m:,}-text random subsample"

    exact_keys = {(i, j) for i, j, _ in exact}
    found = {(i, j) for i, j, _ in pairs}
    hits = len(found & exact_keys)
    target = f"<= {1 / SPEEDUP_TARGET:g} ({SPEEDUP_TARGET}x faster)"
    return [
        result("near-duplicates", f"group, {n:,} texts (exhaustive: {how})", seconds_group, "s",
               baseline=exhaustive, target=target, ok=seconds_group * SPEEDUP_TARGET <= exhaustive),
        result("near-duplicates", f"near_duplicate_pairs, {n:,} texts (exhaustive: {how})", seconds_pairs, "s",
               baseline=exhaustive, target=target, ok=seconds_pairs * SPEEDUP_TARGET <= exhaustive),
        result("near-duplicates", f"pairs found of the exhaustive pairs, threshold {THRESHOLD:g}, {recall_of}",
               hits, "pairs", baseline=len(exact_keys), target=f">= {RECALL_TARGET}",
               ok=hits >= RECALL_TARGET * len(exact_keys)),
        result("near-duplicates", f"pairs found that exhaustive does not (below threshold), {recall_of}",
               len(found - exact_keys), "pairs", target="0", ok=not found - exact_keys),
    ]


def sample_texts(n: int) -> list[str]:
    """`n` texts written by make_sample.py (a subprocess, as documented there)."""
    with tempfile.TemporaryDirectory(prefix="feedback-bench-") as tmp:
        out = Path(tmp) / "texts.jsonl"
        subprocess.run([sys.executable, "sample_data/make_sample.py", "--texts", str(n), "--out", str(out)],
                       cwd=REPO, check=True, capture_output=True)
        return [json.loads(line)["text"] for line in out.read_text().splitlines()]


def timed(function, *args, **kwargs):
    """(seconds, result) of one call."""
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - start, value
