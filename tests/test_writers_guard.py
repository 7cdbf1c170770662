"""Writers that share a data root: one writer per behaviour run, unique temporary names, leftovers of
killed writers removed on the next start, a damaged finished dataset told apart from a good one, and
output paths refused before anything is created."""

import os
import shutil
import threading
import time

import pytest

from omarbench import io as omarbench_io
from omarbench.collect.api import collect
from omarbench.collect.collector import behaviour_dir, tiny_config
from omarbench.data import DatasetWriter
from omarbench.data.synthetic import synthetic_episodes
from omarbench.errors import OmarbenchError, UsageError
from omarbench.guard import FileLock, check_output_dir, check_output_file, clean_stale_temps, tmp_leftovers
from omarbench.tasks.spec import parse_task_id

TASK = parse_task_id("spread-n1")
CFG = tiny_config(total_steps=1_000, transitions=250)
DEAD_PID = 2**22 + 12345  # above Linux's default pid_max: never a live process


def test_stale_temporaries_go_live_ones_stay(tmp_path):
    mine = tmp_path / f".a.json.{os.getpid()}.0123456789ab.tmp"
    dead = tmp_path / f".a.json.{DEAD_PID}.0123456789ab.tmp"
    making = tmp_path / f".spread-random.zarr.creating-{DEAD_PID}-0123abcd"
    old_style = tmp_path / ".spread-medium.zarr.creating-89abcdef"  # made before names carried a pid
    keep = tmp_path / ".hidden-but-not-ours"
    for p in (mine, dead, keep):
        p.write_text("x")
    for p in (making, old_style):
        (p / "agents").mkdir(parents=True)
    removed = clean_stale_temps(tmp_path)
    assert sorted(removed) == sorted([dead, making, old_style])
    assert mine.exists() and keep.exists() and tmp_leftovers(tmp_path) == [mine]


def test_creating_a_store_clears_half_made_ones_of_killed_writers(tmp_path):
    left = tmp_path / f".spread-n1-random.zarr.creating-{DEAD_PID}-0123abcd"
    left.mkdir()
    w = DatasetWriter.create(tmp_path / "spread-n1-expert.zarr", TASK, "expert", durable=False)
    w.append_episodes(*synthetic_episodes(TASK, 0, 2))
    w.finalize()
    assert not left.exists() and not tmp_leftovers(tmp_path)


def test_behaviour_run_files_use_unique_temporary_names(tmp_path, monkeypatch):
    import omarbench.collect.run as run_mod

    names = []
    real = os.replace

    def spy(src, dst):
        names.append(os.path.basename(src))
        return real(src, dst)

    monkeypatch.setattr(omarbench_io.os, "replace", spy)
    run = run_mod.BehaviourRun(TASK, tmp_path / "run", CFG.run, seed=0)
    run.train()
    assert names and all(n.startswith(".") and f".{os.getpid()}." in n and n.endswith(".tmp") for n in names)
    assert not tmp_leftovers(tmp_path / "run") and not tmp_leftovers(tmp_path / "run" / "experience")


def test_a_second_collect_waits_for_the_first_then_reuses_its_work(tmp_path):
    run_dir = behaviour_dir(tmp_path, TASK, 0, "paper")
    holder = FileLock(run_dir.parent / f".{run_dir.name}.lock", "run").acquire()
    logs = []
    threading.Timer(0.5, holder.release).start()
    t0 = time.time()
    (path,) = collect("spread-n1", "random", root=tmp_path, config=CFG, progress=False, log=logs.append)
    assert time.time() - t0 >= 0.5
    assert any(f"waiting for process {os.getpid()}" in line and "behaviour run" in line for line in logs), logs
    again = []
    collect("spread-n1", "random", root=tmp_path, config=CFG, progress=False, log=again.append)
    assert any("reusing the finished behaviour run" in line for line in again)
    assert any("is complete" in line for line in again)
    assert not list(run_dir.parent.glob(".*.lock")) and not tmp_leftovers(tmp_path)


def test_a_complete_but_damaged_dataset_is_not_called_ready(tmp_path):
    (path,) = collect("spread-n1", "random", root=tmp_path, config=CFG, progress=False, log=lambda s: None)
    chunk = sorted(p for p in path.rglob("*") if p.is_file() and "/c/" in p.as_posix())[0]
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(OmarbenchError) as exc:
        collect("spread-n1", "random", root=tmp_path, config=CFG, progress=False, log=lambda s: None)
    msg = str(exc.value)
    assert "complete but damaged" in msg and "rm -r" in msg and str(path) in msg and "\n" not in msg
    shutil.rmtree(path)  # doing what it says gives the same dataset back
    (again,) = collect("spread-n1", "random", root=tmp_path, config=CFG, progress=False, log=lambda s: None)
    assert again == path


