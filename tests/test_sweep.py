"""The evaluation grid: resume after a kill, failures recorded without stopping, dataset collection,
executors (local processes; Ray when installed), and one-line errors for bad grid options.

The trainer and collector are replaced by fakes injected through ``Hooks``; the fakes live at module
level so worker processes can import them by name.
"""

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_results import make_record

from omarbench import results as rs
from omarbench.errors import OmarbenchError, UsageError
from omarbench.grid import sweep

TESTS_DIR = str(Path(__file__).parent)
DIGEST = "f" * 64
VERSION = "0.1.0+fake"
LOG_ENV = "OMARBENCH_TEST_TRAIN_LOG"
SLEEP_ENV = "OMARBENCH_TEST_TRAIN_SLEEP"


# ------------------------------------------------------------------------------------------ fakes


def fake_config(algo, task, level, preset, overrides):
    return {"rounds": 3, "batch": 8, **(overrides or {})}


def _log(algo, task, level, seed):
    path = os.environ.get(LOG_ENV)
    if path:
        with open(path, "a") as f:
            f.write(f"{algo} {task} {level} {seed} {os.getpid()}\n")


def fake_train(algo, task, level, seeds, *, preset, root, results_dir, device, backend, overrides, progress):
    """Writes one ok record per seed (score depends on algo and seed), like the real trainer."""
    out = []
    for seed in seeds:
        _log(algo, task, level, seed)
        time.sleep(float(os.environ.get(SLEEP_ENV, "0")))
        score = {"OMAR": 60.0, "MA-CQL": 40.0}.get(algo, 30.0) + seed
        rec = make_record(algo, task, level, seed, score, preset=preset, digest=DIGEST, version=VERSION,
                          config=fake_config(algo, task, level, preset, overrides))
        rs.write_record(results_dir, rec)
        out.append(rec)
    return out


def flaky_train(algo, task, level, seeds, **kw):
    """MA-ICQ raises, BC kills its process, MA-TD3+BC reports a failed seed itself, the rest succeed."""
    if algo == "MA-ICQ":
        raise RuntimeError("critic loss is NaN at round 7")
    if algo == "BC":
        os._exit(3)
    out = fake_train(algo, task, level, seeds, **kw)
    if algo == "MA-TD3+BC":
        bad = make_record(algo, task, level, seeds[0], status="failed", reason="actor diverged",
                          preset=kw["preset"], digest=DIGEST, version=VERSION,
                          config=fake_config(algo, task, level, kw["preset"], kw["overrides"]))
        rs.write_record(kw["results_dir"], bad)
        out[0] = bad
    return out


def returning_train(algo, task, level, seeds, **kw):
    """A trainer that only returns its records (writing is left to the sweep, as on Ray)."""
    kw = {**kw, "results_dir": kw["results_dir"] + "-elsewhere"}
    return fake_train(algo, task, level, seeds, **kw)


def fake_hooks(train=fake_train, present=None, collect_fails=()):
    """Hooks with datasets ``present`` (None: all) and a collector that adds what it is asked for."""
    collected = []

    def info(task, level, root):
        if present is not None and (task, level) not in present:
            return None
        return {"id": f"{task}-{level}", "digest": DIGEST, "n_transitions": 1000, "return_mean": 30.0,
                "reference_returns": {"random": {"mean": 0.0}, "expert": {"mean": 100.0}}}

    def ensure(task, level, **kw):
        if (task, level) in collect_fails:
            raise RuntimeError("behaviour training diverged")
        collected.append((task, level))
        present.add((task, level))

    hooks = sweep.Hooks(train=train, ensure_dataset=ensure, dataset_info=info, resolve_config=fake_config,
                        code_version=lambda algo, task: VERSION)
    hooks.collected = collected
    return hooks


def small_spec(tmp_path, **kw):
    base = dict(algos=("MA-CQL", "OMAR"), tasks=("spread", "tag"), levels=("medium",), seeds=(0, 1),
                results_dir=str(tmp_path / "results"))
    return sweep.SweepSpec(**{**base, **kw})


