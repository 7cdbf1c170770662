"""Joint state-action coverage (SACo) on synthetic datasets, and its line in the dataset card."""

import numpy as np
import pytest
from typer.testing import CliRunner

from omarbench.cli import app
from omarbench.data import DatasetWriter
from omarbench.data.coverage import joint_saco
from omarbench.data.synthetic import synthetic_episodes
from omarbench.tasks.spec import parse_task_id

TAG = parse_task_id("tag")


def og_marl_definition(obs, acts, decimals):
    """The definition as OG-MARL's cards state it: unique rows of np.round(state ‖ joint action) / rows."""
    rows = np.concatenate([np.asarray(x, np.float64) for x in (*obs, *acts)], axis=1)
    return len(np.unique(np.round(rows, decimals), axis=0)) / len(rows)


def test_saco_counts_distinct_rounded_joint_rows():
    rng = np.random.default_rng(0)
    obs = [rng.standard_normal((200, 6)), rng.standard_normal((200, 4))]
    acts = [rng.uniform(-1, 1, (200, 2)), rng.uniform(-1, 1, (200, 2))]
    assert joint_saco(obs, acts) == 1.0
    dup = [np.concatenate([o, o[:50]]) for o in obs], [np.concatenate([a, a[:50]]) for a in acts]
    assert joint_saco(*dup) == pytest.approx(200 / 250)
    # one agent's action alone differing keeps the row distinct
    acts2 = [np.concatenate([acts[0], acts[0][:50]]), np.concatenate([acts[1], acts[1][:50] + 0.5])]
    assert joint_saco(dup[0], acts2) == 1.0
    # coarse rounding merges nearby rows; agrees with the float definition
    coarse = [np.round(o, 1) + 1e-3 * rng.standard_normal(o.shape) for o in obs]
    for d in (4, 2, 1, 0):
        assert joint_saco(coarse, acts, d) == pytest.approx(og_marl_definition(coarse, acts, d))
    assert joint_saco([np.zeros((10, 3))], [np.zeros((10, 2))]) == pytest.approx(0.1)
    assert joint_saco([np.array([[0.0], [-0.0]])], [np.zeros((2, 1))]) == 0.5  # -0 and 0 are one value


def test_card_shows_coverage_next_to_returns(tmp_path):
    base = tmp_path / "data"
    w = DatasetWriter.create(base / "tag-expert.zarr", TAG, "expert", chunk_rows=128, durable=False)
    w.append_episodes(*synthetic_episodes(TAG, 0, 8))
    w.append_episodes(*synthetic_episodes(TAG, 0, 8))  # every transition twice
    w.finalize()
    res = CliRunner().invoke(app, ["datasets", "card", "tag-expert", "--root", str(base), "--out",
                                   str(tmp_path / "cards")])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "cards" / "tag-expert.md").read_text()
    returns, refs = md.index("## Returns"), md.index("## Reference returns")
    line = next(x for x in md.splitlines() if x.startswith("Coverage, joint SACo"))
    assert returns < md.index(line) < refs
    assert "**0.5000** at 4 decimals" in line and "**0.5000** at 1 decimal" in line
    assert "Schweighofer et al." in line and "og-marl" in line
