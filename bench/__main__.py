"""Run the benchmarks and print a table: `python -m bench [--only NAME] [--scale 0.01]`.

Exits 1 when a benchmark misses its target or fails, 2 on misuse.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import sys
import time
import traceback

import bench


def discover() -> dict:
    """Modules of `bench` that define `run(scale)`, by name."""
    modules = {}
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            module = importlib.import_module(f"bench.{info.name}")
            if callable(getattr(module, "run", None)):
                modules[info.name] = module
    return modules


def render(rows: list[dict]) -> str:
    def cell(row, column):
        value = row[column]
        if column == "ok":
            return "yes" if value else "MISS"
        if value is None:
            return "-"
        if column == "ratio":
            return f"{value:.2f}"
        if isinstance(value, float) and column in ("value", "baseline"):
            return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)

    table = [bench.COLUMNS] + [tuple(cell(r, c) for c in bench.COLUMNS) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(bench.COLUMNS))]
    numeric = {"value", "baseline", "ratio"}
    lines = [
        "  ".join(text.rjust(w) if c in numeric else text.ljust(w) for text, w, c in zip(line, widths, bench.COLUMNS))
        for line in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0],
                                     epilog="example: python -m bench --only capture_ingest --scale 0.01")
    parser.add_argument("--only", metavar="NAME", action="append", help="run only this module (repeatable)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full workload (default 1.0)")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    modules = discover()
    unknown = set(args.only or ()) - modules.keys()
    if unknown:
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}; choose from {', '.join(modules)}")
    selected = {name: m for name, m in modules.items() if not args.only or name in args.only}

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"scale {args.scale:g} | {os.cpu_count()} CPUs, load {load} | Python {platform.python_version()} | {platform.platform()}")
    rows, failed = [], []
    for name, module in selected.items():
        print(f"running {name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        try:
            rows += module.run(args.scale)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f"  {name} took {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    print(render(rows))
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed or not all(r["ok"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
