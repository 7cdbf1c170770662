"""The command line: tables print, bad input gives one line on stderr and exit code 2."""

import subprocess
import sys

import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "omarbench.cli", *args], capture_output=True, text=True)


def test_tasks_table_lists_every_task():
    out = run("tasks")
    assert out.returncode == 0
    for tid in ("spread", "tag", "world", "tag:mpe2"):
        assert tid in out.stdout


def test_tasks_show_names_roles():
    out = run("tasks", "show", "tag")
    assert out.returncode == 0
    assert "predator_0" in out.stdout and "prey_0" in out.stdout and "fixed" in out.stdout


@pytest.mark.parametrize("args,fragment", [
    (("tasks", "show", "bogus"), "unknown task 'bogus'"),
    (("tasks", "show", "spread-n99"), "out of range"),
    (("tasks", "show", "tag", "--flavor", "gym"), "unknown flavor 'gym'"),
    (("tasks", "rollout", "spread", "--episodes", "0"), "--episodes must be an integer in 1..100,000"),
])
def test_bad_input_is_one_line_exit_2(args, fragment):
    out = run(*args)
    assert out.returncode == 2
    assert fragment in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_rollout_prints_a_return():
    out = run("tasks", "rollout", "spread", "--episodes", "2")
    assert out.returncode == 0 and "reported return" in out.stdout
