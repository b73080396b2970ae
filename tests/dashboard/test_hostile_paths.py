"""Output paths: `mix export/materialize --out` never lands on a workspace, its database or
an existing folder by accident, whatever --overwrite says."""

from __future__ import annotations

import shutil
import sys

import pytest

from analytics.paths import OutputPathError, check_output_dir, check_output_path
from analytics.workspace import Workspace
from dashboard.cli import main
from tests.conftest import tree_digest
from tests.dashboard.conftest import assert_one_line_error, run_main


def fingerprint(path):
    return tree_digest(path)


@pytest.fixture(scope="module")
def mix_ws(demo_workspace, tmp_path_factory):
    """A private workspace copy with one saved mixture `m`."""
    import subprocess
    import sys

    dst = tmp_path_factory.mktemp("paths") / "ws"
    shutil.copytree(demo_workspace.path, dst)
    r = subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "mix", "create", "m", "--group-by", "source",
         "--budget", "20000", "--where-from-url", "src=licenses,austen", "--workspace", str(dst)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return Workspace(dst)


def forbidden_targets(ws_path, tmp):
    busy = tmp / "busy"
    busy.mkdir(exist_ok=True)
    (busy / "keep.txt").write_text("precious")
    afile = tmp / "a-file.txt"
    afile.write_text("precious")
    return {
        "the workspace": (ws_path, True),
        "the catalog": (ws_path / "catalog.sqlite", True),
        "the workspace file": (ws_path / "workspace.json", True),
        "inside the workspace": (ws_path / "sub", True),
        "the backups folder": (ws_path / "backups" / "x", True),
        "the exports folder itself": (ws_path / "exports", True),
        "a folder holding the workspace": (ws_path.parent, True),
        "an existing file": (afile, True),
        "a non-empty folder without --overwrite": (busy, False),
        "the workspace via a relative path": (ws_path / "exports" / ".." / "..", True),
    }


NAMES = [
    "the workspace", "the catalog", "the workspace file", "inside the workspace",
    "the backups folder",
    "the exports folder itself", "a folder holding the workspace", "an existing file",
    "a non-empty folder without --overwrite", "the workspace via a relative path",
]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("command", ["export", "materialize"])
def test_forbidden_out_is_refused_and_nothing_changes(
    mix_ws, tmp_path, name, command, monkeypatch, capsys
):
    target, overwrite = forbidden_targets(mix_ws.path, tmp_path)[name]
    before = fingerprint(mix_ws.path)
    outside = fingerprint(tmp_path)
    args = ["mix", command, "m", "--out", str(target), "--workspace", str(mix_ws.path)]
    if command == "export":
        args += ["--format", "all"]
    if overwrite:
        args.append("--overwrite")
    code, out, err = run_main(args, monkeypatch, capsys)
    assert_one_line_error(code, err, wanted=("--out",))
    assert fingerprint(mix_ws.path) == before
    assert fingerprint(tmp_path) == outside
    assert mix_ws.cursor().execute("SELECT count(*) FROM documents").fetchone()[0] > 10_000


def test_other_workspaces_are_recognised_too(mix_ws, tmp_path):
    other = tmp_path / "other-ws"
    other.mkdir()
    (other / ".write.lock").write_text("")
    for target in (other, other / "inner"):
        with pytest.raises(OutputPathError, match="workspace"):
            check_output_dir(target, overwrite=True)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    shutil.copyfile(mix_ws.db_path, deep / "mixscope.duckdb")
    with pytest.raises(OutputPathError, match="holds the mixscope workspace"):
        check_output_dir(tmp_path / "a", overwrite=True)


def test_manifest_file_may_not_replace_the_database(mix_ws, tmp_path):
    with pytest.raises(OutputPathError, match="inside the workspace"):
        check_output_path(mix_ws.db_path, workspaces=[mix_ws.path], kind="file")
    with pytest.raises(OutputPathError, match="a directory"):
        check_output_path(tmp_path, kind="file")
    assert check_output_path(tmp_path / "m.yaml", kind="file") == (tmp_path / "m.yaml").resolve()


def run_ok(argv, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["mixscope", *argv])
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    capsys.readouterr()


def test_allowed_targets_work_and_overwrite_swaps(mix_ws, tmp_path, monkeypatch, capsys):
    before = fingerprint(mix_ws.path)
    new = tmp_path / "new"
    args = ["mix", "export", "m", "--format", "json", "--workspace", str(mix_ws.path)]
    run_ok([*args, "--out", str(new)], monkeypatch, capsys)
    assert (new / "manifest.json").exists()
    (new / "stale.txt").write_text("old")
    run_ok([*args, "--out", str(new), "--overwrite"], monkeypatch, capsys)
    assert not (new / "stale.txt").exists() and (new / "manifest.json").exists()
    assert not list(tmp_path.glob(".new.*"))  # no temporary or old folder left beside it
    empty = tmp_path / "empty"
    empty.mkdir()
    run_ok([*args, "--out", str(empty)], monkeypatch, capsys)
    inside = mix_ws.path / "exports" / "ok"
    run_ok([*args, "--out", str(inside)], monkeypatch, capsys)
    assert (inside / "manifest.json").exists()
    shutil.rmtree(mix_ws.path / "exports")
    assert fingerprint(mix_ws.path) == before
