"""What the CLI prints: Rich tables and lines for people, one JSON document on stdout with ``--json``.

Errors always go to stderr as one line; with ``--json`` an error is also the one JSON document on stdout
(``{"error": {...}}``), unless the command already wrote its result there: stdout never holds two.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from docchain.chain.values import utc_text


def when(timestamp: int | None) -> str:
    if not timestamp:
        return "-"
    return utc_text(int(timestamp))


def when_short(timestamp: int | None) -> str:
    """A timestamp in a table: to the minute, UTC (the header says so; --json has the exact value)."""
    return when(timestamp)[:16] if timestamp else "-"


def short(value: str | None, keep: int = 10) -> str:
    if not value:
        return "-"
    value = str(value)
    return value if len(value) <= 2 * keep + 2 else f"{value[: keep + 2]}…{value[-keep:]}"


def anchoring_text(mode: str | None, root: str | None, private: bool | None = False) -> str:
    """How a record went on chain, for a table: ``direct``, or ``merkle`` with its root in short form; ``private``
    when its hash is a salted commitment rather than the document's SHA-256."""
    if not mode:
        return "-"
    text = mode if root is None else f"{mode} {short(root, 4)}"
    return f"{text}, private" if private else text


_LONG_HEX = re.compile(r"0x[0-9a-fA-F]{32,}")


def _table(title: str | None, columns: Sequence[str], cells: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in cells:
        table.add_row(*row)
    return table


class Output:
    """One invocation's output. ``json_written`` says whether stdout holds the result already, so that an
    error after it does not add a second document."""

    def __init__(self, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self.json_written = False
        self.out = Console(soft_wrap=True, highlight=False)
        self.err = Console(stderr=True, soft_wrap=True, highlight=False)

    # Human-only lines are suppressed in --json mode, so stdout holds exactly one JSON document.
    def say(self, text: str) -> None:
        if not self.json_mode:
            self.out.print(text)

    def step(self, text: str) -> None:
        if not self.json_mode:
            self.out.print(f"[bold cyan]›[/] {text}")

    @contextmanager
    def waiting(self, description: str, total: int) -> Iterator[Callable[[], None]]:
        """A spinner with a done/total count on stderr while something is awaited (not in --json mode, and
        gone once done); yields the function that counts one item as done."""
        if self.json_mode:
            yield lambda: None
            return
        columns = (SpinnerColumn(), TextColumn("{task.description}"), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.err, transient=True) as progress:
            task = progress.add_task(description, total=total)
            yield lambda: progress.advance(task)

    def warn(self, text: str) -> None:
        self.err.print(f"[yellow]warning:[/] {escape(text)}")

    def emit(self, data: Any) -> None:
        """The command's result, for --json."""
        if self.json_mode:
            sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
            sys.stdout.flush()
            self.json_written = True

    def fail(self, message: str, error: dict[str, Any]) -> None:
        """An error: one line on stderr and, for --json, ``error`` on stdout (if stdout holds no result yet)."""
        self.error(message)
        if self.json_mode and not self.json_written:
            self.emit(error)

    def table(self, title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        if self.json_mode:
            return
        cells = [["-" if v is None else str(v) for v in row] for row in rows]
        table = _table(title, columns, cells)
        if self.out.measure(table, options=self.out.options.update(max_width=1 << 16)).maximum > self.out.width:
            # Folded, a 66-character hash fills a narrow column four or five lines deep; elided in the
            # middle it still tells rows apart (the full values: --json, or a wider terminal).
            table = _table(title, columns, [[short(c, 6) if _LONG_HEX.fullmatch(c) else c for c in r] for r in cells])
        self.out.print(table)

    def fields(self, title: str | None, pairs: Sequence[tuple[str, Any]]) -> None:
        if self.json_mode:
            return
        table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in pairs:
            table.add_row(key, "-" if value is None else str(value))
        self.out.print(table)

    def error(self, message: str) -> None:
        self.err.print(f"[red]error:[/] {escape(message)}", markup=True, highlight=False)
