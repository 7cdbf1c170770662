"""A sweep's missing datasets: independent tasks collected side by side in worker processes give the same
datasets (digests) as one after another, a failing task is reported per dataset without stopping the
others, and the serial path is kept where parallel collection cannot help.

The collectors live at module level so spawned workers can import them by name.
"""

import os
from pathlib import Path

import pytest

from omarbench.errors import OmarbenchError
from omarbench.grid.collecting import collect_missing, group_by_task

FAIL_ENV = "OMARBENCH_TEST_COLLECT_FAIL"


class _Console:
    def __init__(self):
        self.lines = []

    def print(self, text, **kw):
        self.lines.append(str(text))


def tiny_ensure(task, level, *, preset, root, backend, progress):
    """The real collector on a seconds-long budget."""
    from omarbench.collect.api import collect
    from omarbench.collect.collector import tiny_config

    cfg = tiny_config(total_steps=1_000, transitions=200)
    return collect(task, level, root=root, preset=preset, backend=backend, progress=progress, config=cfg,
                   log=lambda s: None)[0]


def marker_ensure(task, level, *, preset, root, backend, progress):
    """Writes a marker per (task, level) with the writer's pid; fails for the task named in FAIL_ENV."""
    if task == os.environ.get(FAIL_ENV):
        raise OmarbenchError(f"behaviour run of {task} diverged")
    (Path(root) / f"{task}-{level}").write_text(str(os.getpid()))


def marker_info(task, level, root):
    p = Path(root) / f"{task}-{level}"
    return {"id": p.name, "pid": int(p.read_text())} if p.exists() else None


def real_info(task, level, root):
    from omarbench.grid.sweep import _real_dataset_info

    return _real_dataset_info(task, level, root)


def _collect(missing, ensure, info, root, jobs):
    console = _Console()
    out = collect_missing(missing, ensure=ensure, info=info, root=str(root), user_root=str(root), preset="paper",
                          backend="numpy", jobs=jobs, progress=False, console=console)
    return (*out, console.lines)


def test_groups_keep_the_grid_order():
    missing = [("spread", "random"), ("tag", "random"), ("spread", "expert"), ("tag", "expert")]
    assert group_by_task(missing) == {"spread": ["random", "expert"], "tag": ["random", "expert"]}


def test_tasks_run_in_separate_workers_and_a_failure_stays_with_its_task(tmp_path, monkeypatch):
    monkeypatch.setenv(FAIL_ENV, "tag")
    missing = [(t, lv) for lv in ("random", "expert") for t in ("spread", "tag", "world")]
    infos, collected, broken, lines = _collect(missing, marker_ensure, marker_info, tmp_path, jobs=3)
    assert sorted(collected) == ["spread-expert", "spread-random", "world-expert", "world-random"]
    assert set(broken) == {("tag", "random"), ("tag", "expert")}
    assert broken[("tag", "expert")] == "collecting dataset tag-expert failed: OmarbenchError: behaviour run of " \
                                        "tag diverged"
    pids = {t: {infos[(t, lv)]["pid"] for lv in ("random", "expert")} for t in ("spread", "world")}
    assert all(len(p) == 1 for p in pids.values())  # one process per task, its levels in order
    assert pids["spread"] != pids["world"] and os.getpid() not in pids["spread"] | pids["world"]
    assert any("3 tasks at a time" in line for line in lines)
    assert any(line.startswith("collected world") and "2 of 2" in line for line in lines)


def test_one_job_or_a_closure_collects_in_this_process(tmp_path):
    missing = [("spread", "random"), ("tag", "random")]
    (tmp_path / "a").mkdir()
    infos, _, broken, _ = _collect(missing, marker_ensure, marker_info, tmp_path / "a", jobs=1)
    assert not broken and {i["pid"] for i in infos.values()} == {os.getpid()}

    def closure(task, level, **kw):
        marker_ensure(task, level, **kw)

    (tmp_path / "b").mkdir()
    infos, _, broken, _ = _collect(missing, closure, marker_info, tmp_path / "b", jobs=2)
    assert not broken and {i["pid"] for i in infos.values()} == {os.getpid()}


@pytest.mark.slow
def test_parallel_collection_gives_the_serial_digests(tmp_path):
    missing = [(t, lv) for lv in ("random", "expert") for t in ("spread-n1", "spread-n2")]
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    s_infos, s_collected, s_broken, _ = _collect(missing, tiny_ensure, real_info, serial, jobs=1)
    p_infos, p_collected, p_broken, _ = _collect(missing, tiny_ensure, real_info, parallel, jobs=2)
    assert not s_broken and not p_broken
    assert sorted(s_collected) == sorted(p_collected) and len(p_collected) == 4
    assert {k: v["digest"] for k, v in s_infos.items()} == {k: v["digest"] for k, v in p_infos.items()}
