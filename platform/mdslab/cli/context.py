"""What every command shares: the settings, the console, and one-line errors."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Sequence
from functools import wraps
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mdslab.errors import MdslabError
from mdslab.settings import LogFormat, Settings, load_settings
from mdslab.telemetry import json_handler, quiet_libraries

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
    quiet_libraries(level)


def one_line_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Known failures print as one actionable line and exit 1; bugs still show their traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except MdslabError as exc:
            # the message is text, not Rich markup: a path in brackets ("[/root/...log]") crashed the print
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def print_table(table: Table, *, drop_first: Sequence[str] = (), to: Console | None = None) -> None:
    """Print a table whose first column (the names a person looks for) is never cut.

    An 80-column terminal or a pipe made Rich shorten every column, names included (`bronze.tra…`).
    Here the first column does not wrap and the others fold instead of ending in an ellipsis; when a
    word would still be split, the columns in `drop_first` go, in that order, before anything is cut.
    """
    target = to or console
    if not table.columns:
        target.print(table)
        return
    table.columns[0].no_wrap = True
    for column in table.columns[1:]:
        column.overflow = "fold"
    droppable = [header for header in drop_first if any(c.header == header for c in table.columns)]
    while droppable and not _words_whole(table, target.width):
        header = droppable.pop(0)
        table.columns = [column for column in table.columns if column.header != header]
        for index, column in enumerate(table.columns):
            column._index = index  # Rich pads the first and last column by position
    target.print(table)


def _words_whole(table: Table, width: int) -> bool:
    """Whether every header and cell word shows unbroken when the table is drawn `width` wide."""
    probe = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    probe.print(table)
    shown = set(re.split(r"[\s│┃║|]+", probe.export_text()))
    for column in table.columns:
        for cell in (column.header, *column.cells):
            text = Text.from_markup(cell) if isinstance(cell, str) else Text(str(cell))
            if not set(text.plain.split()) <= shown:
                return False
    return True
