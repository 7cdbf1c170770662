"""Mid-run checkpoints of offline training: an interrupted job resumes and ends bit for bit as an
uninterrupted one (records, curves, final returns, weights digest); the checkpoint goes once the records
are written; a second process on the same job waits and reuses its records."""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from toy_offline import rollout_dataset

from omarbench.errors import UsageError
from omarbench.guard import FileLock, tmp_leftovers
from omarbench.offline import checkpoint as ck
from omarbench.offline.algos.core import Learners
from omarbench.offline.train import train
from omarbench.tasks.spec import parse_task_id

TASK = parse_task_id("spread-n1")
TINY = {"rounds": 12, "eval_every": 3, "eval_episodes": 2, "final_episodes": 4, "batch_size": 32}
VOLATILE = ("wall_time_s", "created", "git")  # timings, and the commit (provenance only)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data():
    return rollout_dataset(TASK, episodes=8)


def _stable(records):
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in records]


class _Killed(BaseException):
    """Stands for a kill: not an Exception, so nothing on the way catches it."""


def _interrupt_at(monkeypatch, call: int):
    real = Learners.update
    count = {"n": 0}

    def update(self):
        count["n"] += 1
        if count["n"] == call:
            raise _Killed()
        return real(self)

    monkeypatch.setattr(Learners, "update", update)


@pytest.mark.parametrize("algo", ["OMAR", "MA-CQL", "MA-ICQ", "MA-TD3+BC", "BC"])
def test_a_job_interrupted_mid_run_resumes_to_the_same_records(tmp_path, data, monkeypatch, algo):
    kw = dict(preset="quick", overrides=TINY, dataset=data, progress=False, checkpoint_every=4)
    ref = train(algo, TASK, "random", [0, 2], results_dir=tmp_path / "ref", **kw)
    out = tmp_path / "cut"
    for call in (7, 6):  # killed in round 7 (checkpoint of round 4 left), then in round 10 (checkpoint 8)
        with monkeypatch.context() as m:
            _interrupt_at(m, call)
            with pytest.raises(_Killed):
                train(algo, TASK, "random", [0, 2], results_dir=out, **kw)
        assert len(list(out.glob(".*.ckpt"))) == 1 and not list(out.glob("*.json"))
    resumed = train(algo, TASK, "random", [0, 2], results_dir=out, **kw)
    assert _stable(resumed) == _stable(ref)
    assert resumed[0]["weights_sha256"] == ref[0]["weights_sha256"]
    assert [c["round"] for c in resumed[0]["curve"]] == [0, 3, 6, 9, 12]
    assert not list(out.glob(".*")), "checkpoint, lock and temporary files are gone once the records exist"
    for rec in resumed:
        on_disk = json.loads((out / Path(next(out.glob(f"*seed{rec['seed']}__*.json"))).name).read_text())
        assert {k: v for k, v in on_disk.items() if k not in VOLATILE} == _stable([rec])[0]


def test_checkpoints_every_n_rounds_and_off(tmp_path, data, monkeypatch):
    saved = []
    real = ck.Checkpointer.save

    def spy(self, *, round_, learners, loop):
        saved.append(round_)
        return real(self, round_=round_, learners=learners, loop=loop)

    monkeypatch.setattr(ck.Checkpointer, "save", spy)
    kw = dict(preset="quick", overrides=TINY, dataset=data, progress=False)
    train("BC", TASK, "random", [0], results_dir=tmp_path / "a", checkpoint_every=5, **kw)
    assert saved == [5, 10]
    saved.clear()
    train("BC", TASK, "random", [0], results_dir=tmp_path / "b", checkpoint_every=0, **kw)
    assert saved == []
    monkeypatch.setenv(ck.ENV_EVERY, "6")
    train("BC", TASK, "random", [0], results_dir=tmp_path / "c", **kw)
    assert saved == [6]
    monkeypatch.setenv(ck.ENV_EVERY, "often")
    with pytest.raises(UsageError, match="OMARBENCH_CHECKPOINT_EVERY"):
        train("BC", TASK, "random", [0], results_dir=tmp_path / "d", **kw)
    with pytest.raises(UsageError, match="checkpoint_every"):
        train("BC", TASK, "random", [0], results_dir=tmp_path / "d", checkpoint_every=-1, **kw)
    assert not (tmp_path / "d").exists()


def test_a_checkpoint_of_another_job_or_a_damaged_one_is_not_used(tmp_path, data, monkeypatch):
    kw = dict(preset="quick", dataset=data, progress=False, checkpoint_every=4)
    ref = train("BC", TASK, "random", [0], results_dir=tmp_path / "ref", overrides=TINY, **kw)
    out = tmp_path / "cut"
    with monkeypatch.context() as m:
        _interrupt_at(m, 6)
        with pytest.raises(_Killed):
            train("BC", TASK, "random", [0], results_dir=out, overrides=TINY, **kw)
    (path,) = out.glob(".*.ckpt")
    path.write_bytes(path.read_bytes()[:100])  # damaged (cannot happen through the atomic write, still)
    with pytest.warns(ck.CheckpointWarning, match="ignoring checkpoint"):
        again = train("BC", TASK, "random", [0], results_dir=out, overrides=TINY, **kw)
    assert _stable(again) == _stable(ref)
    # a different budget is a different job: its checkpoint name differs, so it never sees this one's
    other = train("BC", TASK, "random", [0], results_dir=out, overrides={**TINY, "rounds": 9}, **kw)
    assert other[0]["config"]["rounds"] == 9 and other[0]["key"] != ref[0]["key"]


