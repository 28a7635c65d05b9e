"""The error hierarchy. Only the CLI turns these into exit codes (0 ok, 1 some items failed, 2 usage).

Messages name the key, the value and the fix, in one line: they are shown to the user as they are.
"""

from __future__ import annotations

from typing import Iterable

__all__ = ["BenchError", "ConfigError", "BackendUnavailable", "WorkerFailed", "StoreError", "StoreWriteError",
           "did_you_mean"]


class BenchError(Exception):
    """Base of every error bench raises on purpose."""

    exit_code = 1


class ConfigError(BenchError):
    """The user's configuration or command line is wrong; nothing has run and nothing was written."""

    exit_code = 2

    def __init__(self, key: str, value: object, fix: str, problem: str = "") -> None:
        self.key, self.value, self.fix = key, value, fix
        what = problem or "is not valid"
        if not key:
            text = f"{what}: {fix}"
        elif value is None:  # the key is the whole override as typed
            text = f"{key} {what}: {fix}"
        else:
            text = f"{key}={value!r} {what}: {fix}"
        super().__init__(text)


class BackendUnavailable(ConfigError):
    """The backend asked for cannot run here (library missing, no device). Carries the install hint."""


class WorkerFailed(BenchError):
    """A work item's worker process crashed, timed out, ran out of memory or raised."""


class StoreError(BenchError):
    """The results store cannot be opened or written."""

    exit_code = 2


class StoreWriteError(StoreError):
    """A record could not be written where it belongs: a full disk, a read-only file system, no
    permission, a quota, a database that refused the row. The environment's fault, not the user's
    input (exit code 1); the message says where the record was kept instead and how to bring it back."""

    exit_code = 1

    def __init__(self, message: str, record_id: str = "") -> None:
        self.record_id = record_id
        super().__init__(message)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'leaderboard'?)"`` for the nearest of ``choices`` to a mistyped ``word``, else ""."""
    import difflib

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close and close[0] != word else ""
