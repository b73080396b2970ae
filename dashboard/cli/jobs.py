"""Job queue commands: worker, jobs list/show/cancel."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from analytics.jobs import JobStore
from analytics.workspace import Workspace
from dashboard.cli import app
from dashboard.cli.core import WorkspaceOpt
from dashboard.cli.progress import console

jobs_app = typer.Typer(help="List, inspect and cancel queued jobs.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


def _store(workspace) -> JobStore:
    return JobStore(Workspace.open(workspace).path)


@app.command()
def worker(
    workspace: WorkspaceOpt = None,
    forever: Annotated[
        bool, typer.Option(help="Keep polling instead of exiting when idle.")
    ] = False,
) -> None:
    """Run the workspace's queued jobs one at a time (the dashboard starts one as needed)."""
    n = _store(workspace).work(exit_when_idle=not forever)
    console.print(f"worker ran {n} job(s)")


@jobs_app.command("list")
def list_jobs(workspace: WorkspaceOpt = None) -> None:
    """Queued, running, finished and failed jobs, newest first."""
    table = Table("id", "status", "command", "progress", "error")
    for j in _store(workspace).list():
        p = j.progress
        prog = f"{p.get('stage', '')} {p.get('done', 0)}/{p.get('total') or '?'}" if p else ""
        table.add_row(j.id, j.status, j.command, prog, j.error or "")
    console.print(table)


@jobs_app.command("show")
def show_job(job_id: str, workspace: WorkspaceOpt = None) -> None:
    """One job's record and log."""
    store = _store(workspace)
    job = store.refresh(store.get(job_id))
    console.print(job)
    typer.echo(store.log(job_id))


@jobs_app.command("cancel")
def cancel_job(job_id: str, workspace: WorkspaceOpt = None) -> None:
    """Cancel a queued or running job (a running job's write is rolled back)."""
    job = _store(workspace).cancel(job_id)
    console.print(f"{job.id}: {job.status}")
