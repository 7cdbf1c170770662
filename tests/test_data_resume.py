"""A writer killed at any moment leaves a store that resumes to the same digest as an uninterrupted write."""

import json
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from omarbench.data import DatasetWriter, load_dataset, verify_dataset
from omarbench.data.synthetic import synthetic_episodes
from omarbench.errors import OmarbenchError
from omarbench.tasks.spec import parse_task_id

TAG = parse_task_id("tag")
EPISODES, BATCH, CHUNK = 20, 7, 128

# A helper process writes EPISODES episodes in batches of BATCH into a fresh store, once per kill
# point, each time in a forked child (the helper itself never touches Zarr, so forking is safe).
# Child KILL SIGKILLs itself when the store is about to write its KILL-th file (creation included),
# after leaving half of that file under a temporary name, as a process dying inside a write would.
# KILL == 0 writes to the end and reports how many files that took; no kill points at all: write once
# in the helper process itself (for a kill from outside).
HELPER = """
import json, os, signal, sys
import zarr.storage._local as local
from omarbench.data import DatasetWriter
from omarbench.data.synthetic import synthetic_episodes
from omarbench.tasks.spec import parse_task_id

root, episodes, batch, chunk = sys.argv[1], *map(int, sys.argv[2:5])
kills, task = json.loads(sys.argv[5]), parse_task_id(sys.argv[6])
name = task.id + "-expert.zarr"

def write(path, kill):
    count, real_put = [0], local._put
    def put(p, value, exclusive=False):
        count[0] += 1
        if count[0] == kill:
            data = value.to_bytes()
            p.parent.mkdir(parents=True, exist_ok=True)
            p.with_suffix(".deadbeef.partial").write_bytes(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        return real_put(p, value, exclusive)
    local._put = put
    # fsync only matters for power loss, not for a killed process: the kill points skip it for speed
    w = DatasetWriter.create(path, task, "expert", {"seeds": [0]}, chunk_rows=chunk, durable=not kills)
    e = 0
    while e < episodes:
        b = min(batch, episodes - e)
        w.append_episodes(*synthetic_episodes(task, e, b))
        e += b
    w.finalize()
    return count[0]

if not kills:  # write in this process (to be killed from outside)
    write(os.path.join(root, "k0", name), 0)
    sys.exit(0)

def run(kill):
    pid = os.fork()
    if pid == 0:
        n = write(os.path.join(root, f"k{kill}", name), kill)
        print(json.dumps({"writes": n}), flush=True)
        os._exit(0)
    _, st = os.waitpid(pid, 0)
    return -os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)

if any(isinstance(k, float) for k in kills):  # fractions of the total number of writes
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, str(write(os.path.join(root, "count", name), 0)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    total = int(os.read(r, 64))
    kills = sorted({max(1, round(k * total)) if isinstance(k, float) else k for k in kills})
print(json.dumps({str(k): run(k) for k in kills}))

"""


def run_helper(root, kills, episodes=EPISODES, batch=BATCH, chunk=CHUNK, task=TAG):
    """Run the kill points (write indices, or floats: fractions of a full run's writes).

    Returns {kill: return code} (-9 = killed) and the helper's other output lines.
    """
    args = [sys.executable, "-c", HELPER, str(root), str(episodes), str(batch), str(chunk), json.dumps(kills),
            task.id]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    return {int(k): v for k, v in json.loads(lines[-1]).items()}, lines[:-1]


def count_writes(root, **config):
    status, lines = run_helper(root, [0], **config)
    assert status == {0: 0}
    return json.loads(lines[0])["writes"]


def reference_digest(path, episodes=EPISODES, task=TAG):
    w = DatasetWriter.create(path, task, "expert", chunk_rows=4096, durable=False)  # digest ignores chunking
    w.append_episodes(*synthetic_episodes(task, 0, episodes))
    return w.finalize()


def resume_and_finish(path, episodes=EPISODES, step=5, task=TAG):
    w = DatasetWriter.resume(path, durable=False)  # fsync guards against power loss, not tested here
    assert not list(path.rglob("*.partial")), "resume must clear temporary files of the killed write"
    e = w.n_episodes
    assert w.n_transitions == 25 * e and 0 <= e <= episodes
    while e < episodes:  # different batch boundaries than the child used
        b = min(step, episodes - e)
        w.append_episodes(*synthetic_episodes(task, e, b))
        e += b
    return w.finalize()


