"""Checks of the codebase itself: the layering rules of DESIGN.md, and a CLI that starts light."""

import ast
import re
import subprocess
import sys

from conftest import REPO

PACKAGE = REPO / "feedback"
#: Each part imports from layers below its own, never beside or above it (shells may use each other).
LAYERS = {"errors": 0, "lazy": 0, "progress": 0, "processes": 1, "store": 1, "workspace": 2, "roles": 3, "hooks": 3, "capture": 4,
          "review": 5, "learn": 6, "release": 7, "monitor": 8, "loop": 9, "config_file": 10,  # it renders every part's defaults
          "cli": 11, "server": 11, "api": 11, "demo": 11, "app": 11, "__main__": 11}
SHELLS = {"cli", "server", "api", "demo", "app", "__main__"}
HEAVY = ("sklearn", "streamlit", "fastapi", "uvicorn", "rapidfuzz", "pandas", "pyarrow", "duckdb", "numpy", "scipy")


def python_files():
    return sorted(PACKAGE.rglob("*.py"))


def module_name(path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    return (REPO / name.replace(".", "/")).with_suffix(".py").is_file()


def imports_of(path) -> set[str]:
    """The feedback modules and packages a file imports, anywhere in it (imports inside functions too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("feedback")}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            target = ".".join(filter(None, [base, node.module]))
            if target.startswith("feedback"):
                found |= {target} | {f"{target}.{a.name}" for a in node.names if is_module(f"{target}.{a.name}")}
    return found - {name}


def part(module: str) -> str:
    return module.split(".")[1] if "." in module else "__init__"


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in python_files()}


def importers(library: str) -> set[str]:
    return {module_name(p) for p in python_files() if re.search(rf"^\s*(import|from)\s+{library}\b", p.read_text(), re.M)}


def test_only_the_store_imports_a_database_driver():
    assert importers("duckdb") == {"feedback.store.embedded"}
    assert importers("psycopg") == {"feedback.store.postgres", "feedback.store.local_server"}


def allowed(module: str, target: str) -> bool:
    a, b = part(module), part(target)
    if a == b or "__init__" in (a, b):
        return True
    return LAYERS[b] < LAYERS[a] or (LAYERS[b] == LAYERS[a] and a in SHELLS)


def test_every_part_imports_only_from_layers_below():
    wrong = [(module, target) for module, targets in graph().items() for target in targets if not allowed(module, target)]
    assert wrong == []
    assert set(LAYERS) == {part(module_name(p)) for p in python_files()} - {"__init__"}


def test_no_capability_imports_a_shell():
    wrong = [(module, target) for module, targets in graph().items() if part(module) not in SHELLS
             for target in targets if part(target) in SHELLS]
    assert wrong == []


def test_no_import_circles_between_modules():
    modules = graph()
    packages = {m for m in modules if not is_module(m)}  # their names load lazily: importing one runs no module
    edges = {m: (targets & modules.keys()) - packages for m, targets in modules.items()}
    done, path = set(), []

    def visit(module):
        if module in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(module):] + [module]))
        if module in done:
            return
        path.append(module)
        for target in sorted(edges[module]):
            visit(target)
        path.pop()
        done.add(module)

    for module in sorted(edges):
        visit(module)


def test_importing_the_cli_loads_no_heavy_library():
    code = f"import sys, feedback.cli; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_the_sdk_loads_no_heavy_library():
    code = f"import sys, feedback; feedback.Client; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_library_code_never_prints():
    def prints(path) -> bool:  # a call of print(), not an example in a docstring
        return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
                   for node in ast.walk(ast.parse(path.read_text())))

    offenders = [module_name(p) for p in python_files() if part(module_name(p)) != "cli" and prints(p)]
    assert offenders == []


def test_the_app_imports_only_streamlit_and_feedback():
    imports = re.findall(r"^(?:import|from)\s+([\w.]+)", (REPO / "app.py").read_text(), re.M)
    assert {name.split(".")[0] for name in imports} == {"streamlit", "feedback"}


def test_the_app_holds_no_sql():
    assert not re.search(r"\b(SELECT|INSERT|UPDATE|DELETE)\b", (REPO / "app.py").read_text())
