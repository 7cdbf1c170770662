"""The fault suite: kill ``collect`` and ``eval`` with SIGKILL at random moments, resume, and check that
the datasets' digests and the run records equal those of uninterrupted runs.

    python tests/chaos.py --kills 20          # what ``nox -s chaos`` runs (20 kills of each command)
    python tests/chaos.py --kills 3 --json out.json
    python tests/chaos.py --only eval --work DIR     # progress kept in DIR: stopped, the same command continues

Each *episode* starts from an empty folder and runs the command again and again, killing it at a random
moment of its work, until one run ends by itself; then it compares the result with the uninterrupted one.
The moment is measured from the child's first line on stderr (printed once its imports and checks are done:
importing torch can take minutes on a crowded machine and would otherwise eat the window), uniform between 0
and how long an uninterrupted run worked after its first line (the reference run's at first, then that of the
latest episode whose first run ended unkilled, so the window follows the machine's load). Episodes
repeat until each command has been killed ``--kills`` times. ``eval`` is killed either alone (its workers
notice and stop) or with its whole process group; its jobs checkpoint every 10 rounds, so kills land mid-
training too.

Checked at the end of every episode: equal dataset digests (all four levels), equal record files
(names and contents, timings and the commit aside), no record lost, no temporary file, half-made store,
checkpoint or lock left behind.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VOLATILE = ("wall_time_s", "created", "git")
LOADS: list[float] = []  # the 1-minute load average, sampled at every kill and at the end of every episode


def sample_load() -> None:
    LOADS.append(round(os.getloadavg()[0], 2))

COLLECT = """
import sys
from omarbench.collect.api import collect
from omarbench.collect.collector import tiny_config
print("collect: imported", file=sys.stderr, flush=True)
collect("spread-n1", "all", root=sys.argv[1], config=tiny_config(total_steps=1_500, transitions=500),
        progress=False, log=lambda s: None)
