"""Roles are checked on the server: a viewer's session never writes to the workspace or
touches another user's job; an editor's path list never turns into CLI options."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.errors import MixscopeError
from analytics.filters import DocFilter
from analytics.jobs import JobStore
from analytics.maps.filtering import keep_selection, selection_info, store_selection
from analytics.paths import check_input_paths
from tests.conftest import tree_digest
from tests.dashboard.conftest import APP, qp
from tests.workspaces.maps import copy_of, count, map_path

VIEWER = "viewer-token-0123456789"
EDITOR = "editor-token-9876543210"


def digest(path: Path) -> dict[str, str]:
    return tree_digest(path)


@pytest.fixture
def as_viewer(monkeypatch):
    monkeypatch.setenv("MIXSCOPE_VIEWER_TOKEN", VIEWER)
    monkeypatch.setenv("MIXSCOPE_EDITOR_TOKEN", EDITOR)

    def make(ws, page, role="viewer", **query):
        monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(ws.path))
        at = AppTest.from_file(APP, default_timeout=120)
        at.session_state["role"] = role
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return make


def test_viewer_cannot_cancel_an_editors_job(as_viewer, demo_workspace_copy):
    ws = demo_workspace_copy
    store = JobStore(ws.path)
    job = store.submit("ingest", ["ingest", "--", "/nonexistent.jsonl"], submitted_by="editor")
    at = as_viewer(ws, "jobs")
    assert not [b for b in at.button if b.key == "jobs_cancel"]
    assert store.get(job.id).status == "queued"
    at = as_viewer(ws, "jobs", role="editor")  # an editor sees and uses the button
    at.button(key="jobs_cancel").click().run()
    assert store.get(job.id).status == "cancelled"


def test_viewer_search_selection_stays_in_the_session(as_viewer, tmp_path_factory, tmp_path):
    ws = copy_of(map_path(tmp_path_factory), tmp_path / "ws")
    before = digest(ws.path)
    at = as_viewer(ws, "search", sq="python function object")
    at.button(key="search_use_results").click().run()
    assert not at.exception, [e.value for e in at.exception]
    c = qp(at, "c")
    assert c and c.startswith("selection.")
    assert digest(ws.path) == before  # nothing was published
    assert count(ws, DocFilter.from_params({"c": c})) == 10  # the kept results filter pages
    sid = c.split(".")[1]
    assert selection_info(ws.cursor(), sid)["origin"] == {"kept": True}


def test_kept_selection_matches_the_stored_one_without_writing(demo_workspace_copy):
    ws = demo_workspace_copy
    ids = [r[0] for r in ws.cursor().execute(
        "SELECT doc_id FROM documents ORDER BY doc_id LIMIT 25").fetchall()]  # fmt: skip
    before = digest(ws.path)
    kept = keep_selection(ids)
    assert digest(ws.path) == before
    stored = store_selection(ws, ids)
    assert kept.selection_id == stored.selection_id and kept.n_docs == stored.n_docs == 25


@pytest.mark.parametrize(
    "line", ["--workspace=/elsewhere", "-w", "--source=x", "relative/path.jsonl", "/no/such/file"]
)
def test_add_data_path_lines_are_checked(line):
    with pytest.raises(MixscopeError):
        check_input_paths([line])


def test_add_data_job_puts_paths_after_double_dash(demo_workspace_copy, jsonl_file, monkeypatch):
    ws = demo_workspace_copy
    monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(ws.path))
    monkeypatch.setattr("analytics.jobs.JobStore.ensure_worker", lambda self: None)
    queued = {j.id for j in JobStore(ws.path).list()}
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/add_data.py").run()
    at.text_input(key="add_source").input("web")
    at.text_area(key="add_paths").input(f"--workspace={ws.path.parent}\n{jsonl_file}")
    at.button(key="add_go").click().run()
    shown = at.error[0].value.replace("\\", "")  # shown as text: Markdown escaped
    assert "--workspace=" in shown and {j.id for j in JobStore(ws.path).list()} == queued
    at.text_area(key="add_paths").input(str(jsonl_file))
    at.button(key="add_go").click().run()
    (job,) = [j for j in JobStore(ws.path).list() if j.id not in queued]
    args = job.args
    assert args[args.index("--") + 1 :] == [str(jsonl_file)]
    assert args.index("--source") < args.index("--")
