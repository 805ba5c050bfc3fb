"""User-facing errors: each one says what went wrong and how to fix it."""

from __future__ import annotations

import difflib
from typing import Iterable


class PrmbenchError(Exception):
    """An error caused by input or environment that the user can fix.

    The CLI prints its message (no traceback) and exits with status 2.
    """


class ConfigError(PrmbenchError):
    """Bad names, arguments, budgets or files given to prmbench."""


class DataError(PrmbenchError):
    """A data set or samples file that is missing or malformed."""


class ModelLoadError(PrmbenchError):
    """A model that cannot be loaded (wrong id, offline, missing files)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' Did you mean X?' for the closest of `choices`, or '' when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    if not close:
        return ""
    if len(close) == 1:
        return f" Did you mean {close[0]!r}?"
    return " Did you mean one of " + ", ".join(repr(c) for c in close) + "?"


def unknown_name(kind: str, name: str, choices: Iterable[str], list_cmd: str) -> ConfigError:
    """Build the error for an unknown registry name, with a did-you-mean and the listing command."""
    choices = sorted(choices)
    return ConfigError(
        f"unknown {kind} {name!r}.{did_you_mean(name, choices)} "
        f"Run `{list_cmd}` to see all {len(choices)} available."
    )
