"""Public names that load their module on first use, so `import feedback` and the CLI stay light.

A package states its public API as plain imports under `if TYPE_CHECKING:`, where readers and
type checkers see them, and ends with

    __getattr__, __dir__, __all__ = exports(__name__, __file__)

which reads those imports and loads each name's module (and so numpy, pyarrow, DuckDB or
scikit-learn) only when the name is first used.
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path
from typing import Callable


def exports(package: str, init_file: str) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """`__getattr__`, `__dir__` and `__all__` for the package whose `__init__.py` is `init_file`."""
    sources = _type_checking_imports(Path(init_file))

    def __getattr__(name: str):
        if name not in sources:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = sources[name]
        value = getattr(importlib.import_module(module, package), attribute)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(sources))

    return __getattr__, __dir__, sorted(sources)


def _type_checking_imports(path: Path) -> dict[str, tuple[str, str]]:
    """{public name: (relative module, attribute)} from the `from .x import y` lines under `if TYPE_CHECKING:`."""
    sources = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                if not isinstance(statement, ast.ImportFrom) or not statement.level:
                    raise ImportError(f"{path}: only relative `from .module import name` lines may be exported lazily")
                module = "." * statement.level + (statement.module or "")
                for alias in statement.names:
                    sources[alias.asname or alias.name] = (module, alias.name)
    return sources
