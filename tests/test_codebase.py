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


def test_the_app_imports_only_streamlit_and_feedback():
    imports = re.findall(r"^(?:import|from)\s+([\w.]+)", (REPO / "app.py").read_text(), re.M)
    assert {name.split(".")[0] for name in imports} == {"streamlit", "feedback"}


def test_the_app_holds_no_sql():
    assert not re.search(r"\b(SELECT|INSERT|UPDATE|DELETE)\b", (REPO / "app.py").read_text())
