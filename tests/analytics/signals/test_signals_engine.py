"""Signals on the shard engine give exactly the in-process runner's results."""

from __future__ import annotations

import shutil

import pytest

from analytics.engine import done_shards
from analytics.signals import run_signals
from analytics.signals.engine_run import SignalsTask, run_signals_engine
from analytics.signals.registry import resolve_signals
from analytics.workspace import Workspace

NAMES = ["compression", "url_domain", "gopher_quality", "exact_dup", "near_dup"]


def _tables(ws: Workspace, names=NAMES) -> dict[str, list[tuple]]:
    cur = ws.cursor()
    out = {}
    for sig in resolve_signals(names):
        rows = cur.execute(
            f"SELECT * FROM {sig.table} WHERE version = ? ORDER BY doc_id", [sig.version]
        ).fetchall()
        assert len(rows) == len({r[0] for r in rows}), f"{sig.name}: a document twice"
        out[sig.name] = rows
    return out


@pytest.fixture
def reference(small_ws, tmp_path):  # noqa: F811
    """The same workspace scored by the in-process runner (analytics.signals.runner)."""
    ref = tmp_path / "ref"
    shutil.copytree(small_ws.path, ref)
    ws = Workspace(ref)
    with ws.write(job="reference") as con:
        run_signals(con, NAMES, batch_size=64)
    return _tables(ws)


def test_local_engine_equals_the_runner_and_resumes(small_ws, reference):  # noqa: F811
    # a first run of one signal, then all of them: documents that miss only some signals
    # get exactly the missing rows
    _, first = run_signals_engine(small_ws, ["compression"], workers=2, shard_size=40)
    assert (first.shards, first.docs) == (3, 90)
    res, rep = run_signals_engine(small_ws, NAMES, workers=2, shard_size=25)
    assert (rep.shards, rep.docs, rep.skipped_docs) == (4, 90, 0)
    assert res.set_index("name")["n_docs"].to_dict() == dict.fromkeys(NAMES, 90)
    got = _tables(small_ws)
    assert got == reference
    assert len(got["exact_dup"]) == 90 and got["compression"][0][2] > 0
    task = SignalsTask(resolve_signals(NAMES))
    assert done_shards(small_ws.cursor(), task.key) == 4
    _, again = run_signals_engine(small_ws, NAMES, workers=1, shard_size=25)
    assert (again.docs, again.skipped_docs) == (0, 90)
    assert _tables(small_ws) == reference


@pytest.mark.slow
def test_ray_engine_equals_the_runner(small_ws, reference, ray_cluster):  # noqa: F811
    import ray

    try:
        _, rep = run_signals_engine(
            small_ws, NAMES, engine="ray", ray_address=ray_cluster, shard_size=30
        )
    finally:
        ray.shutdown()
    assert rep.engine == "ray" and rep.docs == 90
    assert _tables(small_ws) == reference