def check_killed_store(path, expected, episodes=EPISODES, task=TAG):
    """A killed write leaves no store (killed while creating) or an incomplete one that resumes exactly."""
    if not path.exists():
        w = DatasetWriter.create(path, task, "expert", chunk_rows=CHUNK, durable=False)  # start over
        w.close()
    meta = json.loads((path / "zarr.json").read_text())["attributes"]
    assert meta["complete"] is False
    with pytest.raises(OmarbenchError, match="is incomplete"):
        load_dataset(path)
    problems = verify_dataset(path).problems  # the committed prefix is intact; only "incomplete" is wrong
    assert len(problems) == 1 and problems[0].startswith("incomplete"), problems
    assert resume_and_finish(path, episodes, task=task) == expected
    assert verify_dataset(path).ok


def test_kill_at_a_write_then_resume_gives_the_same_digest(tmp_path):
    # fractions of the number of writes a full run makes; 1.0 = the last one, which flips 'complete'
    status, _ = run_helper(tmp_path, [0.02, 0.25, 0.5, 0.9, 1.0])
    assert len(status) == 5 and all(code == -signal.SIGKILL for code in status.values()), status
    expected = reference_digest(tmp_path / "ref.zarr")
    for kill in status:
        check_killed_store(tmp_path / f"k{kill}" / "tag-expert.zarr", expected)


@pytest.mark.slow
def test_kill_at_every_write_then_resume_gives_the_same_digest(tmp_path):
    task = parse_task_id("spread-n1")  # fewest arrays, hence fewest write points; same code paths
    small = {"episodes": 11, "batch": 4, "chunk": 100, "task": task}  # 275 rows: 2 chunk commits, a tail
    total = count_writes(tmp_path / "count", **small)
    kills = list(range(1, total + 1))
    status, _ = run_helper(tmp_path, kills, **small)
    assert all(code == -signal.SIGKILL for code in status.values()), status
    expected = reference_digest(tmp_path / "ref.zarr", small["episodes"], task)
    for kill in kills:
        check_killed_store(tmp_path / f"k{kill}" / "spread-n1-expert.zarr", expected, small["episodes"], task)


def test_sigkill_at_a_random_moment_then_resume(tmp_path):
    episodes = 1200
    expected = reference_digest(tmp_path / "ref.zarr", episodes)
    args = [sys.executable, "-c", HELPER, str(tmp_path), str(episodes), "37", "1024", "[]", "tag"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    path = tmp_path / "k0" / "tag-expert.zarr"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until at least one commit is on disk
        try:
            if json.loads((path / "zarr.json").read_text())["attributes"]["committed"]["episodes"] > 0:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.01)
    time.sleep(random.Random().uniform(0.0, 0.2))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the writer finished before the kill: give it more to write"
    assert resume_and_finish(path, episodes, step=50) == expected
    ds = load_dataset(path)
    assert ds.n_episodes == episodes
    assert np.all(np.diff(ds.episode_starts.numpy()) == 25)


def test_resume_refuses_complete_store(tmp_path):
    path = tmp_path / "tag-expert.zarr"
    reference_digest(path, 3)
    with pytest.raises(OmarbenchError, match="already complete"):
        DatasetWriter.resume(path)


def test_close_commits_a_partial_chunk_and_resume_continues_it(tmp_path):
    expected = reference_digest(tmp_path / "ref.zarr")
    path = tmp_path / "tag-expert.zarr"
    with DatasetWriter.create(path, TAG, "expert", chunk_rows=CHUNK, durable=False) as w:
        w.append_episodes(*synthetic_episodes(TAG, 0, 7))  # 175 rows: one whole chunk and a partial one
    for start, count in ((7, 3), (10, 1)):  # Ctrl-C twice, resumed twice
        with DatasetWriter.resume(path, durable=False) as w:
            assert w.n_episodes == w.committed_episodes == start
            w.append_episodes(*synthetic_episodes(TAG, start, count))
    assert resume_and_finish(path) == expected
