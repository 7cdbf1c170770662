"""Import a peer package that an optional extra installs: skipped where it is missing, except in CI
(``CI`` set, as ``.ci/run`` runs), where the extras are installed and a missing one is a failure."""

import importlib
import os

import pytest


def peer(module: str, extra: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{module} not installed ({exc}); pip install -e \".[{extra}]\"")