"""
EVAL_ARGS = ["eval", "--algos", "bc,omar", "--tasks", "spread-n1", "--levels", "random,expert", "--seeds", "2",
             "--preset", "paper", "--jobs", "2", "--no-collect", "--no-progress",
             "--set", "rounds=40", "--set", "eval_every=10", "--set", "eval_episodes=2",
             "--set", "final_episodes=4", "--set", "batch_size=64"]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "OMARBENCH_CHECKPOINT_EVERY": "10"}


def collect_cmd(root: Path) -> list[str]:
    return [sys.executable, "-c", COLLECT, str(root)]


def eval_cmd(root: Path, results: Path) -> list[str]:
    return [sys.executable, "-m", "omarbench.cli", *EVAL_ARGS, "--root", str(root), "--results", str(results)]


class Child:
    """A started command; ``ready`` is set (and ``ready_at`` stamped) at its first line on stderr."""

    def __init__(self, cmd: list[str]):
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.ready = threading.Event()
        self.ready_at: float | None = None
        self.err: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            if self.ready_at is None:
                self.ready_at = time.perf_counter()
                self.ready.set()
            self.err.append(line.decode(errors="replace"))
        self.ready.set()  # ended without a line

    def wait_ready(self) -> bool:
        """Wait for the first line (or the end); True if the child is still running then."""
        while not self.ready.wait(0.2):
            if self.proc.poll() is not None:
                self.reader.join(5)
                break
        return self.proc.poll() is None

    def finish(self) -> tuple[int, float, str]:
        """(exit code, seconds of work after the first line, stderr) of a child that ends by itself."""
        rc = self.proc.wait()
        end = time.perf_counter()
        self.reader.join(5)
        return rc, end - (self.ready_at or self.t0), "".join(self.err)


def run(cmd: list[str]) -> tuple[float, float]:
    """Run to the end: (seconds to the child's first stderr line, i.e. its imports; seconds of work after)."""
    child = Child(cmd)
    try:
        rc, work, err = child.finish()
    except BaseException:  # the suite itself is stopped: take its child along
        kill(child.proc, True)
        raise
    if rc != 0:
        raise SystemExit(f"uninterrupted run failed ({rc}): {err.strip()[-2000:]}")
    return (child.ready_at or child.t0) - child.t0, work


def digests(root: Path) -> dict[str, str]:
    from omarbench.data.store import open_store

    out = {}
    for p in sorted(root.glob("*.zarr")):
        _, info = open_store(p)
        out[p.name] = info.digest if info.complete else "INCOMPLETE"
    return out


def records(results: Path) -> dict[str, dict]:
    return {p.name: {k: v for k, v in json.loads(p.read_text()).items() if k not in VOLATILE}
            for p in sorted(results.glob("*.json"))}


def leftovers(folder: Path) -> list[str]:
    """Hidden files our writers make (temporaries, half-made stores, checkpoints, locks), anywhere below."""
    bad = []
    for p in folder.rglob(".*"):
        name = p.name
        if name.endswith((".tmp", ".ckpt", ".lock", ".partial")) or ".creating-" in name:
            if name == ".omarbench-writer.lock":  # a finished store's advisory lock file (harmless, documented)
                continue
            # an empty flock file of a training job killed after its records were written: the next run
            # skips the finished job and never takes that lock again; harmless (flock is never stale)
            if name.endswith(".ckpt.lock") and p.stat().st_size == 0:
                continue
            bad.append(str(p.relative_to(folder)))
    return sorted(bad)


def kill(proc: subprocess.Popen, group: bool) -> None:
    try:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    if not group:  # the workers of a killed sweep notice and exit; give them a moment
        time.sleep(1.0)


def episode(make_cmd, work_s: float, rng: random.Random, kills_left: int, group_kills: bool, name: str = ""):
    """Run ``make_cmd()`` until one run finishes by itself, killing it at random moments of its work
    (uniform in 0 .. ``work_s`` after its first stderr line). Returns (kills, moments, group kills, the
    work seconds of the first run if it ended by itself: a fresh measure of an uninterrupted run's work)."""
    kills, moments, groups = 0, [], 0
    while True:
        child = Child(make_cmd())
        try:
            if kills < kills_left and child.wait_ready():
                delay = rng.uniform(0.0, work_s)
                try:
                    child.proc.wait(timeout=delay)
                except subprocess.TimeoutExpired:
                    group = group_kills and rng.random() < 0.5
                    sample_load()
                    kill(child.proc, group)
                    child.reader.join(5)
                    kills += 1
                    groups += group
                    moments.append(round(delay, 2))
                    print(f"  {name}: killed {'the process group' if group else 'the main process'} "
                          f"{delay:.1f} s into its work (kill {kills})", flush=True)
                    continue
            rc, work, err = child.finish()
        except BaseException:  # the suite itself is stopped: take its child along
            kill(child.proc, True)
            raise
        sample_load()
        if rc != 0:
            raise SystemExit(f"a resumed run failed ({rc}): {err.strip()[-2000:]}")
        return kills, moments, groups, (work if kills == 0 else None)


# ----------------------------------------------------------------------------- state (for --work)


def save_state(work: Path, state: dict) -> None:
    tmp = work / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    os.replace(tmp, work / "state.json")


def rng_state(rng: random.Random) -> list:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def set_rng(rng: random.Random, saved: list) -> None:
    rng.setstate((saved[0], tuple(saved[1]), saved[2]))


def chaos_command(name: str, work: Path, make_cmd, measure, n_kills: int, rng: random.Random, state: dict,
                  checkpoint, group_kills: bool) -> dict:
    """Episodes of one command until it was killed ``n_kills`` times; ``state[name]`` holds the progress
    (saved by ``checkpoint()`` after the uninterrupted run and after every episode)."""
    st = state.get(name)
    if st is None:
        ref = work / f"{name}-ref"
        shutil.rmtree(ref, ignore_errors=True)
        start, duration = run(make_cmd(ref))
        st = state[name] = {"imports_s": start, "work_s": duration, "window_s": duration, "want": measure(ref),
                            "kills": 0,
                            "groups": 0, "episodes": 0, "lost": 0, "moments": []}
        checkpoint()
    want = st["want"]
    while st["kills"] < n_kills:
        folder = work / f"{name}-{st['episodes']}"
        shutil.rmtree(folder, ignore_errors=True)  # an episode the suite was stopped in starts again
        k, m, g, fresh = episode(lambda folder=folder: make_cmd(folder), st["window_s"], rng,
                                 n_kills - st["kills"], group_kills=group_kills, name=name)
        got = measure(folder)
        label = f"{name} episode {st['episodes'] + 1}"
        if name == "eval":
            st["lost"] += len(set(want) - set(got))
        if got != want:
            diff = sorted(n for n in set(want) | set(got) if want.get(n) != got.get(n))
            raise SystemExit(f"{label}: results differ after {k} kills: {diff[:3]}")
        left = leftovers(folder)
        if left:
            raise SystemExit(f"{label}: leftovers {left}")
        st["kills"] += k
        st["groups"] += g
        st["moments"] += m
        st["episodes"] += 1
        if fresh is not None:  # the load changed since the window was measured: follow it
            st["window_s"] = fresh
        shutil.rmtree(folder)
        what = f"{k} kill(s) ({g} of the group), all {len(want)} records" if group_kills else \
            f"{k} kill(s), all {len(want)} digests"
        print(f"{label}: {what} equal, no leftovers ({st['kills']}/{n_kills} kills)", flush=True)
        checkpoint()
    return st


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=20, help="kills of each command (default 20)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--work", type=Path, help="work folder, kept: the suite saves its progress there after "
                                              "every episode; the same command with the same --work continues")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--only", choices=("collect", "eval"), help="one command only")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    work = args.work or Path(tempfile.mkdtemp(prefix="omarbench-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    keep = args.keep or args.work is not None
    setup = {"kills": args.kills, "seed": args.seed, "only": args.only}
    state = {"setup": setup, "wall_s": 0.0, "loads": []}
    if (work / "state.json").exists():
        state = json.loads((work / "state.json").read_text())
        if state["setup"] != setup:
            raise SystemExit(f"{work} holds a run of {state['setup']}, not {setup}: use another --work")
        set_rng(rng, state["rng"])
        LOADS[:0] = state["loads"]
        print(f"chaos: continuing the run in {work} ({state['wall_s']:.0f} s so far)", flush=True)
    t0 = time.perf_counter()
    wall0 = state["wall_s"]

    def checkpoint() -> None:
        state.update(rng=rng_state(rng), loads=LOADS, wall_s=wall0 + time.perf_counter() - t0)
        save_state(work, state)

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    c = e = None
    stopped = False
    try:
        data = work / "collect-ref"
        if args.only in (None, "collect"):
            st = chaos_collect(work, args.kills, rng, state, checkpoint)
            c = {"command": "collect spread-n1 --level all (tiny budget: 1,500 steps, 500 transitions)",
                 "uninterrupted_imports_s": round(st["imports_s"], 1),
                 "uninterrupted_work_s": round(st["work_s"], 1),
                 "kills": st["kills"], "episodes": st["episodes"], "episodes_with_equal_digests": st["episodes"],
                 "datasets": len(st["want"]), "kill_moments_s": st["moments"]}
            print(f"collect: {c['kills']} kills over {c['episodes']} episodes, digests equal in "
                  f"{c['episodes_with_equal_digests']}/{c['episodes']} ({c['datasets']} datasets each; "
                  f"uninterrupted run: imports {c['uninterrupted_imports_s']} s, "
                  f"work {c['uninterrupted_work_s']} s)", flush=True)
        elif not state.get("data"):
            run(collect_cmd(data))  # the datasets eval trains on (a stopped collection resumes)
            state["data"] = True
            checkpoint()
        if args.only in (None, "eval"):
            st = chaos_command("eval", work, lambda res: eval_cmd(data, res), records, args.kills, rng, state,
                               checkpoint, group_kills=True)
            e = {"command": " ".join(["omarbench", *EVAL_ARGS]),
                 "uninterrupted_imports_s": round(st["imports_s"], 1),
                 "uninterrupted_work_s": round(st["work_s"], 1), "kills": st["kills"], "group_kills": st["groups"],
                 "episodes": st["episodes"], "records": len(st["want"]), "records_lost": st["lost"],
                 "records_equal": True, "kill_moments_s": st["moments"]}
            print(f"eval: {e['kills']} kills ({e['group_kills']} of the whole process group) over "
                  f"{e['episodes']} episodes, {e['records']} records each, records lost {e['records_lost']}, "
                  f"records equal (uninterrupted run: imports {e['uninterrupted_imports_s']} s, "
                  f"work {e['uninterrupted_work_s']} s)", flush=True)
    except KeyboardInterrupt:
        stopped = True
        checkpoint()
        raise SystemExit(f"chaos: stopped; its progress is in {work}: run the same command with --work {work} "
                         "to continue") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        if not keep and not stopped:
            shutil.rmtree(work, ignore_errors=True)
    if keep:
        checkpoint()
    else:  # the work folder is gone: only the figures are left to report
        state["wall_s"] = wall0 + time.perf_counter() - t0
    loads = sorted(LOADS) or [round(os.getloadavg()[0], 2)]
    out = {"collect": c, "eval": e, "seed": args.seed, "wall_s": round(state["wall_s"], 1),
           "load_1min": {"min": loads[0], "median": loads[len(loads) // 2], "max": loads[-1],
                         "cpus": os.cpu_count()}}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"chaos: done in {out['wall_s']} s; 1-minute load average min {loads[0]}, median "
          f"{loads[len(loads) // 2]}, max {loads[-1]} on {os.cpu_count()} CPUs", flush=True)
    return out


def chaos_collect(work: Path, n_kills: int, rng: random.Random, state: dict, checkpoint) -> dict:
    return chaos_command("collect", work, collect_cmd, digests, n_kills, rng, state, checkpoint,
                         group_kills=False)


if __name__ == "__main__":
    main()
