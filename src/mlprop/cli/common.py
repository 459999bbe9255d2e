"""What every subcommand module shares: exit codes, :class:`UsageError`, argument types.

Exit codes: 0 success, 1 a check failed, 2 usage or input error (with a one-line reason on
stderr).
"""

from __future__ import annotations

import argparse

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments or input: reported on one line, exit 2."""


def _integer(text: str, *, minimum: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type for counts (epochs, rounds, processes): an integer >= 1."""
    return _integer(text, minimum=1, expected="a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type for seeds and thread counts: an integer >= 0."""
    return _integer(text, minimum=0, expected="a non-negative integer")
