"""Code versions: which code a run's numbers came from, stable under moves, renames and comment edits.

A run key (:func:`omarbench.results.run_key`) holds a code version; a run is redone when its version
changes, so the version must change exactly when the code that decides a run's numbers does. It is a
digest over the *result-deciding* modules (:data:`RESULT_SOURCES`: learners, training and evaluation
loop, environments, fixed prey, dataset reader) and nothing else, so editing the report, the sweep,
the CLI or the docs keeps finished runs. Each module counts by its normalised source only: the text
:func:`ast.unparse` gives back after docstrings are dropped and the package-internal part of every
import is reduced to the imported names. Comments, docstrings, formatting, and where a module lives
or what it is called do not count, and the per-module digests are combined as a sorted set, so the
order (and the paths) they were found in play no part.

A task's fixed agents (tag's and world's prey) are part of its runs' versions
(:func:`omarbench.results.code_version`, :func:`omarbench.tasks.prey.prey_version_part`): the bytes of the
prey asset that task uses, or the placeholder's name when none is shipped. Only that task's asset counts,
so shipping the prey of one task (or flavor) leaves every other task's runs as they are; provenance
files next to the assets do not count.

Each algorithm's runs have their own version: the shared sources plus the algorithm's own module in
``ALGO_PACKAGE`` and the algorithm modules it imports (found in the sources, not kept in a table), so
fixing one algorithm reruns that one and the ones built on it. An algorithm module is any module of
that package but ``__init__`` and ``core``; its algorithm is the class that sets ``name = "..."``.
"""

from __future__ import annotations

import ast
import hashlib
import os
from functools import lru_cache
from pathlib import Path

PACKAGE = "omarbench"
# The package-relative paths that decide a run's numbers (a directory stands for its modules).
RESULT_SOURCES: tuple[str, ...] = ("offline", "kernels.py", "tasks", "data/reader.py", "data/schema.py")
ALGO_PACKAGE = "offline/algos"  # the algorithms' own modules; the other algorithms' are left out of a version
ALGO_SHARED: tuple[str, ...] = ("__init__", "core")  # modules of ALGO_PACKAGE every algorithm uses


class _Normalise(ast.NodeTransformer):
    """Drop docstrings; reduce package-internal imports to the names they bind."""

    def _strip_docstring(self, node):
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or ([] if isinstance(node, ast.Module) else [ast.Pass()])
        self.generic_visit(node)
        return node

    visit_Module = visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _strip_docstring

    def visit_ImportFrom(self, node: ast.ImportFrom):
        if node.level or (node.module or "").split(".")[0] == PACKAGE:
            return ast.ImportFrom(module=PACKAGE, names=node.names, level=0)
        return node

    def visit_Import(self, node: ast.Import):
        return ast.Import(names=[ast.alias(name=PACKAGE, asname=a.asname) if a.name.split(".")[0] == PACKAGE else a
                                 for a in node.names])


def normalised_source(text: str) -> str:
    """A module's source with comments, docstrings, formatting and internal import paths taken out."""
    return ast.unparse(_Normalise().visit(ast.parse(text)))


@lru_cache(maxsize=1024)
def _text_digest(text: str) -> str:
    return hashlib.sha256(normalised_source(text).encode()).hexdigest()


_EMPTY = hashlib.sha256(b"").hexdigest()  # a module with nothing but a docstring decides nothing


def _module_digest(path: Path) -> str:
    return _text_digest(path.read_text(encoding="utf-8"))


def _files(base: Path, entries, suffixes) -> list[Path]:
    out: list[Path] = []
    for entry in entries:
        path = base / entry
        if path.is_dir():
            out += [f for f in path.rglob("*") if f.is_file() and f.suffix in suffixes]
        elif path.is_file():
            out.append(path)
    return out


def algorithm_modules(base: Path, algo_package: str = ALGO_PACKAGE) -> dict[str, set[Path]]:
    """Each algorithm's own files: the module that names it and the algorithm modules it imports."""
    pkg = base / algo_package
    own = {p.stem: p for p in pkg.glob("*.py") if p.stem not in ALGO_SHARED}
    trees = {stem: ast.parse(p.read_text(encoding="utf-8")) for stem, p in own.items()}
    imports: dict[str, set[str]] = {}
    names: dict[str, str] = {}
    for stem, tree in trees.items():
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                mod = (node.module or "").split(".")[-1]
                deps |= {mod} if mod in own else set()
                deps |= {a.name for a in node.names if node.level and not node.module and a.name in own}
            elif isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    targets = getattr(stmt, "targets", ())
                    named = isinstance(stmt, ast.Assign) and any(getattr(t, "id", None) == "name" for t in targets)
                    if named and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
                        names[stmt.value.value] = stem
        imports[stem] = deps - {stem}
    out: dict[str, set[Path]] = {}
    for name, stem in names.items():
        seen, todo = set(), [stem]
        while todo:
            s = todo.pop()
            if s not in seen:
                seen.add(s)
                todo += imports.get(s, ())
        out[name] = {own[s] for s in seen}
    return out


def source_digest(package_dir: str | os.PathLike | None = None, algo: str | None = None, *,
                  sources: tuple[str, ...] = RESULT_SOURCES, algo_package: str = ALGO_PACKAGE) -> str:
    """sha256 over the normalised result-deciding modules (see the module docstring).

    With ``algo`` (a canonical name), the other algorithms' own modules are left out.
    """
    base = Path(package_dir) if package_dir is not None else Path(__file__).resolve().parent
    modules = set(_files(base, sources, (".py",)))
    if algo is not None:
        per_algo = algorithm_modules(base, algo_package)
        if algo not in per_algo:
            raise ValueError(f"no algorithm module names {algo!r}; known: {', '.join(sorted(per_algo))}")
        modules -= set().union(*per_algo.values()) - per_algo[algo]
    parts = sorted({"py:" + _module_digest(f) for f in modules if _module_digest(f) != _EMPTY})
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def combine(digest: str, part: str | None) -> str:
    """``digest`` with one more component of a run's version (``None``: unchanged)."""
    return digest if part is None else hashlib.sha256(f"{digest}\n{part}".encode()).hexdigest()


def version_string(digest: str) -> str:
    """``<omarbench version>+src.<12 hex>``."""
    from omarbench import __version__

    return f"{__version__}+src.{digest[:12]}"
