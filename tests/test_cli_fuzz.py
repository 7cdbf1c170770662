"""Bad values for every option of every command: exit code 2, one line on stderr, no traceback, and nothing
created anywhere (data root, results, outputs, the working directory).

Each case takes a base command line that would be valid (and do real work) and replaces one value by a
bad one, so each check has to fire before any work starts. The commands and their options are read from
the CLI itself: a new option without bad values listed here fails the coverage test.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from test_results import make_record

from omarbench import results as rs

# bad values per option (or argument, upper-case); ``{file}`` is a regular file, so ``{file}/x`` is a path
# that cannot be made
BAD: dict[str, list[str]] = {
    "TASK": ["pong", "spread-n99", "tag:nope"],
    "TASK_ID": ["pong", "spread-n0"],
    "ALGO": ["dqn"],
    "LEVEL": ["best"],
    "DATASET": ["nope-random", "{file}/x.zarr"],
    "--level": ["best"],
    "--levels": ["best", ""],
    "--algos": ["dqn", ""],
    "--tasks": ["pong", ""],
    "--transitions": ["abc", "0", "-5", "1000000000000"],
    "--seed": ["abc", "-1", "99999999999", "1.5"],
    "--seeds": ["x", "-1", "0", "5-1", "100000000000", "0-99999999999", "1,99999999999"],
    "--episodes": ["abc", "0", "-1", "100000000"],
    "--steps": ["abc", "0", "-3", "10000000000000"],
    "--pick": ["abc", "-1", "10000000000000"],
    "--threads": ["abc", "0", "-2"],
    "--jobs": ["abc", "0", "-1"],
    "--agents": ["0", "99", "x", "5-1"],
    "--backend": ["gpu"],
    "--device": ["tpu", "cuda:x"],
    "--preset": ["huge"],
    "--flavor": ["nope"],
    "--executor": ["slurm"],
    "--references": ["theirs"],
    "--format": ["csv"],
    "--curve-points": ["abc", "0", "-1"],
    "FMT": ["nope"],
    "PATH": ["{file}/x", "{file}"],
    "--batch": ["abc", "-1"],
    "--task": ["pong"],
    "--checkpoint-every": ["abc", "-1", "100000000000"],
    "--set": ["x", "rounds=abc", "rounds=0", "batch_size=100000000000", "lr=nan", "nope=1", "cql_actions=0",
              "omar_iters=0", "tau=2", "final_episodes=-1"],
    "--root": ["{file}/x"],
    "--results": ["{file}/x"],
    "--out": ["{file}/x"],
}
# options that take no value or whose any value is fine
NOT_FUZZED = {"--progress", "--no-collect", "--scaling", "--dry-run", "--json", "--all", "--force", "--skip-bad",
              "--best", "--retrain", "--version", "--install-completion", "--show-completion", "--help"}


def base_commands(tmp: Path) -> dict[str, list[str]]:
    """A valid command line per command; ``R`` roots do not exist (nothing may create them)."""
    root, res = str(tmp / "R"), str(tmp / "RES")
    return {
        "tasks": ["tasks", "--flavor", "paper"],
        "tasks show": ["tasks", "show", "spread"],
        "tasks rollout": ["tasks", "rollout", "spread-n1", "--episodes", "2", "--seed", "0", "--backend", "numpy",
                          "--flavor", "paper"],
        "collect": ["collect", "spread-n1", "--level", "random", "--transitions", "100", "--seed", "0", "--root",
                    root, "--backend", "numpy", "--preset", "quick", "--flavor", "paper", "--no-progress"],
        "eval": ["eval", "--algos", "bc", "--tasks", "spread-n1", "--levels", "random", "--seeds", "1",
                 "--preset", "quick", "--jobs", "1", "--executor", "local", "--results", res, "--root", root,
                 "--agents", "1-2", "--device", "cpu", "--backend", "numpy", "--set", "rounds=5", "--dry-run",
                 "--no-progress", "--checkpoint-every", "10"],
        "train": ["train", "bc", "spread-n1", "random", "--seeds", "1", "--preset", "quick", "--root", root,
                  "--results", res, "--device", "cpu", "--backend", "numpy", "--set", "rounds=5", "--threads", "1",
                  "--no-progress", "--checkpoint-every", "10"],
        "report": ["report", "--results", str(tmp / "records"), "--out", str(tmp / "LB"), "--references", "ours",
                   "--preset", "paper", "--tasks", "spread", "--root", root],
        "datasets list": ["datasets", "list", "--root", root],
        "datasets info": ["datasets", "info", "spread-n1-random", "--root", root],
        "datasets verify": ["datasets", "verify", "spread-n1-random", "--root", root],
        "datasets card": ["datasets", "card", "spread-n1-random", "--out", str(tmp / "CARDS"), "--root", root],
        "datasets export": ["datasets", "export", "spread-n1-random", "--format", "npz", "--out", str(tmp / "EXP"),
                            "--root", root],
        "datasets import": ["datasets", "import", "og-marl", str(tmp / "vault.vlt" / "Expert"), "--batch", "0",
                            "--task", "tag", "--level", "expert", "--root", root],
        "prey train": ["prey", "train", "tag", "--seed", "0", "--steps", "100", "--root", root, "--backend",
                       "numpy", "--out", str(tmp / "P" / "prey.pt")],
    }


# (command, option): bad values that are in fact harmless for that command, with the reason
EXEMPT = {
    ("datasets list", "--root"): "a root that cannot exist lists no datasets",
    ("report", "--root"): "--results is given, so the data root is not used",
    ("eval", "--agents"): "--agents is used with --scaling only",
    ("datasets import", "--uid"): "a uid is a folder of the vault, checked against the vault (absent here)",
}


def _params(command: str):
    import typer

    from omarbench.cli import app

    cmd = typer.main.get_command(app)
    for word in command.split():
        cmd = cmd.commands[word]
    for p in cmd.params:
        if p.param_type_name == "option":
            yield p.opts[0]
        else:
            yield p.name.upper()


def _replace(argv: list[str], name: str, value: str, command: str) -> list[str]:
    argv = list(argv)
    if name.startswith("--"):
        if name not in argv:
            return [*argv, name, value]
        i = argv.index(name)
        argv[i + 1] = value
        return argv
    # positional: arguments follow the command words, in declaration order
    positional = [p for p in _params(command) if not p.startswith("--")]
    start = len(command.split())
    argv[start + positional.index(name)] = value
    return argv


def cases(tmp: Path):
    out = []
    for command in base_commands(tmp):
        for name in _params(command):
            if name in NOT_FUZZED or (command, name) in EXEMPT:
                continue
            for value in BAD[name]:
                out.append((command, name, value))
    return out


def _snapshot(tmp: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("a regular file\n")
    records = tmp_path / "records"
    for seed in (0, 1):
        rs.write_record(records, make_record("OMAR", "spread", "expert", seed, 40.0 + seed))
    monkeypatch.setenv("OMARBENCH_DATA", str(tmp_path / "DEFAULT"))
    monkeypatch.setenv("HOME", str(tmp_path / "HOME"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("OMARBENCH_CHECKPOINT_EVERY", "250")  # eval --checkpoint-every sets it in-process
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(argv: list[str], capfd) -> tuple[int, str]:
    from omarbench.cli import app, run_cli

    code = run_cli(app, argv)
    return code, capfd.readouterr().err


def test_every_option_has_bad_values_listed(tmp_path):
    import typer

    from omarbench.cli import app

    commands = set(base_commands(tmp_path))
    seen = set()

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None) or {}
        for name, sub in subs.items():
            walk(sub, [*path, name])
        if path and (not subs or getattr(cmd, "invoke_without_command", False)):
            seen.add(" ".join(path))

    walk(typer.main.get_command(app), [])
    assert seen == commands, "a command without a base command line here"
    for command in commands:
        for name in _params(command):
            listed = name in BAD or name in NOT_FUZZED or (command, name) in EXEMPT
            assert listed, f"{command} {name}: no bad values listed"


@pytest.mark.slow  # ~130 command lines: about 12 s on a quiet 2-core machine
def test_bad_values_exit_2_with_one_line_and_create_nothing(sandbox, capfd):
    before = _snapshot(sandbox)
    bases = base_commands(sandbox)
    failures = []
    n = 0
    for command, name, value in cases(sandbox):
        argv = _replace(bases[command], name, value.format(file=sandbox / "afile"), command)
        try:
            code, err = run(argv, capfd)
        except BaseException as exc:  # noqa: BLE001 - an escaped exception is a traceback for the user
            failures.append(f"{' '.join(argv)}: raised {type(exc).__name__}: {exc}")
            continue
        n += 1
        lines = [line for line in err.splitlines() if line.strip()]
        after = _snapshot(sandbox)
        if code != 2 or len(lines) != 1 or not lines[0].startswith("error: ") or "Traceback" in err:
            failures.append(f"{' '.join(argv)}: rc {code}, stderr {err!r}")
        elif after != before:
            failures.append(f"{' '.join(argv)}: created {sorted(set(after) - set(before))}")
            for extra in sorted(set(after) - set(before), reverse=True):
                p = sandbox / extra
                p.rmdir() if p.is_dir() else p.unlink()
        elif name.startswith("--") and value.format(file="") not in ("", "0") and name not in (
                "--set", "--root", "--results", "--out") and value not in lines[0] and name not in lines[0]:
            failures.append(f"{' '.join(argv)}: the message names neither {name} nor {value!r}: {lines[0]}")
    assert not failures, f"{len(failures)} of {n} cases:\n" + "\n".join(failures)
    assert n >= 100


@pytest.mark.skipif(sys.platform != "linux", reason="/proc is Linux's")
def test_a_read_only_output_is_refused_up_front(sandbox, capfd):
    ro = "/proc/self/omarbench-out"  # not writable, even for root
    for argv in (["report", "--results", str(sandbox / "records"), "--out", ro],
                 ["collect", "spread-n1", "--root", ro, "--no-progress"],
                 ["train", "bc", "spread-n1", "random", "--results", ro, "--root", str(sandbox / "R")]):
        code, err = run(argv, capfd)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "not writable" in err, (argv, err)
    assert not os.path.exists(ro)
