"""SIGKILL a writer at a random point (2 kills here; bench/bench_kill.py does 20): the
workspace opens, its committed state is the state before or after the writer, nothing is
duplicated, and the next writer completes (see tests/killharness.py)."""

from __future__ import annotations

import pytest

from tests.killharness import campaign, make_corpus, run, state


@pytest.mark.slow
def test_two_random_kills_leave_a_consistent_workspace(tmp_path):
    ws = tmp_path / "ws"
    seed = make_corpus(tmp_path / "seed.jsonl", 500, seed=99)
    assert run(ws, ["ingest", "--source", "seed", str(seed)]).returncode == 0
    assert state(ws)["documents"][0] == 500
    # kill 1: an ingest; kill 2: a signals run (the campaign cycles ingest, signals, mix)
    rep = campaign(ws, tmp_path, kills=2, seed=1, log=lambda _line: None)
    assert rep.problems == []
    assert rep.kills == rep.consistent == rep.reruns_ok == 2
    assert rep.landed_before + rep.landed_after == 2
    final = state(ws)
    assert final["<duplicate documents>"] == 0
    assert final["documents"][0] == 500 + 3000  # the killed ingest, completed by its re-run
    assert final["signal_gopher_quality"][0] == final["documents"][0]
