"""Run the benchmarks named on the command line (default: all of them)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil

import omarbench.perf as bench_pkg


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(bench_pkg.__path__) if not m.name.startswith("_"))


def main() -> None:
    names = available()
    parser = argparse.ArgumentParser(prog="python -m omarbench.perf", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    args = parser.parse_args()
    for name in args.names or names:
        print(f"\n=== bench: {name} ===", flush=True)
        importlib.import_module(f"omarbench.perf.{name}").run(quick=args.quick)


if __name__ == "__main__":
    main()
