"""End to end on a tiny causal LM trained here: train_demo -> extraction -> compute_geometry."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from analytics.geometry import (  # noqa: E402
    MemoryCache,
    compute_geometry,
    discover_checkpoints,
    extract_hidden_states,
    log_spaced_steps,
    phases,
    train_demo_series,
)
from analytics.geometry import run as run_mod  # noqa: E402

TINY = {
    "n_layer": 2,
    "n_embd": 32,
    "n_head": 2,
    "vocab_size": 300,
    "block_size": 32,
    "batch_size": 8,
}


def synthetic_corpus(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Texts from three tiny 'sources' with different vocabularies and templates."""
    rng = np.random.default_rng(seed)
    lex = {
        "animals": (["cat", "dog", "bird", "fox", "cow"], ["runs", "sleeps", "eats", "jumps"]),
        "code": (["x", "y", "idx", "buf", "tmp"], ["= 0;", "+= 1;", "= f(x);", "-= 2;"]),
        "weather": (["rain", "sun", "wind", "snow"], ["falls", "shines", "blows", "melts"]),
    }
    texts, groups = [], []
    for i in range(n):
        g = list(lex)[i % 3]
        nouns, verbs = lex[g]
        k = int(rng.integers(3, 9))
        sent = " ".join(f"the {rng.choice(nouns)} {rng.choice(verbs)}" for _ in range(k))
        texts.append(sent.capitalize() + ".")
        groups.append(g)
    return texts, groups


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    texts, _ = synthetic_corpus(240)
    out = tmp_path_factory.mktemp("demo") / "run"
    return train_demo_series(texts, out, steps=24, seed=0, learning_rate=1e-2, **TINY)


def test_log_spaced_steps():
    assert log_spaced_steps(24) == [1, 2, 4, 8, 16, 24]
    assert log_spaced_steps(16) == [1, 2, 4, 8, 16]
    assert log_spaced_steps(1) == [1]


@pytest.mark.slow
def test_train_demo_writes_trainer_style_checkpoints_with_decreasing_loss(series):
    assert series.steps == [1, 2, 4, 8, 16, 24]
    assert [p.name for p in series.checkpoints] == [f"checkpoint-{s}" for s in series.steps]
    for step, ck in zip(series.steps, series.checkpoints, strict=True):
        for f in (
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
            "trainer_state.json",
        ):
            assert (ck / f).is_file(), f
        state = json.loads((ck / "trainer_state.json").read_text())
        assert state["global_step"] == step and len(state["log_history"]) == step
    losses = series.losses
    assert len(losses) == 24
    assert np.mean(losses[:3]) > np.mean(losses[-3:]) + 1.0
    assert losses[0] == pytest.approx(math.log(300), rel=0.1)  # untrained ~ uniform over vocab
    cks = discover_checkpoints(series.out_dir)
    assert [c.step for c in cks] == series.steps


@pytest.mark.slow
def test_train_demo_is_deterministic(tmp_path):
    texts, _ = synthetic_corpus(60)
    a = train_demo_series(texts, tmp_path / "a", steps=3, seed=7, **TINY)
    b = train_demo_series(texts, tmp_path / "b", steps=3, seed=7, **TINY)
    c = train_demo_series(texts, tmp_path / "c", steps=3, seed=8, **TINY)
    assert a.losses == b.losses
    assert a.losses != c.losses


def _manual_bpb_and_states(ck, text: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ck)
    model = AutoModelForCausalLM.from_pretrained(ck).eval()
    ids = tok(text)["input_ids"][
        : model.config.n_positions
    ]  # extraction caps at the position limit
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    nll = torch.nn.functional.cross_entropy(
        out.logits[0, :-1], torch.tensor(ids[1:]), reduction="sum"
    ).item()
    # byte-level BPE without special tokens: tokens 1..n-1 decode to exactly the bytes they cover
    n_bytes = len(tok.decode(ids[1:]).encode("utf-8"))
    return nll / math.log(2) / n_bytes, out.hidden_states


