"""The offline algorithm zoo, one module per algorithm, all on one batched core (:mod:`.core`).

An algorithm is a module of this package that defines a subclass of :class:`~.core.Algorithm` with a
``name`` (and optional ``aliases``), its config dataclass (``config_cls``) and the hooks it changes;
dropping such a module here is all it takes: the registry below finds it, and run keys
(:mod:`omarbench.versions`), the grid's choices (``omarbench eval --algos``), the command line and the
benchmarks take their algorithms from here.

``get_algorithm(name)`` accepts the names (``OMAR``, ``MA-CQL``, ...) and the aliases each module
declares (``omar``, ``cql``, ``td3bc``, ...), case-insensitively.
"""

from __future__ import annotations

import importlib
import pkgutil

from omarbench.errors import bad_choice
from omarbench.offline.algos.core import Algorithm, Learner, TD3Config
from omarbench.vocab import PAPER_ALGOS

SHARED_MODULES = ("core",)  # modules of this package that are not algorithms


def discover() -> dict[str, type[Algorithm]]:
    """Every algorithm defined by a module of this package: the paper's four first, then by name."""
    found: dict[str, type[Algorithm]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name in SHARED_MODULES or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for obj in vars(module).values():
            if (isinstance(obj, type) and issubclass(obj, Algorithm) and obj.__module__ == module.__name__
                    and "name" in vars(obj)):
                if obj.name in found and found[obj.name] is not obj:
                    raise RuntimeError(f"two algorithms are named {obj.name!r}")
                found[obj.name] = obj
    order = [n for n in PAPER_ALGOS if n in found] + sorted(n for n in found if n not in PAPER_ALGOS)
    return {n: found[n] for n in order}


def _aliases(algorithms: dict[str, type[Algorithm]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, cls in algorithms.items():
        for alias in (name, *cls.aliases):
            key = _key(alias)
            if out.get(key, name) != name:
                raise RuntimeError(f"alias {alias!r} names both {out[key]!r} and {name!r}")
            out[key] = name
    return out


def _key(text: str) -> str:
    return str(text).strip().lower().replace("_", "-")


ALGORITHMS: dict[str, type[Algorithm]] = discover()
ALGO_NAMES: tuple[str, ...] = tuple(ALGORITHMS)
_ALIASES = _aliases(ALGORITHMS)


def canonical_name(name: str) -> str:
    """Name or alias → canonical algorithm name; one-line :class:`UsageError` otherwise."""
    key = _key(name)
    if key not in _ALIASES:
        raise bad_choice("algorithm", name, ALGO_NAMES)
    return _ALIASES[key]


def get_algorithm(name: str) -> type[Algorithm]:
    return ALGORITHMS[canonical_name(name)]


__all__ = ["ALGORITHMS", "ALGO_NAMES", "Algorithm", "Learner", "TD3Config", "canonical_name", "discover",
           "get_algorithm"]
