"""What every command shares: the settings, the console, and one-line errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler

from mdslab.errors import MdslabError
from mdslab.settings import LogFormat, Settings, load_settings
from mdslab.telemetry import json_handler

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def settings() -> Settings:
    loaded = load_settings()
    _configure_logging(loaded.log_level, loaded.log_format)
    return loaded


def _configure_logging(level: str, log_format: LogFormat) -> None:
    """Readable lines on stderr, or one JSON object per line (MDSLAB_LOG_FORMAT=json)."""
    root = logging.getLogger()
    if not any(getattr(handler, "mdslab", False) for handler in root.handlers):
        handler = (
            json_handler()
            if log_format is LogFormat.JSON
            else RichHandler(console=err_console, show_path=False, rich_tracebacks=False)
        )
        handler.mdslab = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())


def one_line_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Known failures print as one actionable line and exit 1; bugs still show their traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except MdslabError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper
