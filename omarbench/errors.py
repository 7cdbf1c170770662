"""Errors that omarbench reports to users as a single line (exit code 2), never as a traceback."""

from __future__ import annotations

from collections.abc import Iterable


class OmarbenchError(Exception):
    """A user-facing error: bad input, a missing or corrupt file, an impossible request."""


class UsageError(OmarbenchError, ValueError):
    """A value given by the user is not one of the valid choices."""


def bad_choice(kind: str, value: object, choices: Iterable[object]) -> UsageError:
    """Build the standard one-line message: the bad value and the valid choices."""
    valid = ", ".join(str(c) for c in choices)
    return UsageError(f"unknown {kind} {value!r}; valid choices: {valid}")
