"""`mixscope signals import|classify|throughput` as a user runs them, and the Signals page's
import / classify jobs and throughput table (AppTest)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from streamlit.testing.v1 import AppTest

from analytics.jobs import JobStore
from tests import tiny_classifiers as tc
from tests.conftest import fingerprint
from tests.dashboard.conftest import APP
from tests.workspaces.signals import copy_of, small_unscored_path


def mixscope(*args, ws):
    cmd = [sys.executable, "-m", "dashboard.cli", *map(str, args), "--workspace", str(ws.path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def one_error(r) -> bool:
    """The failure is one `error:` line (progress lines may precede it)."""
    return sum(line.startswith("error:") for line in r.stderr.splitlines()) == 1


@pytest.fixture
def ws(tmp_path_factory, tmp_path):
    return copy_of(small_unscored_path(tmp_path_factory), tmp_path / "ws")


def ids_of(ws, n=None):
    sql = "SELECT doc_id FROM documents ORDER BY doc_id" + (f" LIMIT {n}" if n else "")
    return [r[0] for r in ws.cursor().execute(sql).fetchall()]


def dolma_file(path, ids, extra=()):
    lines = [json.dumps({"id": d, "attributes": {"t__q__score": [[0, 9, i / 4]]}}) for i, d in
             enumerate(ids)]  # fmt: skip
    lines += [json.dumps({"id": e, "attributes": {"t__q__score": [[0, 9, 1.0]]}}) for e in extra]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_import_partial_then_strict_and_errors(ws, tmp_path):
    ids = ids_of(ws, 10)
    path = dolma_file(tmp_path / "a.jsonl", ids, extra=["ghost-1", "ghost-2"])
    before = fingerprint(ws)
    r = mixscope("signals", "import", path, "--format", "dolma-attributes", "--name", "q",
                 "--strict", ws=ws)  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "only 10 of 12 keys match" in r.stderr and one_error(r)
    assert fingerprint(ws) == before
    r = mixscope("signals", "import", path, "--format", "dolma-attributes", "--name", "q", ws=ws)
    assert r.returncode == 0, r.stderr
    assert "2 of 12 keys match no document" in r.stderr
    got = dict(ws.cursor().execute("SELECT doc_id, q_score FROM signal_q").fetchall())
    assert got == {d: i / 4 for i, d in enumerate(ids)}
    # a clashing name, and no key matching: one line, exit 2, nothing committed
    before = fingerprint(ws)
    for args, msg in [
        (["--name", "q"], "clashes with the existing imported signal 'q'"),
        (["--name", "compression"], "clashes with the built-in signal"),
    ]:
        r = mixscope("signals", "import", path, "--format", "dolma-attributes", *args, ws=ws)
        assert r.returncode == 2 and msg in r.stderr, r.stderr
        assert one_error(r)
    none = dolma_file(tmp_path / "none.jsonl", [], extra=["ghost"])
    r = mixscope("signals", "import", none, "--format", "dolma-attributes", "--name", "z", ws=ws)
    assert r.returncode == 2 and "none of its 1 keys" in r.stderr
    assert fingerprint(ws) == before
    r = mixscope("signals", "throughput", "--json", ws=ws)
    rows = {row["signal"]: row for row in json.loads(r.stdout)}
    assert rows["q"]["docs"] == 10 and rows["q"]["device"] == "import"


def test_cli_classify_and_not_a_classifier(ws, tmp_path):
    plain = tc.not_a_classifier(tmp_path / "plain")
    before = fingerprint(ws)
    r = mixscope("signals", "classify", "--model", plain, "--name", "edu", ws=ws)
    assert r.returncode == 2 and "not a sequence classifier" in r.stderr, r.stderr
    assert one_error(r)
    assert fingerprint(ws) == before
    ft = tc.train_fasttext(tmp_path / "ft.bin")
    r = mixscope("signals", "classify", "--model", ft, "--name", "topic", ws=ws)
    assert r.returncode == 0, r.stderr
    n = len(ids_of(ws))
    assert ws.cursor().execute("SELECT count(*) FROM signal_topic").fetchone()[0] == n
    r = mixscope("signals", "list", "--json", ws=ws)
    listed = {row["name"]: row for row in json.loads(r.stdout)}
    assert listed["topic"]["n_docs"] == n and listed["topic"]["version"].startswith("classify.")


@pytest.fixture
def open_app(monkeypatch):
    def make(ws, page: str) -> AppTest:
        monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(ws.path))
        at = AppTest.from_file(APP, default_timeout=120)
        at.run()
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return make


def wait(store, job_id):
    for _ in range(900):
        job = store.get(job_id)
        if job.status in ("done", "failed"):
            return job
        time.sleep(0.2)
    return job


def table(at, *columns):
    for el in at.dataframe:
        value = getattr(el.value, "data", el.value)
        if all(c in value.columns for c in columns):
            return value
    raise AssertionError(f"no table with columns {columns}")


@pytest.mark.slow
def test_signals_page_import_and_classify_jobs_and_throughput(open_app, ws, tmp_path):
    ids = ids_of(ws, 8)
    path = dolma_file(tmp_path / "scores.jsonl", ids)
    at = open_app(ws, "signals")
    at.text_input(key="sg_imp_path").input(str(path)).run()
    at.selectbox(key="sg_imp_format").set_value("dolma-attributes").run()
    at.text_input(key="sg_imp_name").input("ext").run()
    assert any(c.value == f"mixscope signals import {path} --format dolma-attributes --name ext"
               for c in at.code)  # fmt: skip
    at.button(key="sg_imp_go").click().run()
    assert not at.exception and any("Queued job" in s.value for s in at.success)
    store = JobStore(ws.path)
    job = wait(store, store.list()[0].id)
    assert job.status == "done", store.log(job.id)

    ft = tc.train_fasttext(tmp_path / "ft.bin")
    at.text_input(key="sg_clf_model").input(str(ft)).run()
    at.text_input(key="sg_clf_name").input("topic").run()
    at.button(key="sg_clf_go").click().run()
    job = wait(store, store.list()[0].id)
    assert job.status == "done", store.log(job.id)

    at.run()
    assert not at.exception, [e.value for e in at.exception]
    cov = table(at, "current", "coverage").set_index("name")
    n = len(ids_of(ws))
    assert cov.loc["ext", "n_docs"] == 8 and cov.loc["topic", "n_docs"] == n
    tp = table(at, "docs_per_s", "hours_100m").set_index("signal")
    row = (
        ws.cursor()
        .execute(
            "SELECT docs, seconds FROM signals_throughput WHERE name = 'topic' "
            "ORDER BY measured_at DESC LIMIT 1"
        )
        .fetchone()
    )
    assert tp.loc["topic", "docs_per_s"] == pytest.approx(row[0] / row[1])
    assert tp.loc["topic", "hours_100m"] == pytest.approx(1e8 / (row[0] / row[1]) / 3600)
    assert tp.loc["topic", "hours_workspace"] == pytest.approx(n / (row[0] / row[1]) / 3600)


def test_explore_condition_on_an_imported_signal_in_a_fresh_process(open_app, ws, tmp_path):
    """The link carries a condition on an imported column; the server process has never
    seen the signal (registry cleared), yet Explore counts exactly the matching documents."""
    from analytics.signals.registry import SIGNALS

    ids = ids_of(ws, 12)
    path = dolma_file(tmp_path / "s.jsonl", ids)
    r = mixscope("signals", "import", path, "--format", "dolma-attributes", "--name", "q", ws=ws)
    assert r.returncode == 0, r.stderr
    SIGNALS.unregister("q")
    at = open_app(ws, "overview")
    at.query_params["c"] = "signal.q.q_score.ge.1.5"
    at.switch_page("app_pages/explore.py").run()
    assert not at.exception, [e.value for e in at.exception]
    want = sum(i / 4 >= 1.5 for i in range(12))  # the scores written: i / 4
    docs = next(m.value for m in at.metric if m.label == "Documents")
    assert docs == f"{want:,}"