@pytest.mark.slow
def test_causal_extraction_matches_manual_loss_and_states(series):
    ck = series.checkpoints[-1]
    texts, _ = synthetic_corpus(9, seed=3)
    long_text = " ".join(texts)
    batch = [long_text, texts[0], texts[1]]
    with_hooks = {"n": 0}

    def hook(module, args, output):
        if type(module).__name__ == "GPT2LMHeadModel":
            with_hooks["n"] += 1

    h = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        res = extract_hidden_states(ck, batch, pooling="last", batch_size=2)
    finally:
        h.remove()
    assert with_hooks["n"] == 2 == res.forward_passes
    assert res.is_causal and res.num_layers == 2
    for i in (1, 2):
        bpb, hs = _manual_bpb_and_states(ck, batch[i])
        assert res.bits_per_byte[i] == pytest.approx(bpb, rel=1e-4)
        for layer in range(3):
            np.testing.assert_allclose(res.hidden[layer][i], hs[layer][0, -1].numpy(), atol=1e-4)
    # mean pooling is pad-invariant: alone vs batched with a longer text
    alone = extract_hidden_states(ck, [texts[0]], pooling="mean")
    batched = extract_hidden_states(ck, [long_text, texts[0]], pooling="mean", batch_size=2)
    for layer in alone.hidden:
        np.testing.assert_allclose(batched.hidden[layer][1], alone.hidden[layer][0], atol=1e-4)
    # truncation: the loss covers only the kept tokens
    short = extract_hidden_states(ck, [long_text], max_tokens=8, layers="last")
    assert short.n_tokens[0] == 8 and 0 < short.n_bytes[0] < len(long_text)


