"""Checks of the codebase itself: the layering rules of DESIGN.md."""

import re

from conftest import REPO


def python_files():
    return [p for p in (REPO / "feedback").rglob("*.py")]


def test_only_the_store_imports_duckdb():
    importers = {p.name for p in python_files() if re.search(r"^\s*(import|from)\s+duckdb", p.read_text(), re.M)}
    assert importers == {"store.py"}


def test_library_code_never_prints():
    offenders = [p.name for p in python_files() if p.name != "cli.py" and re.search(r"^\s*print\(", p.read_text(), re.M)]
    assert offenders == []
