"""SIGKILL a writer at a random point (3 kills here: an ingest, a
materialise and a migration; bench/bench_kill.py does 20 across every writer): the
workspace opens, its committed state is the state before or after the writer, nothing is
duplicated, and the next writer completes (see tests/killharness.py)."""

from __future__ import annotations

import json

import pytest

from tests.killharness import campaign, make_corpus, run, state


@pytest.mark.slow
def test_three_random_kills_leave_a_consistent_workspace(tmp_path):
    ws = tmp_path / "ws"
    seed = make_corpus(tmp_path / "seed.jsonl", 500, seed=99)
    assert run(ws, ["ingest", "--source", "seed", str(seed)]).returncode == 0
    assert state(ws)["documents"][0] == 500
    names = ("ingest", "materialise", "migrate")
    rep = campaign(ws, tmp_path, kills=3, seed=1, log=lambda _line: None, names=names)
    assert rep.problems == []
    assert rep.kills == rep.consistent == rep.reruns_ok == 3
    assert rep.by_writer == dict.fromkeys(names, 1)
    assert rep.landed_before + rep.landed_after == 3
    final = state(ws)
    assert final["<duplicate documents>"] == 0
    assert final["documents"][0] == 500 + 3000  # the killed ingest, completed by its re-run
    # the materialised mixture is complete: its files hold every row its summary counts
    out = tmp_path / "mat"
    summary = json.loads((out / "materialize.json").read_text())
    lines = sum(len(p.read_text().splitlines()) for p in out.rglob("*.jsonl"))
    assert lines == sum(g["rows"] for p in summary["phases"] for g in p["groups"]) > 0
    # the migrated 0.1 workspace holds all its documents, and the old file sits in backups/
    legacy = state(tmp_path / "legacy2")
    assert legacy["documents"][0] == 20_000 and legacy["<duplicate documents>"] == 0
    assert not (tmp_path / "legacy2" / "mixscope.duckdb").exists()
    assert len(list((tmp_path / "legacy2" / "backups").glob("*.duckdb"))) == 1
