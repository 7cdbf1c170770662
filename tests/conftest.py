"""Shared test setup: slow end-to-end tests run only with --runslow (CI passes it).

Every test gets its own default data root (``$OMARBENCH_DATA`` under its temporary folder), so no test
reads or writes the user's data and tests can run in parallel processes (``-n auto``, pytest-xdist).
"""

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _private_default_root(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("OMARBENCH_DATA", str(tmp_path_factory.mktemp("default-root")))


@pytest.fixture(scope="session")
def golden():
    import numpy as np

    with np.load(DATA / "omar_mpe_golden.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch thread (reductions then round the same way in every run)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