@pytest.mark.slow
def test_compute_geometry_tables_cache_and_loss(series, monkeypatch):
    texts, groups = synthetic_corpus(48, seed=11)
    metrics = [
        "rankme_singular",
        "rankme_covariance",
        "alpha_req",
        "participation_ratio",
        "stable_rank",
        "anisotropy",
    ]
    calls: list[str] = []
    real = run_mod.extract_hidden_states

    def counting(ck, *a, **k):
        calls.append(ck.name)
        return real(ck, *a, **k)

    monkeypatch.setattr(run_mod, "extract_hidden_states", counting)
    progress: list[tuple[int, int, str]] = []
    cache = MemoryCache()
    cks = discover_checkpoints(series.out_dir)
    first = compute_geometry(
        cks[:4],
        texts,
        groups,
        max_tokens=64,
        batch_size=16,
        metrics=metrics,
        cache=cache,
        progress=lambda d, t, m: progress.append((d, t, m)),
    )
    assert calls == [c.name for c in cks[:4]]
    assert progress[-1][:2] == (4, 4)
    calls.clear()
    res = compute_geometry(
        cks, texts, groups, max_tokens=64, batch_size=16, metrics=metrics, cache=cache
    )
    # only the new checkpoints and the last cached one (for the new pair) are extracted
    assert calls == ["checkpoint-8", "checkpoint-16", "checkpoint-24"]
    assert res.checkpoints["from_cache"].tolist() == [True] * 4 + [False] * 2
    assert (res.checkpoints["forward_passes"] == 3).all()  # 48 texts / 16 per batch
    n_ck, n_layers, n_groups = 6, 3, 4  # hidden states 0..2; groups all + 3 sources
    m = res.metrics
    assert len(m) == n_ck * n_layers * n_groups * 7  # 7 records from 6 metric functions
    assert set(m["group"]) == {"all", "animals", "code", "weather"}
    rk = m[(m.metric == "rankme") & (m.group == "all")]
    assert ((rk.value >= 1) & (rk.value <= 33)).all()
    assert json.loads(m[m.metric == "alpha_req"].params.iloc[0])["fit_range"] == [11, 100]
    first_m = first.metrics.sort_values(
        ["checkpoint", "layer", "group", "metric", "variant"]
    ).reset_index(drop=True)
    again = m[m.checkpoint.isin(first_m.checkpoint.unique())]
    again = again.sort_values(["checkpoint", "layer", "group", "metric", "variant"]).reset_index(
        drop=True
    )
    np.testing.assert_allclose(again.value.to_numpy(), first_m.value.to_numpy())
    # spectra: covariance eigenvalues by 1-based rank, min(N, D) per (ckpt, layer, group)
    sp = res.spectra[(res.spectra.group == "all") & (res.spectra.layer == 2)]
    assert sp.groupby("checkpoint")["k"].max().eq(32).all()
    # CKA: consecutive checkpoints per layer + layer pairs within a checkpoint
    cka = res.cka
    assert (cka.kind == "checkpoints").sum() == (n_ck - 1) * n_layers
    lay = cka[cka.kind == "layers"]
    assert len(lay) == n_ck * 6
    np.testing.assert_allclose(lay[lay.layer_a == lay.layer_b].linear, 1.0, atol=1e-6)
    # loss falls with training, per group and overall
    loss = res.loss.pivot_table(index="step", columns="group", values="bits_per_byte")
    assert (loss.loc[24] < loss.loc[1]).all()
    # weights: 2 embeddings + 4 matrices per block with both sides >= 16
    assert (res.weights.groupby("checkpoint").size() == 10).all()
    assert len(res.intruders) == (n_ck - 1) * 10
    assert res.intruders["count"].between(0, 10).all()
    # phases can be derived from the tables
    traj = m[
        (m.metric == "rankme") & (m.variant == "covariance") & (m.group == "all") & (m.layer == 2)
    ]
    al = m[(m.metric == "alpha_req") & (m.group == "all") & (m.layer == 2)]
    labels = phases(traj.step.to_numpy(), traj.value.to_numpy(), al.value.to_numpy())
    assert len(labels) == n_ck
    # every frame fits its workspace table
    duckdb = pytest.importorskip("duckdb")
    from analytics.geometry.schema import SCHEMA, TABLES

    con = duckdb.connect()
    for ddl in SCHEMA:
        con.execute(ddl).fetchall()
    frames = res.frames()
    for frame_name, table in TABLES.items():
        con.register("frame", frames[frame_name])
        con.execute(f"INSERT INTO {table} BY NAME SELECT 'demo' AS run, * FROM frame").fetchall()
        con.unregister("frame")
        assert con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] == len(
            frames[frame_name]
        )


def test_compute_geometry_input_errors(tmp_path):
    from analytics.geometry import CheckpointError, GeometryInputError

    with pytest.raises(CheckpointError):
        compute_geometry(tmp_path, ["a"])
    with pytest.raises(GeometryInputError, match="probe_groups"):
        compute_geometry("org/model@main", ["a", "b"], ["x"])
    with pytest.raises(GeometryInputError, match="metrics"):
        compute_geometry("org/model@main", ["a"], metrics=["nope"])


@pytest.mark.slow
def test_checkpoints_of_different_hidden_size_in_one_run(series, tmp_path):
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(series.checkpoints[-1])
    run = tmp_path / "mixed"
    for step, width in ((1, 32), (2, 48)):
        torch.manual_seed(step)
        cfg = GPT2Config(vocab_size=len(tok), n_positions=32, n_embd=width, n_layer=2, n_head=2)
        GPT2LMHeadModel(cfg).save_pretrained(str(run / f"checkpoint-{step}"))
    tok.save_pretrained(str(run))
    texts, groups = synthetic_corpus(24, seed=5)
    res = compute_geometry(
        run, texts, groups, metrics=["rankme_covariance"], batch_size=24, per_group=False
    )
    assert res.checkpoints["hidden_size"].tolist() == [32, 48]
    cka = res.cka[res.cka.kind == "checkpoints"]
    assert len(cka) == 3 and cka["linear"].between(0, 1).all()
    assert res.intruders.empty  # no matrix keeps its shape, so nothing to compare
    assert set(res.metrics["d"]) == {32, 48}