def test_output_paths_are_checked_before_anything_is_made(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for bad, fragment in ((afile, "is a file, not a directory"), (afile / "sub" / "deeper", "is a file")):
        with pytest.raises(UsageError, match=fragment):
            check_output_dir(bad, "--out")
    with pytest.raises(UsageError, match="is a directory, not a file"):
        check_output_file(tmp_path, "--out")
    with pytest.raises(UsageError, match="is a file"):
        check_output_file(afile / "p.pt", "--out")
    assert check_output_dir(tmp_path / "new" / "dir") == tmp_path / "new" / "dir"
    assert not (tmp_path / "new").exists()
    if os.path.isdir("/proc/self"):
        with pytest.raises(UsageError, match="not writable"):
            check_output_dir("/proc/self/omarbench-out")


def _rollout(**kw):
    from omarbench.tasks.rollout import random_rollout

    return random_rollout(TASK, **kw)


@pytest.mark.parametrize("call, fragment", [
    (lambda: _rollout(seed=-1), "--seed must be"),
    (lambda: _rollout(episodes=10**8),
     "--episodes must be an integer in 1..100,000"),
    (lambda: __import__("omarbench.vocab", fromlist=["x"]).parse_seeds("100000000000"), "at most 1,000"),
    (lambda: __import__("omarbench.vocab", fromlist=["x"]).parse_seeds("0-99999999999"), "at most 1,000"),
    (lambda: __import__("omarbench.vocab", fromlist=["x"]).parse_seeds("5,99999999999"), "seeds in 0..2147483647"),
    (lambda: collect("spread-n1", "random", seed=2**40, config=CFG, progress=False), "--seed must be"),
    (lambda: collect("spread-n1", "random", transitions=10**12, config=CFG, progress=False), "--transitions"),
])
def test_bounds_are_checked_before_any_work(call, fragment):
    with pytest.raises(UsageError, match=fragment):
        call()


@pytest.mark.parametrize("override, fragment", [
    ({"cql_actions": "0"}, "cql_actions must be a positive integer in 1..1,000, got 0"),
    ({"omar_iters": "0"}, "omar_iters must be a positive integer in 1..100"),
    ({"batch_size": "100000000000"}, "batch_size must be a positive integer in 1..65,536"),
    ({"lr": "nan"}, "lr must be a finite number"),
    ({"alpha": "inf"}, "alpha must be a finite number"),
    ({"tau": "1.5"}, "tau must be a finite number in \\[0, 1\\]"),
    ({"final_episodes": "10000000"}, "final_episodes must be a positive integer in 1..100,000"),
])
def test_every_numeric_override_is_bounded(override, fragment):
    from omarbench.offline.presets import make_config

    with pytest.raises(UsageError, match=fragment):
        make_config("OMAR", "spread", "expert", "paper", override)


def test_train_and_prey_refuse_bad_outputs_before_any_work(tmp_path):
    from omarbench.collect.prey_training import train_prey
    from omarbench.offline.train import train

    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        train("BC", TASK, "random", [0], results_dir=afile / "results", root=tmp_path / "data", progress=False)
    with pytest.raises(UsageError, match="--out .*is a file"):
        train_prey("tag", root=tmp_path / "data", out=afile / "p.pt", log=lambda s: None)
    with pytest.raises(UsageError, match="seeds"):
        train("BC", TASK, "random", list(range(1001)), results_dir=tmp_path / "r", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def _quick_store(root):
    path = root / "quick" / "spread-n1-random.zarr"
    w = DatasetWriter.create(path, TASK, "random", durable=False)
    w.append_episodes(*synthetic_episodes(TASK, 0, 2))
    w.finalize()
    return path


def test_datasets_commands_follow_the_one_root_rule(tmp_path, capfd):
    from omarbench.cli import app, run_cli

    _quick_store(tmp_path)
    assert run_cli(app, ["datasets", "list", "--root", str(tmp_path)]) == 0
    out = capfd.readouterr().out
    assert "spread-n1-random" in out and str(tmp_path / "quick") in out  # every preset's datasets are listed
    quick = ["--root", str(tmp_path), "--preset", "quick"]
    assert run_cli(app, ["datasets", "info", "spread-n1-random", *quick]) == 0
    assert "spread-n1-random" in capfd.readouterr().out
    assert run_cli(app, ["datasets", "info", "spread-n1-random", "--root", str(tmp_path)]) == 2
    err = capfd.readouterr().err
    assert "but it is under" in err and "add --preset quick" in err and len(err.strip().splitlines()) == 1
    assert run_cli(app, ["datasets", "info", "spread-n1-expert", *quick]) == 2
    err = capfd.readouterr().err
    assert f"omarbench collect spread-n1 --level expert --preset quick --root {tmp_path}" in err
