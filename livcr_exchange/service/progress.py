"""Progress of long operator commands: a live bar on a terminal, nothing otherwise.

It writes to standard error, so standard output stays the command's result (JSON lines, a
report) however it is redirected; written to a file, a pipe or a journal it stays silent.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class CommandProgress:
    """``with CommandProgress("verifying the log", total) as progress: progress.advance(n)``.

    ``total`` None shows a spinner and a count without a bar end.
    """

    def __init__(self, description: str, total: int | None, stream: TextIO | None = None) -> None:
        self.description = description
        self.total = total
        self.stream = sys.stderr if stream is None else stream
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> CommandProgress:
        if self.stream.isatty():
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total)
        return self

    def advance(self, count: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, count)

    def set_total(self, total: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total)

    def set(self, completed: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=completed)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
