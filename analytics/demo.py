"""What the demo ships besides its corpus, so every page has something on first visit: a
concept list (Concepts) and an evaluation set with 16 passages copied from the demo corpus
and 10 written for it (Contamination, scanned once as a queued job)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONCEPTS = ROOT / "data" / "demo_concepts.txt"
DEMO_EVAL = ROOT / "data" / "demo_eval.jsonl"
REPORT_NAME = "demo-eval-n13.json"


def demo_concepts() -> list[str]:
    """The shipped concept list (empty when the checkout lacks it)."""
    from analytics.signals.concepts import read_concepts

    return read_concepts(DEMO_CONCEPTS) if DEMO_CONCEPTS.exists() else []


def queue_demo_contamination(ws, *, start_worker: bool = True) -> str | None:
    """Queue one contamination scan of the shipped evaluation set (unless its report exists
    or such a job is pending); returns the job id or None."""
    from analytics.jobs import JobStore

    report = ws.path / "contamination" / REPORT_NAME
    if report.exists() or not DEMO_EVAL.exists():
        return None
    store = JobStore(ws.path)
    for job in store.list():
        if job.kind == "contamination" and job.status in ("queued", "running"):
            if str(report) in job.args:
                return job.id
    report.parent.mkdir(parents=True, exist_ok=True)
    job = store.submit(
        "contamination",
        ["contamination", str(DEMO_EVAL), "--text-field", "text", "--n", "13",
         "--report", str(report)],
        submitted_by="mixscope demo",
    )  # fmt: skip
    if start_worker:
        store.ensure_worker()
    return job.id


def is_demo_workspace(cur) -> bool:
    """True when the workspace was built from the shipped demo corpus."""
    rows = cur.execute(
        "SELECT count(*) FROM ingest_files WHERE uri LIKE '%/demo_corpus.parquet'"
    ).fetchall()
    return bool(rows[0][0])