def test_a_second_process_on_a_running_job_waits_and_reuses_its_records(tmp_path, data, monkeypatch):
    kw = dict(preset="quick", overrides=TINY, dataset=data, progress=False, checkpoint_every=4)
    first = train("BC", TASK, "random", [0], results_dir=tmp_path, **kw)
    (rec_file,) = tmp_path.glob("*.json")
    before = rec_file.stat().st_mtime_ns
    # pretend another process holds the job's lock and has just written the records
    path = ck.checkpoint_path(tmp_path, ck.job_identity(
        algo="BC", task=TASK.id, level="random", seeds=[0], preset="quick", config=first[0]["config"],
        dataset_digest=data.digest, code_version=first[0]["code_version"], device="cpu", backend="numpy"))
    holder = FileLock(path.with_name(path.name + ".lock"), "job").acquire()
    monkeypatch.setattr(FileLock, "acquire", _release_then_acquire(holder, FileLock.acquire))
    again = train("BC", TASK, "random", [0], results_dir=tmp_path, **kw)
    assert _stable(again) == _stable(first)
    assert rec_file.stat().st_mtime_ns == before, "the finished records were reused, not rewritten"


def _release_then_acquire(holder, real):
    def acquire(self):
        if self.path == holder.path and holder.fd is not None:
            import threading

            threading.Timer(0.3, holder.release).start()
        return real(self)

    return acquire


def test_the_lock_says_who_holds_it(tmp_path):
    a = FileLock(tmp_path / ".x.lock", "dataset x").acquire()
    with pytest.raises(Exception, match=rf"dataset x is in use by process {os.getpid()}"):
        FileLock(tmp_path / ".x.lock", "dataset x").acquire()
    a.release()
    with FileLock(tmp_path / ".x.lock", "dataset x"):
        pass
    assert not tmp_leftovers(tmp_path) and not list(tmp_path.iterdir())


# ------------------------------------------------------------------------ killed by SIGKILL, for real

CHILD = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {tests!r})
    torch.set_num_threads(1)
    from toy_offline import rollout_dataset
    from omarbench.tasks.spec import parse_task_id
    from omarbench.offline.train import train
    task = parse_task_id("spread-n1")
    data = rollout_dataset(task, episodes=8)
    train("OMAR", task, "random", [0, 1, 3], preset="quick", results_dir=sys.argv[1], dataset=data,
          progress=False, checkpoint_every=5,
          overrides={{"rounds": 150, "eval_every": 10, "eval_episodes": 2, "final_episodes": 4,
                      "batch_size": 32}})
""")


def _child(script: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.Popen([sys.executable, str(script), str(out)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


@pytest.mark.slow
def test_sigkill_at_random_rounds_then_resume_matches_an_uninterrupted_run(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(Path(__file__).parent)))
    ref_dir, cut_dir = tmp_path / "ref", tmp_path / "cut"
    p = _child(script, ref_dir)
    assert p.wait(timeout=600) == 0, p.stderr.read().decode()
    rng = random.Random(19)
    rounds_seen = []
    for _ in range(4):
        p = _child(script, cut_dir)
        # wait until this run has written a checkpoint (a new round), then kill it a random moment later
        t0, start = time.time(), _ckpt_round(cut_dir)
        while _ckpt_round(cut_dir) == start and p.poll() is None and time.time() - t0 < 300:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        if p.poll() is not None:
            assert p.returncode == 0, p.stderr.read().decode()
            break
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        rounds_seen.append(_ckpt_round(cut_dir))
    assert len(set(rounds_seen)) >= 3, rounds_seen  # killed at several different points of the run
    assert all(r < 150 for r in rounds_seen) and not list(cut_dir.glob("*.json"))
    p = _child(script, cut_dir)
    assert p.wait(timeout=600) == 0, p.stderr.read().decode()
    ref = {f.name: json.loads(f.read_text()) for f in sorted(ref_dir.glob("*.json"))}
    got = {f.name: json.loads(f.read_text()) for f in sorted(cut_dir.glob("*.json"))}
    assert ref.keys() == got.keys() and len(ref) == 3
    for name in ref:
        assert _stable([got[name]]) == _stable([ref[name]]), name
    assert not list(cut_dir.glob(".*"))


def _ckpt_round(folder: Path) -> int | None:
    files = list(folder.glob(".*.ckpt")) if folder.is_dir() else []
    if not files:
        return None
    try:
        return int(torch.load(files[0], weights_only=True)["round"])
    except Exception:  # noqa: BLE001 - replaced while reading: ask again
        return -1
