"""maze2d training: every algorithm of the zoo through the maze2d presets, best and final recorded, bad input."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("mujoco")
pytest.importorskip("gymnasium_robotics")

from omarbench.collect.waypoint import WaypointConfig, collect_maze2d  # noqa: E402
from omarbench.errors import UsageError  # noqa: E402
from omarbench.offline.algos import ALGO_NAMES  # noqa: E402
from omarbench.offline.maze2d_presets import LAPTOP, PAPER, QUICK  # noqa: E402
from omarbench.offline.presets import make_config  # noqa: E402
from omarbench.offline.train import best_evaluation, train  # noqa: E402

QUIET = dict(progress=False, log=lambda s: None)
TINY_RUN = {"rounds": 4, "eval_every": 2, "eval_episodes": 2, "final_episodes": 2, "batch_size": 32, "hidden": 16}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("maze2d")
    collect_maze2d("maze2d-umaze", root=root, transitions=1_200, config=WaypointConfig(reference_episodes=4),
                   **QUIET)
    return root


def test_paper_preset_is_corls_maze2d_setting():
    for algo in ALGO_NAMES:
        cfg = make_config(algo, "maze2d-large", "waypoint", "paper").to_dict()
        for key in ("rounds", "batch_size", "hidden", "lr", "gamma", "soft_update", "eval_every", "eval_episodes"):
            assert cfg[key] == PAPER[key], (algo, key)
        assert (cfg["rounds"], cfg["hidden"], cfg["lr"], cfg["batch_size"]) == (1_000_000, 256, 3e-4, 256)
    assert make_config("cql", "maze2d-umaze", "waypoint").alpha == 10.0
    assert make_config("td3bc", "maze2d-umaze", "waypoint").lam == 2.5
    assert make_config("iql", "maze2d-umaze", "waypoint").beta == 3.0
    assert make_config("icq", "maze2d-umaze", "waypoint").beta == 1.0  # ICQ's own temperature, not IQL's
    laptop = make_config("OMAR", "maze2d-medium", "waypoint", "laptop")
    paper = make_config("OMAR", "maze2d-medium", "waypoint", "paper")
    assert laptop.rounds == LAPTOP["rounds"] and laptop.replace(**{k: getattr(paper, k) for k in LAPTOP}) == paper
    quick = make_config("BC", "maze2d-large", "waypoint", "quick")
    assert (quick.rounds, quick.hidden, quick.final_episodes) == (QUICK["rounds"], 256, QUICK["final_episodes"])


@pytest.mark.parametrize("algo", ALGO_NAMES)
def test_every_algorithm_trains_on_maze2d(algo, tiny_root, tmp_path):
    recs = train(algo, "maze2d-umaze", "waypoint", [0, 1], preset="laptop", root=str(tiny_root),
                 results_dir=str(tmp_path), overrides=TINY_RUN, progress=False, checkpoint_every=0)
    assert [r["status"] for r in recs] == ["ok", "ok"]
    for r in recs:
        assert r["preset"] == "laptop" and r["level"] == "waypoint" and r["config"]["gamma"] == 0.99
        assert [p["round"] for p in r["curve"]] == [0, 2, 4]
        best = r["best"]
        assert best["round"] in (2, 4) and best["episodes"] == 2
        assert best["return"] == max(p["return"] for p in r["curve"][1:])
        assert r["final"]["episodes"] == 2
        on_disk = json.loads(next(tmp_path.glob(f"*seed{r['seed']}*.json")).read_text())
        assert on_disk["best"] == best


def test_best_evaluation_skips_round_zero_and_takes_the_earliest_tie():
    curve = [{"round": 0, "return": 9.0, "normalised": 1.0}, {"round": 5, "return": 2.0, "normalised": 0.2},
             {"round": 10, "return": 3.0, "normalised": 0.3}, {"round": 15, "return": 3.0, "normalised": 0.3}]
    assert best_evaluation(curve, 10) == {"round": 10, "return": 3.0, "normalised": 0.3, "episodes": 10}
    assert best_evaluation(curve[:1], 10) is None


def test_bad_levels_and_presets_are_one_line_errors():
    with pytest.raises(UsageError, match="unknown level 'expert'; valid choices: waypoint"):
        make_config("OMAR", "maze2d-umaze", "expert")
    with pytest.raises(UsageError, match="unknown level 'waypoint'; valid choices: random"):
        make_config("OMAR", "spread", "waypoint")
    with pytest.raises(UsageError, match="'laptop' is defined for the maze2d tasks and halfcheetah-2x3 only"):
        make_config("OMAR", "spread", "expert", "laptop")


@pytest.mark.parametrize("args,fragment", [
    (["train", "omar", "maze2d-huge", "waypoint"], "unknown maze2d task 'maze2d-huge'; valid choices"),
    (["train", "omar", "maze2d-umaze", "expert"], "unknown level 'expert'; valid choices: waypoint"),
    (["eval", "--tasks", "maze2d-umaze", "--levels", "expert", "--dry-run"], "no dataset of level expert"),
    (["eval", "--tasks", "maze2d-huge", "--dry-run"], "unknown maze2d task 'maze2d-huge'"),
])
def test_bad_maze2d_input_one_line(args, fragment, tmp_path):
    out = subprocess.run([sys.executable, "-m", "omarbench.cli", *args, "--root", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode == 2 and fragment in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_maze2d_report_labels_final_and_best_and_is_deterministic(tiny_root, tmp_path):
    from typer.testing import CliRunner

    from omarbench.cli import app

    res = tmp_path / "records"
    for algo in ("OMAR", "BC"):
        train(algo, "maze2d-umaze", "waypoint", [0, 1], preset="laptop", root=str(tiny_root), results_dir=str(res),
              overrides=TINY_RUN, progress=False, checkpoint_every=0)
    outs = {}
    for refs, out in (("ours", "a"), ("ours", "b"), ("d4rl", "c")):
        result = CliRunner().invoke(app, ["report", "--results", str(res), "--out", str(tmp_path / out),
                                          "--references", refs])
        assert result.exit_code == 0, result.output
        outs[out] = {p.name: p.read_bytes() for p in sorted((tmp_path / out).iterdir())}
    assert outs["a"] == outs["b"]  # same records, same bytes
    md = outs["a"]["leaderboard.md"].decode()
    assert "## Normalised scores: final policy" in md and "## Normalised scores: best evaluation" in md
    assert "| maze2d-umaze | OMAR |" in md and "124.7 ± 7.6" in md  # the paper's OMAR umaze cell, side by side
    d4rl = outs["c"]["leaderboard.md"].decode()
    assert "umaze 23.85 / 161.86" in d4rl and "--references d4rl" in d4rl
    assert outs["c"]["scores.csv"] != outs["a"]["scores.csv"]
    assert outs["a"]["scores.csv"].decode().splitlines()[0].startswith("task,algo,final_n,final_mean")
    mpe = CliRunner().invoke(app, ["report", "--results", str(res), "--out", str(tmp_path / "d"),
                                   "--tasks", "spread", "--references", "d4rl"])
    assert mpe.exit_code != 0
