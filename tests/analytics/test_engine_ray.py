"""Every per-document job on the shared two-node Ray cluster (`ray_cluster`, tests/conftest.py)
gives exactly the local engine's results: tokenize, a signal, contamination, materialise."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest

from analytics.workspace import Workspace
from tests.analytics.conftest import file_hashes
from tests.analytics.conftest import stored_counts as _stored  # noqa: F401
from tests.conftest import DEMO

pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture
def on_ray(ray_cluster):
    """The cluster's address; the driver disconnects after the test."""
    import ray

    try:
        yield ray_cluster
    finally:
        ray.shutdown()


def _nodes_used(ws: Workspace, job_key: str) -> set[str]:
    rows = ws.cursor().execute(
        "SELECT DISTINCT engine, worker FROM engine_shards WHERE job_key = ?", [job_key]
    )
    return {r[1] for r in rows.fetchall() if r[0] == "ray"}


def test_tokenize(small_ws, smol, on_ray):  # noqa: F811
    from analytics.tokenize import tokenize

    local = tokenize(small_ws, smol.source, name="local", counter=smol, shard_size=30)
    rep = tokenize(
        small_ws, smol.source, name="onray", counter=smol, engine="ray", ray_address=on_ray,
        shard_size=30,
    )  # fmt: skip
    assert rep.engine == "ray" and rep.docs == local.docs == 90 and rep.shards == 3
    assert _stored(small_ws, "onray") == _stored(small_ws, "local")
    assert _nodes_used(small_ws, "tokenize:onray")


def test_a_signal(small_ws, tmp_path, on_ray):  # noqa: F811
    from analytics.signals.engine_run import run_signals_engine
    from analytics.signals.registry import resolve_signals

    shutil.copytree(small_ws.path, tmp_path / "copy")
    copy = Workspace(tmp_path / "copy")
    run_signals_engine(small_ws, ["gopher_quality"], workers=2, shard_size=25)
    _, rep = run_signals_engine(
        copy, ["gopher_quality"], engine="ray", ray_address=on_ray, shard_size=25
    )
    assert rep.engine == "ray" and (rep.shards, rep.docs) == (4, 90)
    (sig,) = resolve_signals(["gopher_quality"])

    def rows(ws):
        sql = f"SELECT * FROM {sig.table} WHERE version = ? ORDER BY doc_id"
        return ws.cursor().execute(sql, [sig.version]).fetchall()

    assert len(rows(copy)) == 90 and rows(copy) == rows(small_ws)


def test_contamination(small_ws, on_ray):  # noqa: F811
    from analytics.signals.contamination import find_contamination_on_engine, result_to_dict

    texts = pq.read_table(DEMO, columns=["text"]).slice(0, 90)["text"].to_pylist()
    evals = [" ".join(texts[i][:1500].split()[5:30]) for i in (3, 40, 77)] + ["too short"]
    local = find_contamination_on_engine(small_ws, evals, workers=2, shard_size=20)
    got = find_contamination_on_engine(
        small_ws, evals, engine="ray", ray_address=on_ray, shard_size=20
    )
    assert len(local.flagged) >= 3 and local.eval_matched == [0, 1, 2]
    assert result_to_dict(got) == result_to_dict(local)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_materialise(mat_ws, tmp_path, on_ray, fmt):  # noqa: F811
    from analytics.mixture import materialize

    ws, m = mat_ws
    materialize(ws, m, tmp_path / "local", fmt=fmt, shard_rows=40, engine="local", workers=2)
    res = materialize(
        ws, m, tmp_path / "ray", fmt=fmt, shard_rows=40, engine="ray", ray_address=on_ray
    )
    assert len([f for f in res.files if "/part-" in str(f)]) >= 5
    assert file_hashes(tmp_path / "ray") == file_hashes(tmp_path / "local")


def _worker_state() -> tuple[str, bool, str]:
    """On a Ray worker: (node id, did the setup hook run here, what importing HTTPFileSystem
    gives: "ok" or the exception's class name)."""
    import sys

    import ray

    import analytics.ray_hook as hook

    settled = "fsspec.implementations.http" in sys.modules  # imported, or marked missing
    try:
        from fsspec.implementations.http import HTTPFileSystem  # noqa: F401

        outcome = "ok"
    except ImportError as exc:
        outcome = type(exc).__name__
    return ray.get_runtime_context().get_node_id(), hook.RAN and settled, outcome


def test_every_worker_settles_fsspec_first(on_ray):
    """ray_connect names analytics.ray_hook.setup_worker as the worker setup hook, so each
    worker on each node settled the import of fsspec's HTTP filesystem before any task: it is
    imported, or (aiohttp missing) fails with ModuleNotFoundError, which Ray Data expects;
    never the half-initialised ImportError of ray-project/ray#52327."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from analytics.engine import ray_connect
    from analytics.ray_hook import HOOK

    ray = ray_connect(on_ray)
    assert ray.get_runtime_context().runtime_env.get("worker_process_setup_hook") == HOOK
    nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 2
    fn = ray.remote(num_cpus=1)(_worker_state)
    got = ray.get(
        [
            fn.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
            for n in nodes
        ]
    )
    assert sorted(g[0] for g in got) == sorted(nodes)
    assert all(settled for _node, settled, _outcome in got), got
    assert {outcome for _node, _settled, outcome in got} <= {"ok", "ModuleNotFoundError"}, got
