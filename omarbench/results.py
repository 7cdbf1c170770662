"""The results store: a directory of run records, one JSON file per (algo, task, level, seed) run.

A record is written atomically (temporary file in the same directory, fsync, ``os.replace``) under a
file name made from its identity and key, so any number of processes can write into one directory at
once without locks and without a shared index that could lose updates. Readers take whatever complete
files are there; a file that cannot be read is skipped with a :class:`RecordWarning` (``omarbench report`` turns
that into an error naming the file, unless told to skip and list it).

Besides run records the directory may hold *behaviour records* (``kind: "behaviour"``): the score of
the policy that collected a dataset (the dataset's mean episode return), used by the agent-count study.

Public API::

    run_key(...) -> str                     sha256 of the canonical JSON of a run's identity
    record_filename(record) -> str          <algo>__<task>__<level>__seed<k>__<key[:12]>.json
    write_record(results_dir, record)       atomic write; returns the path
    failed_record(...) -> dict              a record for a run that did not finish, with its reason
    load_records(results_dir) -> DataFrame  one row per run (tidy)
    load_curves(results_dir) -> DataFrame   long form: one row per (run, evaluation round)
    load_behaviour(results_dir) -> DataFrame
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import subprocess
import warnings
from collections.abc import Iterator, Mapping, MutableMapping
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omarbench.io import atomic_write_text
from omarbench.machine import cpu_capability, cpu_label
from omarbench.versions import combine, source_digest, version_string

if TYPE_CHECKING:  # pandas is imported where tables are built, so writers stay light
    import pandas as pd

SCHEMA = 1
STATUSES = ("ok", "failed")
RECORD_FIELDS = ("algo", "task", "level", "seed", "status", "key")
BEHAVIOUR_PREFIX = "behaviour__"

RECORD_COLUMNS = (
    "algo", "task", "level", "seed", "preset", "status", "reason", "final_return", "final_return_std",
    "final_episodes", "normalised", "dataset_id", "dataset_digest", "n_transitions", "reference_random",
    "reference_expert", "reference_source", "code_version", "device", "wall_time_s", "created", "key",
    "config", "file", "best_return", "best_normalised", "best_round", "best_episodes",
)
CURVE_COLUMNS = ("algo", "task", "level", "seed", "preset", "key", "round", "return", "normalised")
BEHAVIOUR_COLUMNS = (
    "task", "level", "dataset_id", "dataset_digest", "return_mean", "normalised", "reference_random",
    "reference_expert", "source", "file",
)


class RecordWarning(UserWarning):
    """A file in a results directory could not be read as a record and was skipped."""


# ----------------------------------------------------------------------------------------------- keys


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: equal objects give equal text (the basis of run keys)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def run_digest(package_dir: str | os.PathLike | None = None, algo: str | None = None,
               task: str | None = None, **kwargs: Any) -> str:
    """:func:`omarbench.versions.source_digest` for ``algo``, combined with ``task``'s fixed agents (its
    prey asset, from ``package_dir``'s when given) if it has any."""
    from omarbench.tasks.prey import prey_version_part
    from omarbench.tasks.spec import parse_task_id

    digest = source_digest(package_dir, algo, **kwargs)
    if task is None:
        return digest
    assets = Path(package_dir) / "assets" / "prey" if package_dir is not None else None
    return combine(digest, prey_version_part(parse_task_id(task), assets))


@cache
def code_version(algo: str | None = None, task: str | None = None) -> str:
    """``<omarbench version>+src.<12 hex>`` of :func:`run_digest`: the code a run of ``algo`` on ``task``
    comes from (the sources alone when neither is given). Part of every run key: a run is redone when
    it changes."""
    return version_string(run_digest(algo=algo, task=task))


def run_key(
    algo: str,
    task: str,
    level: str,
    seed: int,
    preset: str,
    config: Mapping[str, Any] | None,
    dataset_digest: str | None,
    code_version: str,
) -> str:
    """The identity of one run: sha256 hex of the canonical JSON of everything that determines it."""
    identity = {
        "algo": algo,
        "task": task,
        "level": level,
        "seed": int(seed),
        "preset": preset,
        "config": dict(config or {}),
        "dataset_digest": dataset_digest,
        "code_version": code_version,
    }
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()


