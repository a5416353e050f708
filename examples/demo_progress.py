"""Progress while the demo's processes start: a live bar on a terminal, nothing otherwise."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO

try:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
except ImportError:  # rich comes with the package; without it the demo starts silently
    Progress = None  # type: ignore[assignment,misc]


class StartupProgress:
    """``with StartupProgress(total, "starting") as progress: ... progress.done("hub serving")``.

    On a terminal it shows a bar with what is ready and the time so far; written to a file or
    a pipe it shows nothing, so a transcript stays as it was.
    """

    def __init__(self, total: int, title: str, stream: TextIO = sys.stdout) -> None:
        self.total = total
        self.title = title
        self.stream = stream
        self._progress: Progress | None = None
        self._task = None

    def __enter__(self) -> StartupProgress:
        if Progress is not None and self.stream.isatty():
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
            )
            self._progress.start()
            self._task = self._progress.add_task(self.title, total=self.total)
        return self

    def done(self, what: str) -> None:
        """One more step is done: ``what`` says which."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, description=f"{self.title}: {what}")

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
