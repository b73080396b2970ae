"""Hostile CLI use: every usage error and user mistake is one line on stderr, exit 2.

The walk below finds every registered command of the typer app, so a command added later is
covered without editing this file.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer

from dashboard.cli import app
from tests.dashboard.conftest import assert_one_line_error, run_main


def _leaves(cmd, path=()):
    subs = getattr(cmd, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from _leaves(sub, (*path, name))
    else:
        yield path, cmd


COMMANDS = list(_leaves(typer.main.get_command(app)))


def test_the_walk_finds_the_commands():
    names = {" ".join(p) for p, _ in COMMANDS}
    assert {
        "ingest",
        "info",
        "sql",
        "serve",
        "mix export",
        "mix materialize",
        "jobs cancel",
    } <= names
    assert len(names) >= 20


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=" ".join)
def test_unknown_option_on_every_command(path, monkeypatch, capsys):
    code, out, err = run_main([*path, "--no-such-option-xyz"], monkeypatch, capsys)
    assert_one_line_error(code, err, wanted=("--no-such-option-xyz", f"mixscope {' '.join(path)}"))


def _required_arguments(cmd):
    return [p for p in cmd.params if p.param_type_name == "argument" and p.required]


@pytest.mark.parametrize("path", [p for p, c in COMMANDS if _required_arguments(c)], ids=" ".join)
def test_missing_argument_on_every_command_that_takes_one(path, monkeypatch, capsys):
    code, out, err = run_main(list(path), monkeypatch, capsys)
    assert_one_line_error(code, err, wanted=("Missing",))


def _numeric_options(cmd):
    out = []
    for p in cmd.params:
        ann = getattr(getattr(p, "type_descriptor", None), "annotation", None)
        if ann is None:  # plain click
            ann = {"integer": int, "float": float}.get(getattr(p.type, "name", ""))
        if p.param_type_name == "option" and ann in (int, float):
            out.append(p.opts[0])
    return out


NUMERIC = [(p, opt) for p, c in COMMANDS for opt in _numeric_options(c)[:1]]


@pytest.mark.parametrize("path, opt", NUMERIC, ids=[f"{' '.join(p)} {o}" for p, o in NUMERIC])
def test_bad_number_on_every_command_that_takes_one(path, opt, monkeypatch, capsys):
    code, out, err = run_main([*path, opt, "not-a-number"], monkeypatch, capsys)
    assert_one_line_error(code, err, wanted=(opt,))


def test_option_missing_its_value(monkeypatch, capsys):
    code, out, err = run_main(["info", "--workspace"], monkeypatch, capsys)
    assert_one_line_error(code, err, wanted=("--workspace",))


def mixscope(*args):
    return subprocess.run(
        [sys.executable, "-m", "dashboard.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_usage_error_in_a_real_process_has_no_traceback():
    r = mixscope("mix", "export", "--bogus")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "--bogus" in r.stderr


@pytest.mark.parametrize(
    "sql, wanted",
    [
        ("SELEC 1", "does not parse"),
        ("SELECT nope FROM documents", "nope"),  # BinderError
        ("SELECT * FROM no_such_table", "no_such_table"),  # CatalogException
        ("SELECT CAST('x' AS INTEGER)", "Conversion"),
        ("SELECT path FROM duckdb_databases()", "duckdb_databases"),
    ],
)
def test_sql_mistakes_are_one_line(demo_workspace, sql, wanted, monkeypatch, capsys):
    code, out, err = run_main(
        ["sql", sql, "--workspace", str(demo_workspace.path)], monkeypatch, capsys
    )
    assert_one_line_error(code, err, wanted=(wanted,))


def test_sql_typo_in_a_real_process(demo_workspace):
    r = mixscope("sql", "SELECT nope FROM documents", "--workspace", str(demo_workspace.path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "nope" in r.stderr


def test_truncated_database_is_one_line(tmp_path, demo_workspace):
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(demo_workspace.path, ws)
    catalog = ws / "catalog.sqlite"
    for extra in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (ws / extra).unlink(missing_ok=True)
    with open(catalog, "r+b") as fh:
        fh.truncate(catalog.stat().st_size // 3)
    for args in (("info",), ("sql", "SELECT 1")):
        r = mixscope(*args, "--workspace", str(ws))
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


HOSTILE_SOURCE = "[bold red]src[/] :smile: [link=https://evil.example]x[/link]"
HOSTILE_TITLE = "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\ \x1b[31mred\x07"


@pytest.fixture(scope="module")
def hostile_ws(tmp_path_factory):
    from analytics.ingest import ingest
    from analytics.workspace import Workspace

    d = tmp_path_factory.mktemp("hostile_cli")
    src = d / "h.jsonl"
    src.write_text(
        json.dumps({"id": "d1", "text": "some text here", "title": HOSTILE_TITLE}) + "\n"
    )
    ws = Workspace(d / "ws")
    ingest(ws, [str(src)], source=HOSTILE_SOURCE, title_field="title")
    return ws


def test_info_prints_markup_literally(hostile_ws):
    r = subprocess.run(
        [sys.executable, "-m", "dashboard.cli", "info", "--workspace", str(hostile_ws.path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "COLUMNS": "200", "FORCE_COLOR": "1"},
    )
    assert r.returncode == 0, r.stderr
    shown = r.stdout + r.stderr  # the console writes to stderr
    assert "[bold red]src[/]" in shown and ":smile:" in shown and "😄" not in shown
    assert "[link=https://evil.example]" in shown
    assert "\x1b]8;;" not in shown  # no hyperlink escape made from the markup


def test_sql_table_strips_terminal_escapes(hostile_ws):
    r = subprocess.run(
        [
            sys.executable, "-m", "dashboard.cli", "sql",
            "SELECT source, title FROM documents", "--workspace", str(hostile_ws.path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "COLUMNS": "300"},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    shown = r.stdout + r.stderr
    assert "\x1b" not in shown and "\x07" not in shown
    assert "[bold red]src[/]" in shown and "click" in shown