def key_of(record: Mapping[str, Any]) -> str:
    """Recompute a record's key from its own fields (the stored ``key`` is not trusted blindly)."""
    return run_key(
        record["algo"], record["task"], record["level"], record["seed"], record.get("preset", ""),
        record.get("config") or {}, (record.get("dataset") or {}).get("digest"), record.get("code_version", ""),
    )


@lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The git commit of the installed package (provenance only, not part of run keys), or None."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


# --------------------------------------------------------------------------------------------- writing


def _safe(text: str) -> str:
    return str(text).replace(":", "+").replace("/", "_").replace(os.sep, "_")


def record_filename(record: Mapping[str, Any]) -> str:
    """``<algo>__<task, ':'→'+'>__<level>__seed<k>__<key[:12]>.json`` (the shared record contract)."""
    return (
        f"{_safe(record['algo'])}__{_safe(record['task'])}__{_safe(record['level'])}"
        f"__seed{int(record['seed'])}__{record['key'][:12]}.json"
    )


def behaviour_filename(record: Mapping[str, Any]) -> str:
    digest = (record.get("dataset") or {}).get("digest") or "nodigest"
    return f"{BEHAVIOUR_PREFIX}{_safe(record['task'])}__{_safe(record['level'])}__{digest[:12]}.json"


