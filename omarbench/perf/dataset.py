"""Dataset format: write throughput, size on disk, load time and peak load memory, against plain .npy files.

A 1M-transition (quick: 100k) dataset with the ``tag`` task's shapes (4 agents, obs 16/16/16/14) is
written with ``DatasetWriter`` (durable, as the collector writes) in batches of 1,000 episodes, then
loaded into torch tensors in a fresh process whose peak resident memory is measured from
``/proc/self/status`` (the high-water mark is reset just before loading). The baseline is the OMAR
authors' layout: one uncompressed ``.npy`` file per agent and field (``omarbench datasets export
--format omar-npy``), written with ``np.save`` and read back with ``np.load``.

The data is synthetic (standard-normal observations, uniform actions): nearly incompressible, so the
on-disk ratio is a worst case; environment data compresses better. Loads run right after the write,
with the files in the page cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from omarbench.data import DatasetWriter, load_dataset, verify_dataset
from omarbench.data.store import stored_size
from omarbench.data.synthetic import synthetic_episodes
from omarbench.tasks.spec import parse_task_id

BATCH_EPISODES = 1000

# Runs in a fresh interpreter: import everything first, reset the peak-RSS mark, then load.
_LOADER = """
import json, sys, time
from pathlib import Path
import numpy as np, torch, zarr, zarr.codecs, zarr.storage
from omarbench.data import load_dataset

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return None

path, mode = sys.argv[1], sys.argv[2]
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    method = "VmHWM reset before load"
except OSError:
    method = "VmHWM since start (could not reset: upper bound)"
before = status("VmRSS")
import resource
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
c0 = cpu()
t0 = time.perf_counter()
if mode == "npy":
    arrays = [torch.from_numpy(np.load(p)) for p in sorted(Path(path).glob("*.npy"))]
else:
    ds = load_dataset(path, check_digest=(mode == "zarr"))
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "cpu": cpu() - c0, "peak_extra": status("VmHWM") - before,
                  "method": method}))
"""


def _load_in_child(path: Path, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _LOADER, str(path), mode], capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"loader failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout)


def _raw_bytes(task, n: int, n_episodes: int) -> int:
    per_row = sum(4 * (2 * a.obs_dim + a.act_dim + 1) for a in task.agents) + 2
    return per_row * n + 8 * (n_episodes + 1)


def _write(path: Path, task, n_episodes: int, durable: bool) -> tuple[float, int]:
    """Seconds spent inside the writer (appends + finalize); generating the episodes is not timed."""
    writer = DatasetWriter.create(path, task, "expert", {"provenance": {"data": "synthetic benchmark"}},
                                  durable=durable)
    spent = 0.0
    for start in range(0, n_episodes, BATCH_EPISODES):
        batch = synthetic_episodes(task, start, min(BATCH_EPISODES, n_episodes - start))
        t0 = time.perf_counter()
        writer.append_episodes(*batch)
        spent += time.perf_counter() - t0
    t0 = time.perf_counter()
    writer.finalize()
    return spent + time.perf_counter() - t0, writer.chunk_rows


def run(quick: bool = False) -> None:
    task = parse_task_id("tag")
    n_episodes = (100_000 if quick else 1_000_000) // task.episode_length
    n = n_episodes * task.episode_length
    raw = _raw_bytes(task, n, n_episodes)
    work = Path(tempfile.mkdtemp(prefix="omarbench-bench-"))
    try:
        path = work / "tag-expert.zarr"
        print(f"dataset: {n:,} transitions ({n_episodes:,} episodes), tag shapes, synthetic data; "
              f"raw arrays {raw / 1e6:,.1f} MB; load average at start {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} CPUs")
        spent = {}
        for durable in (False, True):
            if path.exists():
                shutil.rmtree(path)
            spent[durable], chunk_rows = _write(path, task, n_episodes, durable)
            label = "fsync before each commit" if durable else "no fsync (durable=False)"
            print(f"write {label:26s} {spent[durable]:6.2f} s  {n / spent[durable]:10,.0f} transitions/s  "
                  f"{raw / 1e6 / spent[durable]:6.1f} MB/s  (zstd-1 + crc32c, {chunk_rows:,}-row chunks)")
        disk = stored_size(path)

        ds = load_dataset(path, check_digest=False)
        arrays = {f"{k}_{i}": getattr(a, f).numpy() for i, a in enumerate(ds.agents)
                  for k, f in (("obs", "observations"), ("acs", "actions"), ("rews", "rewards"),
                               ("next_obs", "next_observations"))}
        arrays.update({f"dones_{i}": ds.terminals.numpy().astype(np.float32) for i in range(task.n_agents)})
        npy_dir = work / "npy"
        npy_dir.mkdir()
        t0 = time.perf_counter()
        for name, arr in arrays.items():
            np.save(npy_dir / f"{name}.npy", arr)
        npy_write = time.perf_counter() - t0
        npy_disk = stored_size(npy_dir)
        del ds, arrays
        print(f"write baseline np.save, no fsync  {npy_write:6.2f} s  {raw / 1e6 / npy_write:29.1f} MB/s  "
              f"(ratio zarr no-fsync / npy {spent[False] / npy_write:.2f}x)")
        print(f"on disk: zarr {disk / 1e6:,.1f} MB = {disk / raw:.3f} x raw; npy {npy_disk / 1e6:,.1f} MB")

        results = {mode: _load_in_child(path if mode != "npy" else npy_dir, mode)
                   for mode in ("zarr", "zarr-nodigest", "npy")}
        for mode, label in (("zarr", "load_dataset (checksums + digest)"),
                            ("zarr-nodigest", "load_dataset(check_digest=False)"),
                            ("npy", "baseline np.load of the .npy files")):
            r = results[mode]
            print(f"load {label:38s} {r['seconds']:6.2f} s (CPU {r['cpu']:5.2f} s)  peak extra RSS "
                  f"{r['peak_extra'] / 1e6:7.1f} MB = {r['peak_extra'] / raw:4.2f} x raw")
        z, b = results["zarr"], results["npy"]
        print(f"load ratio zarr/npy: {z['seconds'] / b['seconds']:.2f}x time; memory measured as {z['method']}")
        if quick:
            print("targets (load <= 3 s, peak <= 1.5 x raw) are set for 1M transitions: run without --quick")
        else:
            print(f"targets: load <= 3 s ({'met' if z['seconds'] <= 3 else 'MISSED'}), "
                  f"peak <= 1.5 x raw ({'met' if z['peak_extra'] <= 1.5 * raw else 'MISSED'})")
        t0 = time.perf_counter()
        ok = verify_dataset(path).ok
        print(f"verify (every chunk + digest): {time.perf_counter() - t0:6.2f} s, ok={ok}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
