"""Developer sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s bench``, ``nox -s chaos``."""

import nox

nox.options.sessions = ["lint", "tests"]
TORCH = "torch==2.13.0"  # the CPU wheel; install it before anything that depends on torch


def _install(session: nox.Session, extras: str = "dev") -> None:
    session.install(TORCH)
    session.install("-e", f".[{extras}]")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite; pass --runslow (the default here) to include end-to-end tests."""
    _install(session, "dev,mujoco,interop")
    session.install("--no-deps", "id-marl-eval==0.0.4")  # its pins do not install here (pyproject.toml)
    session.run("python", "-m", "pytest", *(session.posargs or ["--runslow", "-n", "auto"]))


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "omarbench", "tests", "noxfile.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Performance: omarbench vs a baseline measured in the same run (ratios, never timed asserts)."""
    _install(session)
    session.run("python", "-m", "omarbench.perf", *session.posargs)


@nox.session
def chaos(session: nox.Session) -> None:
    """The fault suite: SIGKILL collect and eval at 20 random moments each, resume, compare digests/records."""
    _install(session)
    session.run("python", "tests/chaos.py", *(session.posargs or ["--kills", "20"]))
