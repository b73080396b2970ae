"""Rich progress bars for long CLI work, adapted to analytics' progress callbacks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from analytics.jobs import JobReporter

console = Console(stderr=True)


@contextlib.contextmanager
def progress_callback() -> Iterator:
    """Yields `callback(stage, done, total)` that drives one bar per stage."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, int] = {}
        job = JobReporter()  # writes the job's progress.json when run as a queued job

        def callback(stage: str, done: int, total: int) -> None:
            job(stage, done, total)
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        yield callback
