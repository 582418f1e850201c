"""The soak as a test: every kind of process at once on one workspace for a minute (`bench/soak.py` runs it
for three and measures the reviewer's p99); nobody may see "store busy", and nothing may be lost.

Sized for a 2-core machine; deselect it with `-m "not soak"`.
"""

import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO))  # the soak's processes live in bench/, beside tests/
from bench.soak import problems, soak  # noqa: E402


@pytest.mark.soak
def test_every_kind_of_process_at_once_sees_no_store_busy_and_loses_nothing(tmp_path):
    report = soak(tmp_path, seconds=60, seed_labels=600)
    assert problems(report) == []  # no store busy, no other error, every event once, every decision kept
    done = report["done"]
    assert done.get("lib-ann decide", 0) >= 10 and done.get("cli-bob label", 0) >= 2
    assert done.get("sampler sampler", 0) >= 2 and done.get("release release", 0) >= 1
    assert done.get("status status", 0) >= 5 and min(done.get("i1 ingest", 0), done.get("i2 ingest", 0)) >= 5
    assert sum(n["accepted"] for n in report["events"].values()) >= 3000
