"""Progress in logs: periodic plain lines when output is not a terminal, no folding at 80 columns."""

import pytest
from toy_offline import rollout_dataset

from omarbench.offline.train import train
from omarbench.progress import LogLines, clock, make_console
from omarbench.tasks.spec import parse_task_id

TASK = parse_task_id("spread-n1")


@pytest.mark.usefixtures("one_torch_thread")
def test_training_prints_periodic_lines_when_not_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OMARBENCH_PROGRESS_EVERY", "0")  # every update (default: every 30 s)
    data = rollout_dataset(TASK, episodes=4)
    train("BC", TASK, "random", [0, 1], preset="quick", results_dir=tmp_path, dataset=data, progress=True,
          overrides={"rounds": 6, "eval_every": 3, "eval_episodes": 2, "final_episodes": 2, "batch_size": 16})
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("BC spread-n1 random seeds 0-1: ")]
    assert len(lines) >= 6, lines
    assert "6/6 rounds (100%)" in lines[-1] and "return " in lines[-1] and "elapsed" in lines[-1]
    assert any("ETA" in ln for ln in lines[:-1])


def test_log_lines_are_throttled_and_the_last_state_is_printed_once():
    out = []
    lines = LogLines("job", 100, "rounds", log=out.append, interval_s=3600)
    for k in range(1, 60):
        lines.update(k)
    assert out == []
    lines.close()
    lines.close()
    assert len(out) == 1 and out[0].startswith("job: 59/100 rounds (59%)")
    assert clock(59) == "0:59" and clock(3725) == "1:02:05"


def test_output_to_a_pipe_is_not_folded_at_80_columns(capsys):
    console = make_console()
    path = "/a/long/path/" + "x" * 150 + "/file.json"
    console.print(f"written to {path}", markup=False, highlight=False)
    assert f"written to {path}\n" == capsys.readouterr().out


def test_help_in_a_pipe_is_not_folded_at_80_columns():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("TERMINAL_WIDTH", "COLUMNS")}
    out = subprocess.run([sys.executable, "-m", "omarbench.cli", "eval", "--help"], capture_output=True,
                         text=True, env=env, check=True).stdout
    assert max(len(line) for line in out.splitlines()) > 80
    assert "MA-TD3+BC, MA-CQL, OMAR; the default" in out  # one help text, one line
