"""Behaviour runs shipped with the package: the datasets in minutes instead of core-hours.

A finished behaviour run is hours of MATD3 training, but its datasets need little of it: ``random`` none,
``medium`` and ``expert`` one checkpoint's actors each, ``medium-replay`` the run's experience up to the
medium checkpoint. A *shipped run* (``omarbench/assets/behaviour/<run>/``) keeps exactly that much:

    run.json              the finished run's record: config, every checkpoint's step, evaluation return and
                          digest, the reference returns and the level plan
    checkpoints/NNNN.pt   the actors of the checkpoints the levels roll out (medium, expert)

``omarbench collect`` installs a shipped run whose name, configuration, backend, fixed policy and matmul
kernel match the run it would train, instead of training. The medium-replay level then retrains the run
from its seed up to the medium checkpoint (runs are deterministic for a seed, kernel and CPU instruction
set) and checks every checkpoint digest on the way against the shipped record, so the dataset is the one
the full run wrote, or the command stops and says why. ``--retrain`` ignores shipped runs.

Maintainers ship a finished run with ``python -m omarbench.collect.shipped DATA_ROOT/behaviour/<run>``.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from omarbench.collect.run import BehaviourRun, actors_digest, behaviour_kernel
from omarbench.errors import OmarbenchError
from omarbench.io import atomic_write_bytes, atomic_write_json

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "assets" / "behaviour"
REPLAY_SUFFIX = ".replay"  # the retrained prefix of an installed run lives beside it, in <run>.replay


def shipped_path(name: str) -> Path | None:
    """The shipped run called ``name`` (a behaviour run folder's name), or None."""
    path = SHIPPED_DIR / name
    return path if (path / "run.json").exists() else None


def checkpoint_digest(path: Path) -> str:
    """The digest a behaviour run records for a checkpoint file (its actors' state digests, hashed)."""
    return actors_digest(torch.load(path, weights_only=True)["actors"])


def level_segments(info: dict[str, Any]) -> list[int]:
    """The checkpoints a finished run's levels roll out (segment 0, the untrained policy, is not needed)."""
    return sorted({int(info["levels"][k]) for k in ("medium", "expert")})


def ship(run_dir: Path, out_root: Path | None = None) -> Path:
    """Copy what the datasets need of a finished, planned run into ``out_root`` (default: the package)."""
    run_dir = Path(run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    if info.get("status") != "finished" or "levels" not in info:
        raise OmarbenchError(f"{str(run_dir)!r} is not a finished run with its levels chosen: collect its "
                             "datasets first")
    if info.get("shipped"):
        raise OmarbenchError(f"{str(run_dir)!r} is itself an installed shipped run")
    out = Path(out_root or SHIPPED_DIR) / run_dir.name
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    by_segment = {c["segment"]: c for c in info["checkpoints"]}
    for seg in level_segments(info):
        src = run_dir / "checkpoints" / f"{seg:04d}.pt"
        if checkpoint_digest(src) != by_segment[seg]["digest"]:
            raise OmarbenchError(f"checkpoint {seg} of {str(run_dir)!r} does not match its recorded digest")
        shutil.copyfile(src, out / "checkpoints" / src.name)
    atomic_write_json(out / "run.json", info)
    return out


def matches(run: BehaviourRun, info: dict[str, Any]) -> bool:
    """Whether a shipped record is the run ``run`` would train here (config, seed, backend, prey, kernel)."""
    try:
        run.check_identity(info)
    except OmarbenchError:
        return False
    return (info.get("seed") == run.seed and info.get("status") == "finished" and "levels" in info
            and info.get("matmul_kernel", "mkl") == behaviour_kernel(run.cfg.matd3))


def read_record(src: Path) -> dict[str, Any]:
    """A shipped run's ``run.json``."""
    return json.loads((src / "run.json").read_text())


def install(run: BehaviourRun, src: Path, info: dict[str, Any],
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Put the shipped run ``src`` (its record ``info``) in ``run.dir``, checkpoints checked against their
    digests; returns the installed run.json."""
    info = dict(info)
    by_segment = {c["segment"]: c for c in info["checkpoints"]}
    (run.dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    for seg in level_segments(info):
        f = src / "checkpoints" / f"{seg:04d}.pt"
        if not f.exists() or checkpoint_digest(f) != by_segment[seg]["digest"]:
            raise OmarbenchError(f"the shipped behaviour run {src.name} is damaged (checkpoint {seg}); reinstall "
                                 "omarbench or collect with --retrain")
        atomic_write_bytes(run.dir / "checkpoints" / f.name, f.read_bytes())
    info["shipped"] = src.name
    atomic_write_json(run.info_path, info)
    log(f"using the shipped behaviour run {src.name} ({info['steps']:,} steps; levels from checkpoints "
        f"{', '.join(str(s) for s in level_segments(info))}); --retrain trains it here instead")
    return info


def replay_run(run: BehaviourRun) -> BehaviourRun:
    """The run that retrains an installed shipped run's prefix (same task, config, seed and prey)."""
    return BehaviourRun(run.task, run.dir.with_name(run.dir.name + REPLAY_SUFFIX), run.cfg, seed=run.seed,
                        backend=run.backend, fixed_policy=run.fixed_policy, meta=run.meta)


def check_replay(replay: BehaviourRun, info: dict[str, Any], upto_segment: int) -> None:
    """One-line error unless the retrained checkpoints 0..upto equal the shipped record's."""
    shipped = {c["segment"]: c["digest"] for c in info["checkpoints"]}
    for c in replay.checkpoints():
        if c["segment"] <= upto_segment and c["digest"] != shipped.get(c["segment"]):
            raise OmarbenchError(
                f"retraining the shipped behaviour run {info.get('shipped')} did not reproduce its checkpoint "
                f"{c['segment']} ({c['steps']:,} steps): this machine's arithmetic rounds differently from the "
                "one that made it (another CPU instruction set or matmul kernel); collect with --retrain to "
                "train the whole run here (its datasets then differ from the published cards)")
    if not any(c["segment"] == upto_segment for c in replay.checkpoints()):
        raise OmarbenchError(f"retraining {info.get('shipped')} stopped before checkpoint {upto_segment}")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m omarbench.collect.shipped DATA_ROOT/behaviour/<run>", file=sys.stderr)
        return 2
    try:
        out = ship(Path(argv[0]))
    except OmarbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"shipped: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
