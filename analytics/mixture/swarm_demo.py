"""The demo's precomputed proxy swarm: a small swarm (16 proxies of 150 steps) on the demo
corpus with held-out python-doc bits per byte as the target, made on first run by the same
code as ``mixscope mix swarm`` (a queued job), so the Mixtures page's fit and proposal views
are populated. The job also fits the regressors and saves the proposal as mixture
``demo-python-doc``."""

from __future__ import annotations

from typing import Any

DEMO_SWARM = "demo-python-doc"
DEMO_SWARM_ARGS = [
    "mix",
    "swarm",
    DEMO_SWARM,
    "--group-by",
    "source",
    "--proxies",
    "16",
    "--steps",
    "150",
    "--eval",
    "python-doc",
    "--heldout-per-group",
    "16",
    "--eval-chars",
    "1000",
    "--workers",
    "2",
    "--seed",
    "0",
]


def demo_swarm_done(cur: Any) -> bool:
    from .swarm import has_swarms

    if not has_swarms(cur):
        return False
    return bool(cur.execute("SELECT 1 FROM proxy_swarms WHERE name = ?", [DEMO_SWARM]).fetchone())


def queue_demo_swarm(ws: Any, *, start_worker: bool = True) -> str | None:
    """Queue the demo swarm job unless it is stored or already queued/running; returns the
    job id (new or pending) or None when there is nothing to do."""
    from analytics.jobs import JobStore

    if demo_swarm_done(ws.cursor()):
        return None
    store = JobStore(ws.path)
    for job in store.list():
        if job.args[:3] == DEMO_SWARM_ARGS[:3] and job.status in ("queued", "running"):
            return job.id
    job = store.submit("mix-swarm", list(DEMO_SWARM_ARGS), submitted_by="mixscope demo")
    if start_worker:
        store.ensure_worker()
    return job.id