def ok_runs(results_dir):
    df = rs.load_records(results_dir)
    df = df[df.status == "ok"]
    return {(r.algo, r.task, r.level, int(r.seed)) for r in df.itertuples()}


def read_log(path):
    """(algo, task, level, seed) of every trainer call, in order."""
    return [tuple(line.split()[:3]) + (int(line.split()[3]),) for line in Path(path).read_text().splitlines()]


def worker_pids(path):
    return {int(line.split()[4]) for line in Path(path).read_text().splitlines()}


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited


# ---------------------------------------------------------------------------------------- parsing


def test_parsers_accept_the_documented_forms():
    assert sweep.parse_seeds("5") == (0, 1, 2, 3, 4)
    assert sweep.parse_seeds("0,1,2") == (0, 1, 2)
    assert sweep.parse_seeds("0-4") == (0, 1, 2, 3, 4)
    assert sweep.parse_seeds("2-3,7") == (2, 3, 7)
    assert sweep.parse_algos("all") == ("MA-ICQ", "MA-TD3+BC", "MA-CQL", "OMAR", "BC", "MA-IQL")
    assert sweep.parse_algos("paper") == sweep.PAPER_ALGOS
    assert sweep.parse_algos("omar,ma-cql") == ("OMAR", "MA-CQL")
    assert sweep.parse_levels("expert,random") == ("random", "expert")
    assert sweep.parse_tasks("spread-n5,TAG:mpe2,spread-n3") == ("spread-n5", "tag:mpe2", "spread")
    assert sweep.parse_agents("1-3,8") == (1, 2, 3, 8)


@pytest.mark.parametrize("fn,text,fragment", [
    (sweep.parse_seeds, "x", "bad seeds 'x'"),
    (sweep.parse_seeds, "4-0", "bad seeds '4-0'"),
    (sweep.parse_seeds, "0", "bad seeds '0'"),
    (sweep.parse_seeds, "1,-2", "bad seeds"),
    (sweep.parse_algos, "omar,SAC", "unknown algorithm 'SAC'"),
    (sweep.parse_levels, "hard", "unknown level 'hard'"),
    (sweep.parse_tasks, "spread,pong", "unknown task 'pong'"),
    (sweep.parse_agents, "0-3", "bad agent counts"),
])
def test_parsers_reject_bad_values_naming_them(fn, text, fragment):
    with pytest.raises(UsageError, match=fragment):
        fn(text)


def test_grid_jobs_batch_seeds_and_parallelism_fits_cores():
    spec = sweep.SweepSpec()
    jobs = sweep.plan_jobs(spec)
    assert len(jobs) == 4 * 3 * 4 and spec.n_runs == 4 * 3 * 4 * 5
    assert all(j.seeds == (0, 1, 2, 3, 4) for j in jobs)
    assert sweep.plan_parallelism(48, None, cores=2) == (2, 1)
    assert sweep.plan_parallelism(1, None, cores=8) == (1, 8)
    assert sweep.plan_parallelism(3, None, cores=8) == (3, 2)
    assert sweep.plan_parallelism(10, 4, cores=2) == (4, 1)  # forced: oversubscribed, one thread each


def test_grid_choices_come_from_the_registry_and_the_vocabulary():
    from omarbench import vocab
    from omarbench.offline.algos import ALGO_NAMES

    assert sweep.ALL_ALGOS is ALGO_NAMES and sweep.LEVELS is vocab.LEVELS and sweep.BACKENDS is vocab.BACKENDS


# ------------------------------------------------------------------------------------ the sweep


