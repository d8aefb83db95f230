"""One error path for every CLI (the bottom of the harness: it imports nothing of the suite).

``HarnessError`` is the family of errors a user can act on (bad flag, missing file, unusable checkpoint,
diverged loss, missing device); ``guarded(main)`` turns them, and the ValueError / FileNotFoundError of
validation, into one line ``error: ...`` on stderr and exit code 2: the job CLIs, table, plots,
complexity and the data CLIs all wrap their ``main`` with it.
"""
from __future__ import annotations

import functools
import sys
from typing import Callable


class HarnessError(Exception):
    """An error with a message that says what to do; CLIs print it on one line and exit 2."""


class CheckpointError(HarnessError, RuntimeError):
    """A checkpoint file cannot be read or does not belong to this job."""


class NonFiniteLossError(HarnessError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left in place."""


def guarded(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """`main(argv) -> exit code` with every HarnessError / ValueError / FileNotFoundError as one line, exit 2."""
    @functools.wraps(main)
    def run(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except (HarnessError, ValueError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return run
