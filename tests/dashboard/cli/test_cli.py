"""The CLI end to end, as a user runs it (subprocesses)."""

from __future__ import annotations

import json

from tests.conftest import mixscope


def test_help_lists_every_command():
    out = mixscope("--help").stdout
    for name in ("ingest", "info", "sql", "serve", "demo", "jobs", "worker"):
        assert name in out


def test_ingest_info_sql(tmp_path, jsonl_file):
    ws = tmp_path / "ws"
    r = mixscope("ingest", str(jsonl_file), "--source", "web", ws=ws)
    assert r.returncode == 0, r.stderr
    assert "4 new documents" in r.stderr.replace("\n", " ")
    info = json.loads(mixscope("info", "--json", ws=ws).stdout)
    assert info["totals"]["documents"] == "4" and info["sources"][0]["source"] == "web"
    r = mixscope("sql", "SELECT count(*) AS n FROM documents", "--format", "json", ws=ws)
    assert json.loads(r.stdout) == [{"n": 4}]
    r = mixscope("sql", "DELETE FROM documents", ws=ws)
    assert r.returncode == 2 and "type DELETE" in r.stderr
    assert json.loads(mixscope("info", "--json", ws=ws).stdout)["totals"]["documents"] == "4"


def test_bad_input_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": \n')
    r = mixscope("ingest", str(bad), "--source", "x", ws=tmp_path / "ws")
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error:") and "bad.jsonl: line 2" in r.stderr
    assert "Traceback" not in r.stderr


def test_info_on_missing_workspace(tmp_path):
    r = mixscope("info", ws=tmp_path / "nothing")
    assert r.returncode == 2 and "no mixscope workspace here" in r.stderr


def test_demo_build_only(tmp_path):
    r = mixscope("demo", "--build-only", "--workspace", str(tmp_path / "demo"))
    assert r.returncode == 0, r.stderr
    info = json.loads(mixscope("info", "--json", ws=tmp_path / "demo").stdout)
    assert int(info["totals"]["documents"]) > 10_000


def test_progress_is_printed_as_lines_while_it_happens_when_not_a_terminal(monkeypatch):
    import io

    from rich.console import Console

    from dashboard.cli import progress as prog

    buf = io.StringIO()
    out = Console(file=buf, force_terminal=False, width=200)
    clock = [0.0]
    monkeypatch.setattr(prog.time, "monotonic", lambda: clock[0])
    seen = []
    with prog.progress_callback(out=out) as cb:
        for done in range(0, 101):
            clock[0] += 0.01
            cb("scan", done, 100)
            seen.append(buf.getvalue().count("\n"))
        clock[0] += 30.0  # a slow stretch: a line at least every 10 s while it moves
        cb("write", 1, 1000)
        clock[0] += 11.0
        cb("write", 2, 1000)
    lines = buf.getvalue().splitlines()
    # lines appear during the work (not all at the end): one at the start, every 10%
    assert seen[0] == 1 and seen[50] >= 5 and seen[50] < seen[-1]
    assert lines[0].startswith("scan: 0/100 (0%)")
    assert "scan: 100/100 (100%)" in lines[len([x for x in lines if x.startswith("scan")]) - 1]
    assert len([x for x in lines if x.startswith("scan")]) == 11  # 0%, 10%, 20%, ..., 100%
    assert [x.split(" ")[1] for x in lines if x.startswith("write")] == ["0/1,000", "2/1,000"]
    assert "\x1b" not in buf.getvalue()  # plain text, no terminal control codes


def test_cli_progress_lines_reach_a_pipe(tmp_path, jsonl_file):
    r = mixscope("ingest", str(jsonl_file), "--source", "web", ws=tmp_path / "ws")
    assert r.returncode == 0, r.stderr
    assert any(line.endswith("s") and "/" in line and "(100%)" in line
               for line in r.stderr.splitlines()), r.stderr  # fmt: skip