def record_text(record: Mapping[str, Any]) -> str:
    """A record as JSON with one top-level field per line, each value compact (keys sorted): small enough
    to commit a study's records, and a diff still shows which fields changed."""
    lines = [f"{json.dumps(str(k))}:{json.dumps(record[k], sort_keys=True, separators=(',', ':'))}"
             for k in sorted(record)]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_record(results_dir: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write one run record atomically into ``results_dir``; returns its path. A record without ``cpu`` is
    stamped with the CPU and PyTorch's CPU capability (in place, when it is a mutable mapping)."""
    missing = [f for f in RECORD_FIELDS if f not in record]
    if missing:
        raise ValueError(f"run record lacks field(s) {', '.join(missing)}")
    if record["status"] not in STATUSES:
        raise ValueError(f"run record status {record['status']!r} is not one of {', '.join(STATUSES)}")
    if "cpu" not in record:  # the machine decides the float rounding, so a record says which one ran it
        stamp = {"cpu": cpu_label(), "cpu_capability": cpu_capability()}
        if isinstance(record, MutableMapping):
            record.update(stamp)  # the caller's copy then equals the file
        else:
            record = {**record, **stamp}
    return atomic_write_text(Path(results_dir) / record_filename(record), record_text(record))


def write_behaviour_record(results_dir: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write a behaviour record (``kind: "behaviour"``: a dataset's behaviour score) atomically."""
    record = {"kind": "behaviour", **record}
    return atomic_write_text(Path(results_dir) / behaviour_filename(record), record_text(record))


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def failed_record(
    *,
    algo: str,
    task: str,
    level: str,
    seed: int,
    preset: str,
    reason: str,
    config: Mapping[str, Any] | None = None,
    dataset: Mapping[str, Any] | None = None,
    reference_returns: Mapping[str, Any] | None = None,
    code_version_: str | None = None,
    device: str = "cpu",
    wall_time_s: float = 0.0,
) -> dict[str, Any]:
    """A complete record (status ``failed``) for a run that did not produce one itself."""
    if code_version_ is None:
        try:
            code_version_ = code_version(algo, task)
        except ValueError:  # not an algorithm (or task) of this package
            code_version_ = code_version()
    version = code_version_
    dataset = dict(dataset or {})
    reason_line = " ".join(str(reason).split()) or "unknown error"
    return {
        "schema": SCHEMA,
        "key": run_key(algo, task, level, seed, preset, config, dataset.get("digest"), version),
        "algo": algo,
        "task": task,
        "level": level,
        "seed": int(seed),
        "preset": preset,
        "config": dict(config or {}),
        "dataset": dataset,
        "reference_returns": dict(reference_returns) if reference_returns else None,
        "code_version": version,
        "device": device,
        "status": "failed",
        "reason": reason_line,
        "curve": [],
        "final": None,
        "wall_time_s": float(wall_time_s),
        "created": utc_now(),
    }


# --------------------------------------------------------------------------------------------- reading


def _candidate_files(results_dir: Path) -> list[Path]:
    if not results_dir.is_dir():
        return []
    return sorted(p for p in results_dir.glob("*.json") if not p.name.startswith("."))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        warnings.warn(f"skipping unreadable record {path}: {exc}", RecordWarning, stacklevel=3)
        return None
    if not isinstance(obj, dict):
        warnings.warn(f"skipping {path}: not a JSON object", RecordWarning, stacklevel=3)
        return None
    return obj


def iter_records(results_dir: str | os.PathLike) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every readable run record in ``results_dir`` (sorted by file name), with its path."""
    for path in _candidate_files(Path(results_dir)):
        if path.name.startswith(BEHAVIOUR_PREFIX):
            continue
        rec = _read_json(path)
        if rec is None:
            continue
        why = record_problem(rec)
        if why is not None:
            warnings.warn(f"skipping {path}: not a valid run record ({why})", RecordWarning, stacklevel=2)
            continue
        yield path, rec


def _is_number(x: Any, *, finite: bool = False) -> bool:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    return not finite or math.isfinite(x)


def record_problem(rec: Mapping[str, Any]) -> str | None:
    """What makes ``rec`` unusable as a run record (one phrase), or None when it is well formed.

    Checked: the identity fields, the status, an ``ok`` run's final score (a finite number, with its
    spread and episode count), numeric normalised scores, and the curve's points.
    """
    missing = [f for f in RECORD_FIELDS if f not in rec]
    if missing:
        return f"missing field(s) {', '.join(missing)}"
    if rec["status"] not in STATUSES:
        return f"status {rec['status']!r} is not one of {', '.join(STATUSES)}"
    for f in ("algo", "task", "level", "key"):
        if not isinstance(rec[f], str) or not rec[f]:
            return f"{f} {rec[f]!r} is not a non-empty string"
    if isinstance(rec["seed"], bool) or not isinstance(rec["seed"], int) or rec["seed"] < 0:
        return f"seed {rec['seed']!r} is not a non-negative integer"
    final = rec.get("final")
    if rec["status"] == "ok":
        if not isinstance(final, Mapping):
            return f"status 'ok' but final is {final!r}"
        if not _is_number(final.get("return"), finite=True):
            return f"final.return {final.get('return')!r} is not a finite number"
        for f in ("return_std", "normalised"):
            if final.get(f) is not None and not _is_number(final.get(f)):
                return f"final.{f} {final.get(f)!r} is not a number"
        if final.get("episodes") is not None and (isinstance(final["episodes"], bool)
                                                   or not isinstance(final["episodes"], int)):
            return f"final.episodes {final['episodes']!r} is not an integer"
    curve = rec.get("curve")
    if curve is not None:
        if not isinstance(curve, list):
            return f"curve is {type(curve).__name__}, not a list"
        for point in curve:
            if not isinstance(point, Mapping) or not _is_number(point.get("round")):
                return f"curve point {point!r} has no numeric round"
            for f in ("return", "normalised"):
                if point.get(f) is not None and not _is_number(point.get(f)):
                    return f"curve point of round {point.get('round')}: {f} {point.get(f)!r} is not a number"
    return None


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def reference_value(refs: Mapping[str, Any] | None, which: str) -> float:
    """A reference return from either ``{"random": -4.1}`` or the datasets' ``{"random": {"mean": -4.1}}``."""
    value = (refs or {}).get(which)
    if isinstance(value, Mapping):
        value = value.get("mean")
    return _float(value)


def _row(path: Path, rec: Mapping[str, Any]) -> dict[str, Any]:
    final = rec.get("final") or {}
    best = rec.get("best") if isinstance(rec.get("best"), Mapping) else {}
    dataset = rec.get("dataset") or {}
    refs = rec.get("reference_returns") or {}
    return {
        "algo": rec["algo"],
        "task": rec["task"],
        "level": rec["level"],
        "seed": int(rec["seed"]),
        "preset": rec.get("preset"),
        "status": rec["status"],
        "reason": rec.get("reason"),
        "final_return": _float(final.get("return")),
        "final_return_std": _float(final.get("return_std")),
        "final_episodes": final.get("episodes"),
        "normalised": _float(final.get("normalised")),
        "dataset_id": dataset.get("id"),
        "dataset_digest": dataset.get("digest"),
        "n_transitions": dataset.get("n_transitions"),
        "reference_random": reference_value(refs, "random"),
        "reference_expert": reference_value(refs, "expert"),
        "reference_source": refs.get("source"),
        "code_version": rec.get("code_version"),
        "device": rec.get("device"),
        "wall_time_s": _float(rec.get("wall_time_s")),
        "created": rec.get("created"),
        "key": rec["key"],
        "config": canonical_json(rec.get("config") or {}),
        "file": path.name,
        # the best periodic evaluation, if the run recorded one (records made before it have none)
        "best_return": _float(best.get("return")),
        "best_normalised": _float(best.get("normalised")),
        "best_round": best.get("round"),
        "best_episodes": best.get("episodes"),
    }


def load_records(results_dir: str | os.PathLike) -> pd.DataFrame:
    """All run records of ``results_dir`` as a tidy table, one row per run (see ``RECORD_COLUMNS``).

    Unreadable files are skipped with a :class:`RecordWarning`; their names are in
    ``df.attrs["skipped"]``. An empty or missing directory gives an empty table with the same columns.
    """
    import pandas as pd

    rows, skipped = [], []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RecordWarning)
        rows = [_row(p, r) for p, r in iter_records(results_dir)]
    for w in caught:
        skipped.append(str(w.message))
        warnings.warn(w.message, RecordWarning, stacklevel=2)
    df = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    df = df.sort_values(["algo", "task", "level", "seed", "created", "file"], kind="stable").reset_index(drop=True)
    df.attrs["skipped"] = skipped
    return df


def load_curves(results_dir: str | os.PathLike) -> pd.DataFrame:
    """Evaluation curves of every run in long form: one row per (run, round), see ``CURVE_COLUMNS``."""
    import pandas as pd

    rows = []
    for _, rec in iter_records(results_dir):
        for point in rec.get("curve") or []:
            rows.append({
                "algo": rec["algo"], "task": rec["task"], "level": rec["level"], "seed": int(rec["seed"]),
                "preset": rec.get("preset"), "key": rec["key"], "round": int(point.get("round", 0)),
                "return": _float(point.get("return")), "normalised": _float(point.get("normalised")),
            })
    df = pd.DataFrame(rows, columns=list(CURVE_COLUMNS))
    return df.sort_values(["algo", "task", "level", "seed", "key", "round"], kind="stable").reset_index(drop=True)


def load_behaviour(results_dir: str | os.PathLike) -> pd.DataFrame:
    """Behaviour records (a dataset's behaviour score), one row per dataset; see ``BEHAVIOUR_COLUMNS``."""
    import pandas as pd

    rows = []
    for path in _candidate_files(Path(results_dir)):
        if not path.name.startswith(BEHAVIOUR_PREFIX):
            continue
        rec = _read_json(path)
        if rec is None:
            continue
        if rec.get("kind") != "behaviour" or "task" not in rec or "level" not in rec:
            warnings.warn(f"skipping {path}: not a behaviour record", RecordWarning, stacklevel=2)
            continue
        dataset = rec.get("dataset") or {}
        refs = rec.get("reference_returns") or {}
        rows.append({
            "task": rec["task"], "level": rec["level"], "dataset_id": dataset.get("id"),
            "dataset_digest": dataset.get("digest"), "return_mean": _float(rec.get("return_mean")),
            "normalised": _float(rec.get("normalised")), "reference_random": reference_value(refs, "random"),
            "reference_expert": reference_value(refs, "expert"), "source": rec.get("source"), "file": path.name,
        })
    df = pd.DataFrame(rows, columns=list(BEHAVIOUR_COLUMNS))
    return df.sort_values(["task", "level", "file"], kind="stable").reset_index(drop=True)

