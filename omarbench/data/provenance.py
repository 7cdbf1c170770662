"""What a dataset records about how it was made: package versions, the command line, timestamps."""

from __future__ import annotations

import math
import platform
import shlex
import sys
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from typing import Any

import numpy as np

from omarbench import __version__

PACKAGES: tuple[str, ...] = ("numpy", "torch", "zarr", "numcodecs", "mpe2", "pettingzoo")
MUJOCO_PACKAGES: tuple[str, ...] = ("mujoco", "gymnasium-robotics", "gymnasium")  # MuJoCo tasks add these


def package_versions(engine: str = "mpe") -> dict[str, str]:
    """Versions of python, omarbench and the packages that shape the data (``"absent"`` if missing).

    ``engine`` is the task's (``Task.engine``): MuJoCo tasks also record mujoco and gymnasium-robotics.
    """
    out = {"python": platform.python_version(), "omarbench": __version__}
    for name in PACKAGES + (MUJOCO_PACKAGES if engine == "mujoco" else ()):
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def command_line() -> str:
    """The running command, shell-quoted (``omarbench collect tag --level expert``)."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("omarbench", "omarbench.exe")):
        argv[0] = "omarbench"
    return " ".join(shlex.quote(a) for a in argv)


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def jsonable(value: Any, where: str = "metadata") -> Any:
    """A copy of ``value`` made of JSON types (numpy scalars and arrays converted, NaN/inf -> None).

    Raises ``ValueError`` naming the key path of anything that cannot be stored.
    """
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: keys must be strings, got {k!r}")
            out[k] = jsonable(v, f"{where}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist(), where)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{where}: cannot store a {type(value).__name__} in dataset metadata (JSON types only)")