def test_sweep_runs_each_run_once_then_skips_everything(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv(LOG_ENV, str(log))
    spec = small_spec(tmp_path)
    out = sweep.run_sweep(spec, hooks=fake_hooks(), jobs=2, progress=False)
    assert out.exit_code == 0 and out.ok == 8 and out.skipped == 0
    assert len(ok_runs(spec.results_dir)) == 8
    assert sorted(read_log(log)) == sorted(ok_runs(spec.results_dir))
    again = sweep.run_sweep(spec, hooks=fake_hooks(), jobs=2, progress=False)
    assert again.skipped == 8 and again.ok == 0 and again.jobs == []
    assert len(read_log(log)) == 8  # the trainer was not called again
    # a changed config is a different run: it runs again
    changed = sweep.run_sweep(dataclasses.replace(spec, overrides={"batch": 16}),
                              hooks=fake_hooks(), jobs=2, progress=False)
    assert changed.ok == 8 and changed.skipped == 0


def test_only_missing_seeds_of_a_job_run(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv(LOG_ENV, str(log))
    spec = small_spec(tmp_path, algos=("OMAR",), tasks=("spread",), seeds=(0, 1, 2))
    rs.write_record(spec.results_dir, make_record("OMAR", "spread", "medium", 1, digest=DIGEST, version=VERSION,
                                                  config=fake_config("OMAR", "spread", "medium", "paper", None)))
    out = sweep.run_sweep(spec, hooks=fake_hooks(), jobs=1, progress=False)
    assert out.skipped == 1 and [j.seeds for j in out.jobs] == [(0, 2)]
    assert sorted(s for *_, s in read_log(log)) == [0, 2]


DRIVER = """
import sys
sys.path.insert(0, {tests!r})
from test_sweep import fake_hooks, small_spec
from pathlib import Path
from omarbench.grid import sweep
if __name__ == "__main__":
    spec = small_spec(Path({tmp!r}), seeds={seeds!r}, algos={algos!r}, tasks={tasks!r})
    out = sweep.run_sweep(spec, hooks=fake_hooks(), jobs=2, progress=False)
    sys.exit(out.exit_code)
"""


def start_driver(tmp_path, seeds=(0, 1, 2), algos=("MA-CQL", "OMAR"), tasks=("spread", "tag")):
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER.format(tests=TESTS_DIR, tmp=str(tmp_path), seeds=seeds, algos=algos,
                                                    tasks=tasks)))
    return subprocess.Popen([sys.executable, str(script)], env=os.environ.copy(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def wait_for(condition, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline and not condition():
        time.sleep(0.05)
    return condition()


def test_workers_stop_when_the_sweep_is_killed(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv(LOG_ENV, str(log))
    monkeypatch.setenv(SLEEP_ENV, "30")  # a long run: the worker would outlive the sweep by far
    proc = start_driver(tmp_path, seeds=(0,), algos=("OMAR",), tasks=("spread",))
    assert wait_for(lambda: log.exists() and log.read_text().strip())
    (pid,) = worker_pids(log)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert wait_for(lambda: not alive(pid), timeout=5.0), "the worker kept running after the sweep was killed"


def test_killed_sweep_resumes_without_redoing_finished_runs(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv(LOG_ENV, str(log))
    monkeypatch.setenv(SLEEP_ENV, "0.3")
    results = tmp_path / "results"
    proc = start_driver(tmp_path)
    wait_for(lambda: len(list(results.glob("*.json"))) >= 3)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up
    proc.wait()
    pids = worker_pids(log)
    assert wait_for(lambda: not any(alive(p) for p in pids), timeout=10.0)
    before = ok_runs(results)
    calls_before = len(read_log(log))
    assert 3 <= len(before) < 12, "the sweep was not killed mid-way"

    monkeypatch.setenv(SLEEP_ENV, "0")
    out = sweep.run_sweep(small_spec(tmp_path, seeds=(0, 1, 2)), hooks=fake_hooks(), jobs=2, progress=False)
    assert out.exit_code == 0 and out.skipped == len(before) and out.ok == 12 - len(before)
    redone = set(read_log(log)[calls_before:])
    assert not redone & before, f"finished runs were trained again: {sorted(redone & before)}"
    assert len(ok_runs(results)) == 12


def test_failures_are_recorded_and_the_sweep_goes_on(tmp_path):
    spec = small_spec(tmp_path, algos=("MA-ICQ", "BC", "MA-TD3+BC", "OMAR"), tasks=("spread",))
    out = sweep.run_sweep(spec, hooks=fake_hooks(train=flaky_train), jobs=2, progress=False)
    assert out.exit_code == 1
    df = rs.load_records(spec.results_dir)
    reasons = {(r.algo, int(r.seed)): r.reason for r in df[df.status == "failed"].itertuples()}
    assert reasons == {
        ("MA-ICQ", 0): "RuntimeError: critic loss is NaN at round 7",
        ("MA-ICQ", 1): "RuntimeError: critic loss is NaN at round 7",
        ("BC", 0): "worker process died with exit code 3",
        ("BC", 1): "worker process died with exit code 3",
        ("MA-TD3+BC", 0): "actor diverged",
    }
    assert ok_runs(spec.results_dir) == {("OMAR", "spread", "medium", 0), ("OMAR", "spread", "medium", 1),
                                         ("MA-TD3+BC", "spread", "medium", 1)}
    assert out.ok == 3 and len(out.failed) == 5
    # failed runs are tried again by the next sweep; finished ones are not
    again = sweep.run_sweep(spec, hooks=fake_hooks(train=flaky_train), jobs=2, progress=False)
    assert again.skipped == 3 and len(again.failed) == 5


def test_records_that_the_trainer_only_returns_are_written(tmp_path):
    spec = small_spec(tmp_path, algos=("OMAR",), tasks=("spread",))
    out = sweep.run_sweep(spec, hooks=fake_hooks(train=returning_train), jobs=1, progress=False)
    assert out.ok == 2 and len(ok_runs(spec.results_dir)) == 2


def test_missing_datasets_are_collected_first(tmp_path, capsys):
    from rich.console import Console

    present = {("spread", "medium")}
    hooks = fake_hooks(present=present)
    out = sweep.run_sweep(small_spec(tmp_path), hooks=hooks, jobs=2, progress=False,
                          console=Console(file=sys.stdout, width=200))
    assert hooks.collected == [("tag", "medium")] and out.collected == ["tag-medium"]
    assert "collecting missing dataset tag-medium" in capsys.readouterr().out
    assert out.ok == 8


def test_no_collect_names_the_missing_datasets_and_runs_nothing(tmp_path):
    hooks = fake_hooks(present={("spread", "medium")})
    with pytest.raises(OmarbenchError, match=r"missing dataset\(s\): tag-medium"):
        sweep.run_sweep(small_spec(tmp_path, levels=("medium",)), hooks=hooks, collect=False, progress=False)
    assert hooks.collected == [] and not (tmp_path / "results").exists()


def test_a_failed_collection_fails_its_runs_only(tmp_path):
    hooks = fake_hooks(present=set(), collect_fails={("tag", "medium")})
    out = sweep.run_sweep(small_spec(tmp_path), hooks=hooks, jobs=2, progress=False)
    assert out.exit_code == 1 and out.ok == 4
    df = rs.load_records(small_spec(tmp_path).results_dir)
    failed = df[df.status == "failed"]
    assert set(failed["task"]) == {"tag"} and len(failed) == 4
    assert failed["reason"].str.contains("collecting dataset tag-medium failed").all()


def test_scaling_grid_records_the_behaviour_score(tmp_path):
    spec = sweep.scaling_spec((1, 2, 3), seeds=(0,), results_dir=str(tmp_path / "results"))
    assert spec.tasks == ("spread-n1", "spread-n2", "spread") and spec.levels == ("medium-replay",)
    assert spec.algos == ("MA-CQL", "OMAR")
    out = sweep.run_sweep(spec, hooks=fake_hooks(), jobs=2, progress=False)
    assert out.ok == 6
    beh = rs.load_behaviour(spec.results_dir)
    assert sorted(beh["task"]) == ["spread", "spread-n1", "spread-n2"]
    assert (beh["normalised"] == 30.0).all() and (beh["source"] == sweep.BEHAVIOUR_SOURCE).all()


# ------------------------------------------------------------------------------------------- CLI


def run_main(monkeypatch, capsys, *args):
    """The console entry point in-process: (exit code, captured output)."""
    from omarbench import cli

    monkeypatch.setattr(sys, "argv", ["omarbench", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    return exc.value.code, capsys.readouterr()


@pytest.mark.parametrize("args,fragment", [
    (("--algos", "OMAR,SAC"), "unknown algorithm 'SAC'"),
    (("--tasks", "spread,pong"), "unknown task 'pong'"),
    (("--levels", "medium,hard"), "unknown level 'hard'"),
    (("--seeds", "3-1"), "bad seeds '3-1'"),
    (("--preset", "huge"), "unknown preset 'huge'"),
    (("--executor", "slurm"), "unknown executor 'slurm'"),
    (("--jobs", "0"), "--jobs must be a positive integer"),
    (("--scaling", "--tasks", "tag"), "--scaling fixes tasks"),
    (("--scaling", "--agents", "0-30"), "bad agent counts"),
    (("--set", "rounds"), "bad --set 'rounds'; expected KEY=VALUE"),
])
def test_bad_eval_options_are_one_line_exit_2(tmp_path, monkeypatch, capsys, args, fragment):
    code, out = run_main(monkeypatch, capsys, "eval", "--results", str(tmp_path / "r"), *args)
    assert code == 2, out.err
    assert fragment in out.err
    assert "Traceback" not in out.err and len(out.err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_bad_eval_option_from_the_installed_command(tmp_path):
    out = subprocess.run([sys.executable, "-m", "omarbench.cli", "eval", "--seeds", "x"], capture_output=True,
                         text=True)
    assert out.returncode == 2 and out.stderr.strip() == (
        "error: bad seeds 'x'; expected a count (5), a list (0,1,2) or a range (0-4) of seeds in 0..2147483647, "
        "at most 1,000")


def test_eval_exit_code_is_1_when_a_run_failed(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from omarbench.cli import app

    monkeypatch.setattr(sweep, "default_hooks", lambda: fake_hooks(train=flaky_train))
    res = tmp_path / "results"
    result = CliRunner().invoke(app, ["eval", "--algos", "MA-ICQ,OMAR", "--tasks", "spread", "--levels", "medium",
                                      "--seeds", "2", "--results", str(res), "--no-progress"])
    assert result.exit_code == 1, result.output
    assert "2 run(s) failed" in result.output
    assert len(rs.load_records(res)) == 4
    monkeypatch.setattr(sweep, "default_hooks", lambda: fake_hooks())
    result = CliRunner().invoke(app, ["eval", "--algos", "OMAR", "--tasks", "spread", "--levels", "medium",
                                      "--seeds", "2", "--results", str(res), "--no-progress"])
    assert result.exit_code == 0, result.output


# ------------------------------------------------------------------------------------------- Ray


@pytest.mark.slow  # starting a local Ray instance takes several seconds
def test_ray_executor_runs_two_jobs_on_a_local_instance(tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed: pip install 'omarbench[ray]' to run this test")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([TESTS_DIR, *sys.path])}})
    try:
        spec = small_spec(tmp_path, tasks=("spread",), seeds=(0, 1))
        out = sweep.run_sweep(spec, hooks=fake_hooks(), executor="ray", jobs=2, progress=False)
    finally:
        ray.shutdown()
    assert out.exit_code == 0 and out.ok == 4 and len(out.jobs) == 2
    assert ok_runs(spec.results_dir) == {(a, "spread", "medium", s) for a in ("MA-CQL", "OMAR") for s in (0, 1)}


def test_quick_preset_collects_and_finds_datasets_in_one_sub_root(tmp_path):
    """The collector is given the user's root (it adds the preset's sub-root); lookups use the sub-root."""
    from omarbench.data import preset_root

    seen = {"info": set(), "ensure": set()}
    present: set = set()
    hooks = fake_hooks(present=present)
    info, ensure = hooks.dataset_info, hooks.ensure_dataset

    def info_rec(task, level, root):
        seen["info"].add(root)
        return info(task, level, root)

    def ensure_rec(task, level, **kw):
        seen["ensure"].add(str(preset_root(kw["root"], kw["preset"]).absolute()))
        return ensure(task, level, **kw)

    hooks.dataset_info, hooks.ensure_dataset = info_rec, ensure_rec
    spec = small_spec(tmp_path, preset="quick", root=str(tmp_path / "data"), results_dir=None)
    sweep.run_sweep(spec, hooks=hooks, progress=False)
    assert seen["ensure"] == seen["info"] == {str(tmp_path / "data" / "quick")}
