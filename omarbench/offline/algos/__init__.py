"""The offline algorithm zoo: MA-ICQ, MA-TD3+BC, MA-CQL, OMAR and BC on one batched TD3 core.

``get_algorithm(name)`` accepts the user names (``OMAR``, ``MA-CQL``, ...) and short aliases
(``omar``, ``cql``, ``td3bc``, ``icq``, ``bc``), case-insensitively.
"""

from __future__ import annotations

from omarbench.errors import bad_choice
from omarbench.offline.algos.bc import BC
from omarbench.offline.algos.core import Algorithm, TD3Config
from omarbench.offline.algos.cql import CQL
from omarbench.offline.algos.icq import ICQ
from omarbench.offline.algos.omar import OMAR
from omarbench.offline.algos.td3bc import TD3BC

ALGORITHMS: dict[str, type[Algorithm]] = {a.name: a for a in (ICQ, TD3BC, CQL, OMAR, BC)}
ALGO_NAMES: tuple[str, ...] = tuple(ALGORITHMS)

_ALIASES = {
    "ma-icq": "MA-ICQ", "icq": "MA-ICQ", "maicq": "MA-ICQ",
    "ma-td3+bc": "MA-TD3+BC", "td3+bc": "MA-TD3+BC", "td3bc": "MA-TD3+BC", "ma-td3bc": "MA-TD3+BC",
    "matd3bc": "MA-TD3+BC",
    "ma-cql": "MA-CQL", "cql": "MA-CQL", "macql": "MA-CQL",
    "omar": "OMAR",
    "bc": "BC",
}


def canonical_name(name: str) -> str:
    """User name or alias → canonical algorithm name; one-line :class:`UsageError` otherwise."""
    key = str(name).strip().lower().replace("_", "-")
    if key not in _ALIASES:
        raise bad_choice("algorithm", name, ALGO_NAMES)
    return _ALIASES[key]


def get_algorithm(name: str) -> type[Algorithm]:
    return ALGORITHMS[canonical_name(name)]


def default_config(name: str) -> TD3Config:
    return get_algorithm(name).config_cls()


__all__ = ["ALGORITHMS", "ALGO_NAMES", "Algorithm", "TD3Config", "canonical_name", "default_config",
           "get_algorithm"]
