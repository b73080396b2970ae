"""Who saved each mixture version (`mixtures.saved_by`, workspace migration 7): the signed-in
dashboard user, the submitter of the job that saved it, or the OS user of a terminal save;
shown by `mix list`, `mix show` and the Mixtures page's saved list. Old workspaces read
without it (NULL) and gain the column at their first write."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys

from streamlit.testing.v1 import AppTest

from analytics.jobs import JOB_ENV, JobStore
from analytics.workspace import Workspace
from tests.conftest import ROOT
from tests.dashboard.conftest import AUTH, ROLES

ROOT = str(ROOT)
APP = os.path.join(ROOT, "dashboard", "app.py")
MIX = ["mix", "create", "cli-mix", "--group-by", "source", "--budget", "5000"]


def mixscope(*args, ws, env=None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "dashboard.cli", *args, "--workspace", str(ws)]
    env = dict(os.environ, PYTHONPATH=ROOT, COLUMNS="200", **(env or {}))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)


def saved_by(ws_path) -> dict[tuple[str, int], str | None]:
    """name@version -> saved_by, read with plain SQL."""
    rows = Workspace(ws_path).cursor().execute("SELECT name, version, saved_by FROM mixtures")
    return {(n, v): s for n, v, s in rows.fetchall()}


def _save_on_page(at: AppTest, name: str) -> None:
    at.switch_page("app_pages/mixtures.py").run()
    at.text_input(key="mx_save_name").input(name).run()
    at.button(key="mx_save").click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception or at.error]


def test_page_save_records_the_signed_in_user(demo_workspace_copy, tmp_path, monkeypatch):
    for var in ("MIXSCOPE_VIEWER_TOKEN", "MIXSCOPE_EDITOR_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    roles = tmp_path / "roles.toml"
    roles.write_text(ROLES)
    os.chmod(roles, 0o600)
    monkeypatch.setenv("MIXSCOPE_SECRETS_FILE", str(roles))
    monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(demo_workspace_copy.path))
    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "email": "alice@example.org", "name": "Alice"}
    at.query_params["src"] = "licenses"
    at.run()
    assert at.session_state["role"] == "editor"
    _save_on_page(at, "alice-mix")
    assert saved_by(demo_workspace_copy.path) == {("alice-mix", 1): "alice@example.org"}
    # a duplicate of the opened version (the page reopens it from its link) is saved by the
    # same user
    at.run()
    at.text_input(key="mx_dup_name").input("alice-copy").run()
    at.button(key="mx_dup").click().run()
    assert saved_by(demo_workspace_copy.path)[("alice-copy", 1)] == "alice@example.org"
    # the saved list shows who saved each version
    at.run()
    table = next(d.value for d in at.dataframe if "saved_by" in d.value.columns)
    assert dict(zip(table["name"], table["saved_by"], strict=True)) == {
        "alice-mix": "alice@example.org",
        "alice-copy": "alice@example.org",
    }


def test_token_sign_in_records_the_role(demo_workspace_copy, monkeypatch):
    monkeypatch.setenv("MIXSCOPE_VIEWER_TOKEN", "viewer-token-0123456789")
    monkeypatch.setenv("MIXSCOPE_EDITOR_TOKEN", "editor-token-9876543210")
    monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(demo_workspace_copy.path))
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["src"] = "licenses"
    at.run()
    at.text_input(key="login_token").input("editor-token-9876543210")
    at.button[0].click().run()
    _save_on_page(at, "token-mix")
    # a shared token names no person: the role is what is known
    assert saved_by(demo_workspace_copy.path) == {("token-mix", 1): "editor"}


def _old_workspace(path, monkeypatch) -> Workspace:
    """A workspace at schema version 6 (before saved_by), with one saved version."""
    import analytics.workspace as w

    with monkeypatch.context() as m:
        m.setattr(w, "MIGRATIONS", w.MIGRATIONS[:6])
        m.setattr(w, "LATEST_VERSION", 6)
        ws = Workspace(path)
        ws.initialise()
        with ws.write(job="old mixscope") as con:
            con.execute("INSERT INTO mixtures VALUES ('old-mix', 1, now(), 'from 0.6', '{}')")
            con.execute(
                "INSERT INTO documents (doc_id, source, n_tokens, n_bytes, n_chars) "
                "SELECT 'd' || i, 'web', 100, 400, 400 FROM range(20) t(i)"
            )
            con.execute(
                "INSERT INTO doc_rollup VALUES (0, 'web', NULL, NULL, NULL, 0, 20, 2000, 8000, "
                "8000)"
            )
    return Workspace(path)


def test_old_workspace_migrates_and_terminal_saves_record_the_os_user(tmp_path, monkeypatch):
    ws = _old_workspace(tmp_path / "ws", monkeypatch)
    cols = [r[0] for r in ws.cursor().execute("DESCRIBE mixtures").fetchall()]
    assert "saved_by" not in cols and ws.schema_version() == 6
    # reading needs no migration: saved_by is empty
    listed = mixscope("mix", "list", "--json", ws=ws.path)
    assert listed.returncode == 0, listed.stderr
    assert [(r["name"], r["saved_by"]) for r in json.loads(listed.stdout)] == [("old-mix", None)]
    assert Workspace(ws.path).schema_version() == 6

    r = mixscope(*MIX, ws=ws.path)  # the first write migrates
    assert r.returncode == 0, r.stderr
    again = Workspace(ws.path)
    assert again.schema_version() == 7
    os_user = pwd.getpwuid(os.getuid()).pw_name
    assert saved_by(ws.path) == {("old-mix", 1): None, ("cli-mix", 1): os_user}
    listed = mixscope("mix", "list", ws=ws.path)
    out = listed.stdout + listed.stderr
    header = next(line for line in out.splitlines() if "version" in line)
    row = next(line for line in out.splitlines() if "cli-mix" in line)
    assert "saved by" in header and f" {os_user} " in row
    shown = mixscope("mix", "show", "cli-mix", ws=ws.path)
    out = shown.stdout + shown.stderr
    assert "saved as cli-mix@1 on " in out and f" by {os_user}\n" in out
    with Workspace(ws.path).write(job="test") as con:  # give the old row a valid manifest
        con.execute(
            "UPDATE mixtures SET manifest = (SELECT manifest FROM mixtures WHERE name = "
            "'cli-mix') WHERE name = 'old-mix'"
        )
    shown = mixscope("mix", "show", "old-mix@1", ws=ws.path)
    assert "by unknown: from 0.6" in shown.stdout + shown.stderr


def test_a_job_saves_for_its_submitter(demo_workspace_copy):
    store = JobStore(demo_workspace_copy.path)
    job = store.submit("mix", MIX, submitted_by="carol@example.org")
    r = mixscope(*MIX, ws=demo_workspace_copy.path, env={JOB_ENV: str(store.root / job.id)})
    assert r.returncode == 0, r.stderr
    assert saved_by(demo_workspace_copy.path) == {("cli-mix", 1): "carol@example.org"}
