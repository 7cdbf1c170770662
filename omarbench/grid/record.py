"""What a sweep writes besides the trainer's own records: a failed record (with its reason) for every
run that produced none, and each dataset's behaviour record for the agent-count study."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omarbench import results as rs
from omarbench.grid.plan import Job, _dataset_id
from omarbench.vocab import normalised_score

BEHAVIOUR_SOURCE = "dataset mean episode return"


def _dataset_block(job: Job, info: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": info.get("id") or _dataset_id(job.task, job.level),
        "digest": info.get("digest"),
        "n_transitions": info.get("n_transitions"),
    }


def _write_behaviour(results_dir: Path, task: str, level: str, info: Mapping[str, Any]) -> None:
    refs = info.get("reference_returns") or {}
    mean = float(info["return_mean"])
    lo, hi = rs.reference_value(refs, "random"), rs.reference_value(refs, "expert")
    norm = normalised_score(mean, lo, hi)
    rs.write_behaviour_record(results_dir, {
        "task": task, "level": level, "source": BEHAVIOUR_SOURCE, "return_mean": mean,
        "normalised": norm if math.isfinite(norm) else None,
        "dataset": {"id": info.get("id") or _dataset_id(task, level), "digest": info.get("digest"),
                    "n_transitions": info.get("n_transitions")},
        "reference_returns": dict(refs) if refs else None,
    })


class Recorder:
    """Writes the outcome of every job into the results directory and counts it in the sweep's outcome."""

    def __init__(self, results_dir: Path, spec: Any, infos: Mapping, configs: Mapping,
                 code_version: Any, outcome: Any, display: Any = None) -> None:
        self.results_dir, self.spec, self.infos, self.configs = results_dir, spec, infos, configs
        self.code_version, self.outcome, self.display = code_version, outcome, display

    def failures(self, job: Job, seeds, reason: str) -> list[tuple[str, str]]:
        """A failed record for each seed of ``job``, with ``reason``; returns (run label, reason) pairs."""
        info = self.infos.get((job.task, job.level)) or {}
        out = []
        for seed in seeds:
            rec = rs.failed_record(
                algo=job.algo, task=job.task, level=job.level, seed=seed, preset=self.spec.preset, reason=reason,
                config=self.configs.get((job.algo, job.task, job.level)), dataset=_dataset_block(job, info),
                reference_returns=info.get("reference_returns"),
                code_version_=self.code_version(job.algo, job.task), device=self.spec.device,
            )
            if not _finished(self.results_dir / rs.record_filename(rec)):  # another process's finished run stays
                rs.write_record(self.results_dir, rec)
            out.append((f"{job.algo} {job.task} {job.level} seed {seed}", rec["reason"]))
        return out

    def job_done(self, job: Job, result: Mapping[str, Any]) -> None:
        """Keep what an executor returned for ``job``: its records, or a failure for each missing seed."""
        ok, failures = 0, []
        if result.get("ok"):
            by_seed = {}
            for rec in result.get("records", []):
                if rec.get("seed") in job.seeds and all(f in rec for f in rs.RECORD_FIELDS):
                    by_seed[int(rec["seed"])] = rec
            for seed in job.seeds:
                rec = by_seed.get(seed)
                if rec is None:
                    failures += self.failures(job, [seed], "the trainer returned no record for this seed")
                    continue
                path = self.results_dir / rs.record_filename(rec)
                if not path.exists():  # Ray workers (and trainers that only return) leave writing to us
                    rs.write_record(self.results_dir, rec)
                if rec["status"] == "ok":
                    ok += 1
                else:
                    failures.append((f"{job.algo} {job.task} {job.level} seed {seed}",
                                     rec.get("reason") or "failed"))
        else:
            failures += self.failures(job, job.seeds, result.get("reason") or "unknown error")
        self.outcome.ok += ok
        self.outcome.failed.extend(failures)
        if self.display is not None:
            self.display.finished(job.label, ok, failures, float(result.get("wall_time_s") or 0.0))


def _finished(path: Path) -> bool:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8")).get("status") == "ok"
    except (OSError, ValueError, AttributeError):
        return False
