"""Proxy swarms on every engine: a tiny swarm trained in 1 process, in 2 local processes
and on a real 2-node Ray cluster (one Ray task per proxy, token arrays shipped to the
task) stores the same metrics; a Ray address that does not answer is one line, exit 2."""

from __future__ import annotations

import pytest

from analytics.mixture.proxy import ProxyConfig
from tests.conftest import mixscope

TINY = ProxyConfig(
    steps=3,
    n_layer=1,
    n_embd=16,
    n_head=1,
    vocab_size=300,
    block_size=16,
    batch_size=2,
    eval_max_chars=200,
)


def _swarm(ws, name, **engine):
    from analytics.mixture.swarm import SwarmSpec, load_swarm, run_swarm

    spec = SwarmSpec(
        name,
        proxies=3,
        seed=5,
        eval_groups=["python-doc"],
        heldout_per_group=2,
        tokenizer_chars_per_group=2000,
        budget=TINY.steps * TINY.tokens_per_step * 2,
        config=TINY,
        **engine,
    )
    run_swarm(ws, spec)
    sw = load_swarm(ws.cursor(), name)
    return sw.runs.sort_values("run_id").reset_index(drop=True), sw.params


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_tiny_swarm_gives_the_same_metrics_on_every_engine(demo_workspace_copy, ray_cluster):
    import ray

    ws = demo_workspace_copy
    one, p1 = _swarm(ws, "one")
    two, p2 = _swarm(ws, "two", workers=2)
    try:
        on_ray, p3 = _swarm(ws, "onray", engine="ray", ray_address=ray_cluster)
    finally:
        ray.shutdown()
    assert (p1["engine"], p2["engine"], p3["engine"]) == ("local", "local", "ray")
    assert p2["workers"] == 2
    assert len(one) == 3
    m1 = list(one["metrics"])
    assert len(m1[0]) >= 2 and all(v > 0 for v in m1[0].values())
    # the three proxies differ (different mixtures), so equality below is not vacuous
    assert m1[0] != m1[1]
    for other in (two, on_ray):
        assert list(other["weights"]) == list(one["weights"])
        assert list(other["metrics"]) == m1  # exact
        assert list(other["final_loss"]) == list(one["final_loss"])
        assert list(other["train_tokens"]) == list(one["train_tokens"])


def test_a_ray_address_that_does_not_answer_is_one_line(demo_workspace_copy):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ws = demo_workspace_copy
    for cmd in (
        ["mix", "swarm", "x", "--proxies", "2", "--steps", "1", "--engine", "ray",
         "--ray-address", f"127.0.0.1:{port}"],
        ["mix", "validate-proxy", "x@1", "--engine", "ray", "--ray-address", f"127.0.0.1:{port}"],
    ):  # fmt: skip
        r = mixscope(*cmd, ws=ws.path)
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr
        assert f"--ray-address 127.0.0.1:{port}: no Ray cluster answers there" in " ".join(
            r.stderr.split()
        )
    r = mixscope("mix", "swarm", "x", "--engine", "spark", ws=ws.path)
    assert r.returncode == 2 and "--engine 'spark': expected one of local, ray" in r.stderr
    assert not (ws.path / "swarms").exists()
