"""Exchange with the formats other offline-RL and MARL tools use.

One module per peer format:

    marl_eval   run records as the JSON layout of InstaDeep's marl-eval (``id-marl-eval`` on PyPI)
    minari      single-agent datasets exported as Minari datasets (Farama Foundation)
    gym_env     a single-agent task as a Gymnasium environment (what Minari recovers)
    og_marl     OG-MARL's flashbax vaults (TensorStore OCDBT + Zarr) imported into our Zarr format

(The cards' coverage statistic is in ``omarbench.data.coverage``, the report's best-vs-final table in
``omarbench.report.best``: they belong to those stages.)

Each peer package is an optional extra; :func:`require` turns a missing one into a one-line error that
names the extra to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from omarbench.errors import OmarbenchError


class MissingExtraError(OmarbenchError):
    """An optional dependency is not installed."""


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{what} needs the Python package {module.split('.')[0]!r} ({type(exc).__name__}: {exc}); "
            f'install it with: pip install -e ".[{extra}]"'
        ) from None
