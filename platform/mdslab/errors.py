"""Errors that reach a person. Each message is one line that says what happened and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MdslabError(Exception):
    """Base class: the CLI prints these as one line, without a traceback."""


class ConfigurationError(MdslabError):
    """A setting is missing or contradicts another one."""


class ServiceUnavailableError(MdslabError):
    """An endpoint does not answer (not started, wrong address, or wrong credentials)."""


def did_you_mean(word: str, known: Iterable[str], otherwise: str, *, cutoff: float = 0.6) -> str:
    """The end of an "unknown name" message: up to three close names (``did you mean a, b?``), else
    ``otherwise`` (where to find the valid ones), so every such message reads the same."""
    close = difflib.get_close_matches(word, list(known), n=3, cutoff=cutoff)
    return f"did you mean {', '.join(close)}?" if close else otherwise
