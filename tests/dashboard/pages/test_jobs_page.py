"""Jobs page: an engine job's row shows shards done/total, docs/s and its ETA."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from analytics.jobs import JobReporter, JobStore
from tests.dashboard.conftest import APP


def test_engine_job_row_shows_shards_rate_and_eta(demo_workspace_copy, monkeypatch):
    ws = demo_workspace_copy
    monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(ws.path))
    store = JobStore(ws.path)
    engine_job = store.record_cli(["contamination", "eval.jsonl"])
    JobReporter(str(store.root / engine_job.id), min_interval_s=0.0)(
        "contamination: shards 3/10, documents 600/2,000, 120 docs/s, ETA 11s", 600, 2000,
        unit="documents", shards_done=3, shards_total=10, docs_per_s=120.0, eta_s=11.7,
    )  # fmt: skip
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/jobs.py").run()
    assert not at.exception
    df = at.dataframe[0].value
    row = df[df["id"] == engine_job.id].iloc[0]
    assert (row["shards"], row["docs/s"], row["ETA"]) == ("3/10", "120", "11s")
    assert row["progress"] == 0.3 and row["stage"].startswith("contamination: shards 3/10")
