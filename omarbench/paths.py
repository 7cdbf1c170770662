"""Where things live on disk: the data root, a preset's sub-root, the default results directory."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from omarbench.errors import OmarbenchError

DATA_ENV_VAR = "OMARBENCH_DATA"
DEFAULT_DATA_ROOT = "~/.local/share/omarbench/datasets"


def default_root() -> Path:
    """``$OMARBENCH_DATA`` if set, else ``~/.local/share/omarbench/datasets``."""
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path(DEFAULT_DATA_ROOT).expanduser()


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else :func:`default_root`."""
    return Path(root).expanduser() if root else default_root()


def preset_root(root: str | os.PathLike | None, preset: str = "paper", task_id: str | None = None) -> Path:
    """The data root a collection preset uses (for ``task_id``): ``root`` for ``paper``, ``root/<preset>``
    otherwise; a training-only preset uses its data preset's (:func:`omarbench.vocab.data_preset`).

    Keeping small-budget datasets apart means a ``paper`` run can never pick up a ``quick`` dataset
    of the same id (or the other way round).
    """
    from omarbench.vocab import data_preset

    base = Path(root).expanduser() if root is not None else default_root()
    preset = data_preset(preset, task_id)  # a training-only preset (maze2d's laptop) reads the paper datasets
    return base if preset == "paper" else base / preset


def results_dir(root: str | os.PathLike | None = None, preset: str = "paper") -> Path:
    """The default results directory: ``<preset's data root>/results``."""
    return preset_root(data_root(root), preset) / "results"


def check_writable(root: Path) -> None:
    """One-line error unless ``root`` can be created and written to."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root):
            pass
    except OSError as exc:
        raise OmarbenchError(f"data root {str(root)!r} is not writable ({exc.strerror or exc})") from None
