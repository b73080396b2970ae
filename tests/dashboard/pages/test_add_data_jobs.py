"""Add data + Jobs pages: an ingest started from the browser runs as a queued job."""

from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

from analytics.db import scalar
from analytics.jobs import JobStore
from tests.dashboard.conftest import APP


def test_ingest_job_from_the_page_then_listed_on_jobs(demo_workspace_copy, jsonl_file, monkeypatch):
    ws = demo_workspace_copy
    monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(ws.path))
    n0 = scalar(ws.cursor(), "SELECT count(*) FROM documents")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/add_data.py").run()
    at.button(key="add_go").click().run()
    assert "give a source name" in at.error[0].value  # bad input: clear message, no job
    at.text_input(key="add_source").input("uploaded-web")
    at.text_area(key="add_paths").input(str(jsonl_file))
    at.button(key="add_go").click().run()
    assert not at.exception and "Queued job" in at.success[0].value
    store = JobStore(ws.path)
    for _ in range(600):
        job = store.list()[0]
        if job.status in ("done", "failed"):
            break
        time.sleep(0.2)
    assert job.status == "done", store.log(job.id)
    assert scalar(ws.cursor(), "SELECT count(*) FROM documents") == n0 + 4
    at.switch_page("app_pages/jobs.py").run()
    assert not at.exception
    assert at.dataframe[0].value["status"].tolist()[0] == "done"
    assert "ingested 4 new documents" in " ".join(c.value for c in at.code)
