"""The package's shape: stages import one way, each shared list is defined once, and an algorithm is one
module (the registry, run keys, the grid, the command line and the benchmarks pick it up)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import omarbench

PKG = Path(omarbench.__file__).resolve().parent

# Stages from the ground floor up; a module may import its own stage and the stages below it only.
STAGES: dict[str, int] = {
    "__init__": 0, "errors": 0, "vocab": 0, "paths": 0, "io": 0, "versions": 0, "guard": 0, "progress": 0,
    "kernels": 0, "machine": 0,
    "tasks": 1,
    "data": 2, "results": 2,
    "collect": 3, "offline": 3,
    "grid": 4, "report": 4,
    "perf": 5, "interop": 5,
    "cli": 6,
}


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        rel = f.relative_to(PKG.parent).with_suffix("")
        out[".".join(rel.parts).removesuffix(".__init__")] = f
    return out


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> set[str]:
    """Every omarbench module ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "omarbench":
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "omarbench")
    return found


def test_every_stage_is_ranked():
    assert {_stage(m) for m in _modules()} == set(STAGES)


def test_stages_import_only_their_own_and_lower_stages():
    modules = _modules()
    wrong = []
    for mod, path in modules.items():
        for target in _imports(path):
            if target not in modules:  # a name imported from a module, not a module
                continue
            a, b = _stage(mod), _stage(target)
            # the ground floor's modules may use each other (the cycle test still applies)
            if a != b and (STAGES[b] > STAGES[a] or STAGES[b] == STAGES[a] > 0):
                wrong.append(f"{mod} imports {target}")
    assert not wrong, "imports against the flow of the pipeline:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles_between_modules():
    modules = _modules()
    graph = {m: {t for t in _imports(p) if t in modules and t != m} for m, p in modules.items()}
    # a package's __init__ importing its own submodules is not a cycle of the code's layering
    for m in graph:
        graph[m] = {t for t in graph[m] if not t.startswith(m + ".")}
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail[trail.index(t):] + [m, t])
                                     if t in trail else f"import cycle through {m} -> {t}")
            if t not in state:
                visit(t, trail + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_no_module_is_much_over_450_lines():
    """About 450 at most: the dataset writer (459) and the batched networks (485) are the longest."""
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > 490}
    assert not long


@pytest.mark.parametrize("name", ["LEVELS", "PRESETS", "BACKENDS", "FLAVORS", "PAPER_ALGOS", "PAPER_TASKS",
                                  "DEFAULT_SEEDS", "EXECUTORS"])
def test_each_shared_list_is_defined_once(name):
    """The values of the vocabulary are written out in omarbench/vocab.py and nowhere else."""
    from omarbench import vocab

    value = getattr(vocab, name)
    copies = []
    for path in PKG.rglob("*.py"):
        if path.name == "vocab.py" and path.parent == PKG:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Tuple, ast.List, ast.Dict)):
                try:
                    literal = ast.literal_eval(node)
                except ValueError:
                    continue
                if literal == value or (isinstance(value, tuple) and isinstance(literal, list)
                                        and tuple(literal) == value):
                    copies.append(f"{path.relative_to(PKG)}:{node.lineno}")
    assert not copies, f"{name} is written out again at {', '.join(copies)}"


DEMO = '''
"""A demonstration algorithm: TD3+BC's actor with its own weight."""

from dataclasses import dataclass

from omarbench.offline.algos.core import Algorithm, TD3Config


@dataclass
class DemoConfig(TD3Config):
    weight: float = 1.0


class Demo(Algorithm):
    name = "DEMO-X"
    aliases = ("demox",)
    config_cls = DemoConfig

    def actor_loss(self, L, b, pi):
        return -L.q1(b.obs, pi).mean(1) + self.cfg.weight * (pi - b.act).square().mean((1, 2))
'''

CHECK = '''
import sys
from omarbench.grid import sweep
from omarbench.offline.algos import ALGORITHMS, canonical_name
from omarbench.offline.presets import resolve_config
from omarbench.perf import zoo
from omarbench.results import code_version

assert "DEMO-X" in ALGORITHMS and canonical_name("DemoX") == "DEMO-X"
assert "DEMO-X" in sweep.parse_algos("all") and sweep.parse_algos("demox") == ("DEMO-X",)
assert resolve_config("demox", "spread", "expert", "quick")["weight"] == 1.0
assert "DEMO-X" in zoo.order()
print(code_version("DEMO-X"))
'''


@pytest.mark.slow
def test_adding_an_algorithm_module_is_all_it_takes(tmp_path):
    """Drop one file into offline/algos/ of a copy of the package: the registry, the run keys, the grid,
    the command line and the benchmarks know the algorithm, and no other algorithm's version changes."""
    from omarbench.offline.algos import ALGO_NAMES
    from omarbench.versions import source_digest

    root = tmp_path / "src"
    shutil.copytree(PKG, root / "omarbench", ignore=shutil.ignore_patterns("__pycache__"))
    pkg = root / "omarbench"
    before = {a: source_digest(pkg, a) for a in ALGO_NAMES}
    (pkg / "offline" / "algos" / "demo_x.py").write_text(DEMO)
    assert {a: source_digest(pkg, a) for a in ALGO_NAMES} == before
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(source_digest(pkg, "DEMO-X")[:12])
    cli = subprocess.run(
        [sys.executable, "-m", "omarbench.cli", "eval", "--algos", "demox,omar", "--tasks", "spread",
         "--levels", "expert", "--seeds", "1", "--preset", "quick", "--root", str(tmp_path / "data"),
         "--dry-run", "--no-progress"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    assert cli.returncode == 0, cli.stderr
    assert "would run DEMO-X spread expert seeds 0" in cli.stderr
    bad = subprocess.run([sys.executable, "-m", "omarbench.cli", "train", "nope", "spread", "expert"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "DEMO-X" in bad.stderr and "MA-IQL" in bad.stderr
