"""Progress for long CLI work, adapted to analytics' progress callbacks: rich bars on a
terminal; plain progress lines when the output is not a terminal (a log file, a pipe, a
queued job), where a live bar would only be drawn once, at the end."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

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


class LineProgress:
    """The part of rich's ``Progress`` the CLI uses (``add_task``, ``update``, a context
    manager), printing one plain line per task when it starts, every ``step`` of its total
    (default 10%), at least every ``every_s`` seconds while it moves, and when it completes."""

    def __init__(
        self,
        *,
        console: Console,
        step: float = 0.1,
        every_s: float = 10.0,
        rate_unit: str | None = None,
    ) -> None:
        self.console = console
        self.rate_unit = rate_unit
        self.step = step
        self.every_s = every_s
        self.tasks: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        tid = len(self.tasks)
        now = time.monotonic()
        self.tasks[tid] = {"description": description, "total": total, "completed": 0,
                           "started": now, "printed_at": now, "printed_frac": 0.0}  # fmt: skip
        self._line(tid)
        return tid

    def update(
        self,
        task_id: int,
        *,
        completed: float | None = None,
        total: float | None = None,
        description: str | None = None,
        **_: Any,
    ) -> None:
        t = self.tasks[task_id]
        if total is not None:
            t["total"] = total
        if description is not None:
            t["description"] = description
        if completed is None or completed == t["completed"]:
            return
        t["completed"] = completed
        now = time.monotonic()
        frac = completed / t["total"] if t["total"] else 0.0
        done = bool(t["total"]) and completed >= t["total"]
        moved = frac - t["printed_frac"] >= self.step - 1e-9
        if done or moved or now - t["printed_at"] >= self.every_s:
            t["printed_at"], t["printed_frac"] = now, frac
            self._line(task_id)

    def _line(self, task_id: int) -> None:
        t = self.tasks[task_id]
        total, done = t["total"], t["completed"]
        elapsed = time.monotonic() - t["started"]
        pct = math.floor(100 * done / total) if total else 0  # 100% only when complete
        count = f"{int(done):,}/{int(total):,} ({pct}%)" if total else f"{int(done):,}"
        rate = ""
        if self.rate_unit and done and elapsed > 0:
            rate = f" {done / elapsed:,.1f} {self.rate_unit}/s"
        self.console.print(
            f"{t['description']}: {count} {elapsed:.1f}s{rate}", markup=False, highlight=False
        )


def make_progress(
    *columns: Any, out: Console | None = None, rate_unit: str | None = None
) -> Progress | LineProgress:
    """A rich Progress with ``columns`` on a terminal, else a :class:`LineProgress` (whose
    lines show the rate in ``rate_unit``/s when given)."""
    out = out or console
    if not out.is_terminal:
        return LineProgress(console=out, rate_unit=rate_unit)
    return Progress(*columns, console=out, transient=False)


@contextlib.contextmanager
def progress_callback(out: Console | None = None) -> Iterator:
    """Yields `callback(stage, done, total)` that drives one bar (or line series) per stage."""
    with make_progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        out=out,
    ) as bar:
        tasks: dict[str, int] = {}
        job = JobReporter()  # writes the job's progress.json when run as a queued job

        def callback(stage: str, done: int, total: int) -> None:
            job(stage, done, total)
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        yield callback
