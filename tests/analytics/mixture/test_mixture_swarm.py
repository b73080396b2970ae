"""Proxy swarms: deterministic proxies, bits per byte, Dirichlet draws, regressors, the
constrained proposal against closed forms, Olmix CSVs, and a tiny swarm on the demo corpus."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analytics.mixture.errors import InfeasibleMixtureError, StrategyInputError
from analytics.mixture.propose import fit_regressors, kl, make_constraints, propose
from analytics.mixture.proxy import (
    EOS,
    ProxyConfig,
    bits_per_byte,
    token_blocks,
    train_proxy,
    train_swarm_tokenizer,
)
from analytics.mixture.swarm import read_olmix_csv, run_tasks, sample_mixtures

TINY = ProxyConfig(
    steps=4,
    n_layer=1,
    n_embd=16,
    n_head=1,
    vocab_size=300,
    block_size=16,
    batch_size=2,
    eval_max_chars=300,
)
TEXTS = [
    "The quick brown fox jumps over the lazy dog near the river bank. " * 3,
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n" * 3,
    "Der schnelle braune Fuchs springt über den faulen Hund. Ein Satz. " * 3,
    "A licence grants permission to copy, modify and distribute the work. " * 3,
]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    train_swarm_tokenizer(TEXTS * 4, d, vocab_size=300)
    from analytics.mixture.proxy import load_tokenizer

    return load_tokenizer(d), d


def _train(tok, seed):
    blocks = token_blocks(TEXTS, tok, TINY.block_size)
    return train_proxy(blocks, TINY, vocab=len(tok), eos=tok.convert_tokens_to_ids(EOS), seed=seed)


def test_proxy_training_is_deterministic_per_seed(tok):
    a, b, c = _train(tok[0], 3), _train(tok[0], 3), _train(tok[0], 4)
    assert len(a.losses) == TINY.steps and all(math.isfinite(x) for x in a.losses)
    assert a.losses == b.losses  # bit-identical
    assert a.losses != c.losses
    assert a.tokens == TINY.steps * TINY.batch_size * TINY.block_size


def test_bits_per_byte_matches_the_models_own_loss(tok):
    """Independent check: for a text that fits one window, HF's mean token loss x predicted
    tokens / ln 2 / bytes is the bits per byte."""
    import torch

    t = tok[0]
    run = _train(t, 0)
    text = "print(add(2, 3))"
    ids = [t.convert_tokens_to_ids(EOS), *t(text, add_special_tokens=False)["input_ids"]]
    assert len(ids) <= TINY.block_size + 1
    with torch.no_grad():
        x = torch.tensor([ids])
        loss = float(run.model(input_ids=x, labels=x).loss)  # mean over len(ids) - 1 tokens
    want = loss * (len(ids) - 1) / math.log(2) / len(text.encode("utf-8"))
    got = bits_per_byte(run.model, t, [text], TINY)
    assert got["bpb"] == pytest.approx(want, rel=1e-5)
    assert got["bytes"] == len(text.encode()) and got["tokens"] == len(ids) - 1


def test_a_spawned_worker_gives_the_same_proxy_as_in_process(tok, tmp_path):
    """Engines agree: the same task in this process and in a spawned process; the task
    carries token arrays, no path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from analytics.mixture.swarm import proxy_job, read_texts, shared_payload

    data = tmp_path / "data" / "main"
    data.mkdir(parents=True)
    pq.write_table(pa.table({"text": TEXTS}), data / "part-00000.parquet")
    shared = shared_payload(tok[0], {"bpb:x": TEXTS[:2]}, TINY)
    job = proxy_job(read_texts(tmp_path / "data"), tok[0], TINY, 1)
    assert job["blocks"].shape[1] == TINY.block_size and job["seed"] == 1
    assert not any(isinstance(v, str) and "/" in v for v in [*job.values(), *shared.values()])
    inproc = run_tasks(shared, [job], workers=1)
    spawned = run_tasks(shared, [job, job], workers=2)
    assert inproc[0]["losses"] == spawned[0]["losses"] == spawned[1]["losses"]
    assert inproc[0]["metrics"] == spawned[0]["metrics"]
    # bits per byte from the shipped windows = from the texts and the tokenizer
    run = _train(tok[0], 1)
    assert inproc[0]["metrics"]["bpb:x"] == bits_per_byte(run.model, tok[0], TEXTS[:2], TINY)["bpb"]


def test_dirichlet_draws_follow_the_prior():
    q = np.array([0.6, 0.3, 0.1])
    a = sample_mixtures(q, n=5, seed=0)
    assert np.array_equal(a, sample_mixtures(q, n=5, seed=0))
    assert np.allclose(a.sum(axis=1), 1.0)
    # E[Dirichlet(c * q)] = q (closed form); RegMix's default c = 1
    many = sample_mixtures(q, n=20_000, seed=1, concentration=1.0)
    assert np.allclose(many.mean(axis=0), q, atol=0.01)
    uni = sample_mixtures(q, n=20_000, seed=1, prior="uniform", concentration=3.0)
    assert np.allclose(uni.mean(axis=0), 1 / 3, atol=0.01)
    # variance of a Dirichlet component: q(1-q)/(c+1)
    assert many[:, 0].var() == pytest.approx(0.6 * 0.4 / 2, rel=0.05)
    with pytest.raises(StrategyInputError, match="prior"):
        sample_mixtures(q, n=2, seed=0, prior="tokens")


# ----------------------------------------------------------------------------- regressors


def test_regressors_recover_their_own_functional_forms():
    rng = np.random.default_rng(0)
    g = 4
    w = rng.dirichlet(np.ones(g), size=60)
    s = np.array([-1.5, 0.5, 1.0, 0.0])
    y_law = 2.0 + np.exp(w @ s)
    regs = fit_regressors(w, y_law, seed=0)
    assert regs["mixing_law"].r2 > 0.98 and regs["mixing_law"].spearman > 0.98
    b = np.array([-0.2, 0.05, 0.0, -0.1])
    y_log = 3.0 + np.log(w + 1e-3) @ b
    regs = fit_regressors(w, y_log, seed=0)
    assert regs["loglinear"].r2 > 0.98
    assert regs["lightgbm"].spearman > 0.6  # a tree ensemble on 60 points: rank order only
    with pytest.raises(StrategyInputError, match="at least 4"):
        fit_regressors(w[:3], y_law[:3])


# ----------------------------------------------------------------------------- proposal


def _simplex_box_projection(t, upper):
    """argmin ||w - t||^2 on {sum w = 1, 0 <= w <= upper}: w = clip(t + lam, 0, upper), lam by
    bisection (the KKT conditions, computed independently of the library)."""
    lo, hi = -2.0, 2.0
    for _ in range(200):
        lam = (lo + hi) / 2
        if np.clip(t + lam, 0, upper).sum() > 1:
            hi = lam
        else:
            lo = lam
    return np.clip(t + lo, 0, upper)


def test_proposal_finds_the_closed_form_optimum_under_epoch_caps():
    groups = ["a", "b", "c", "d"]
    avail = {"a": 100.0, "b": 400.0, "c": 300.0, "d": 200.0}
    t = np.array([0.45, 0.1, 0.3, 0.15])

    def f(x):
        return ((np.atleast_2d(x) - t) ** 2).sum(axis=1)

    c = make_constraints(groups, avail, budget=1000)
    w, _ = propose(f, c)
    assert np.allclose(w, t, atol=1e-4)
    # max 2 epochs: group a holds 100 tokens of a 1000-token budget -> w_a <= 0.2
    c = make_constraints(groups, avail, budget=1000, max_epochs=2.0)
    w, _ = propose(f, c)
    want = _simplex_box_projection(t, np.array([0.2, 0.8, 0.6, 0.4]))
    assert np.allclose(w, want, atol=1e-4)
    assert w[0] * 1000 <= 2.0 * 100 + 1e-6  # the cap itself, in tokens
    # a fixed weight holds exactly; the rest is optimal given it
    c = make_constraints(groups, avail, budget=1000, fixed={"c": 0.5})
    w, _ = propose(f, c)
    assert w[2] == pytest.approx(0.5, abs=1e-9)
    assert np.allclose(w.sum(), 1.0)
    rest = _simplex_box_projection(np.delete(t, 2) / 0.5, np.ones(3)) * 0.5  # rescaled problem
    assert np.allclose(np.delete(w, 2), rest, atol=1e-3)


def test_proposal_under_a_kl_bound_is_the_exponential_tilt():
    """min c.w s.t. KL(w || q) <= B has the closed form w ∝ q exp(-c / beta), with beta
    such that the KL equals B."""
    groups = ["a", "b", "c"]
    q = np.array([0.5, 0.3, 0.2])
    cost = np.array([1.0, 0.2, 0.6])
    bound = 0.1
    c = make_constraints(groups, dict(zip(groups, q * 1000)), budget=100, kl_max=bound)
    w, _ = propose(lambda x: np.atleast_2d(x) @ cost, c)

    def tilt(beta):
        v = q * np.exp(-cost / beta)
        return v / v.sum()

    lo, hi = 1e-3, 1e3  # KL(tilt(beta)) decreases in beta
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if kl(tilt(mid), q) > bound:
            lo = mid
        else:
            hi = mid
    want = tilt(hi)
    assert kl(w, q) <= bound + 1e-6
    assert np.allclose(w, want, atol=2e-3)


def test_constraints_hold_for_an_arbitrary_response(tmp_path):
    rng = np.random.default_rng(5)
    groups = [f"g{i}" for i in range(6)]
    avail = dict(zip(groups, rng.uniform(50, 500, size=6)))
    coef = rng.normal(size=6)
    budget = 800.0
    c = make_constraints(
        groups, avail, budget=budget, max_epochs=1.5, fixed={"g2": 0.1}, kl_max=0.3
    )
    w, n = propose(lambda x: np.sin(np.atleast_2d(x) @ coef * 3), c, seed=1)
    nat = np.array([avail[g] for g in groups])
    nat = nat / nat.sum()
    assert n > 0 and w.sum() == pytest.approx(1.0, abs=1e-9) and np.all(w >= -1e-12)
    assert np.all(w * budget <= 1.5 * np.array([avail[g] for g in groups]) + 1e-6)
    assert w[2] == pytest.approx(0.1, abs=1e-9)
    assert float(np.sum(w[w > 0] * np.log(w[w > 0] / nat[w > 0]))) <= 0.3 + 1e-6


def test_infeasible_constraints_say_why():
    with pytest.raises(InfeasibleMixtureError, match="max_epochs"):
        make_constraints(["a", "b"], {"a": 10, "b": 10}, budget=1000, max_epochs=2)
    with pytest.raises(InfeasibleMixtureError, match="sum to"):
        make_constraints(["a", "b"], {"a": 10, "b": 10}, budget=1, fixed={"a": 0.7, "b": 0.6})
    with pytest.raises(StrategyInputError, match="unknown group"):
        make_constraints(["a", "b"], {"a": 10, "b": 10}, budget=1, fixed={"z": 0.5})


# ----------------------------------------------------------------------------- Olmix CSVs


def test_olmix_csv_validation_names_the_line(tmp_path):
    pd.DataFrame({"run_id": ["r1", "r2"], "a": [0.5, 0.2], "b": [0.5, 0.8]}).to_csv(
        tmp_path / "ratios.csv", index=False
    )
    pd.DataFrame({"run_id": ["r2", "r1"], "name": ["x", "y"], "bpb": [1.0, 2.0]}).to_csv(
        tmp_path / "metrics.csv", index=False
    )
    r, m = read_olmix_csv(tmp_path)
    assert list(r["run_id"]) == list(m["run_id"]) == ["r1", "r2"]  # joined on run_id
    assert list(m["bpb"]) == [2.0, 1.0]
    pd.DataFrame({"run_id": ["r1", "r2"], "a": [0.5, 0.2], "b": [0.5, 0.5]}).to_csv(
        tmp_path / "ratios.csv", index=False
    )
    with pytest.raises(StrategyInputError, match=r"ratios.csv line 3: ratios sum to 0.7"):
        read_olmix_csv(tmp_path)
    (tmp_path / "metrics.csv").unlink()
    with pytest.raises(StrategyInputError, match="metrics.csv: not found"):
        read_olmix_csv(tmp_path)


# ----------------------------------------------------------------------------- on the demo corpus


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_tiny_swarm_on_the_demo_corpus(demo_workspace_copy, tmp_path):
    from analytics.mixture import load_mixture, selection_stats
    from analytics.mixture.swarm import (
        SwarmSpec,
        import_swarm,
        load_swarm,
        run_swarm,
        write_olmix_csv,
    )
    from analytics.mixture.swarm_fit import fit_swarm, save_proposal, validate_proxy

    ws = demo_workspace_copy
    spec = SwarmSpec(
        "tiny",
        proxies=4,
        seed=2,
        eval_groups=["python-doc"],
        heldout_per_group=2,
        tokenizer_chars_per_group=3000,
        config=TINY,
    )
    stages = []
    rep = run_swarm(ws, spec, progress=lambda s, d, t: stages.append((s, d, t)))
    assert ("proxies", 4, 4) in stages and any(s.startswith("proxy 1/4") for s, _, _ in stages)
    sw = load_swarm(ws.cursor(), "tiny")
    assert len(sw.runs) == 4 and sw.objective == ["bpb:python-doc"]
    # the swarm's record says its options, defaults named where they differ
    from analytics.params import describe

    assert sw.params["options"] == describe(spec.options())
    assert "proxies=4 (default 16)" in sw.params["options"]
    w = sw.weight_matrix()
    assert np.allclose(w.sum(axis=1), 1.0)
    metrics = sw.metric_frame()
    assert set(metrics.columns) == {f"bpb:{g}" for g in sw.groups}
    assert np.all(np.isfinite(metrics.to_numpy())) and np.all(metrics.to_numpy() > 0)
    # held-out documents: per group min(2, max(1, n // 10)), never in a proxy's selection
    held = sw.params["heldout_ids"]
    n_src = dict(
        ws.cursor().execute("SELECT source, count(*) FROM documents GROUP BY 1").fetchall()
    )
    assert len(held) == sum(min(2, max(1, n // 10)) for n in n_src.values() if n >= 2)
    assert rep.directory.joinpath("tokenizer").is_dir()

    out = tmp_path / "olmix"
    write_olmix_csv(sw, out)
    ratios = pd.read_csv(out / "ratios.csv")
    assert list(ratios.columns[:2]) == ["run_id", "name"]
    assert np.allclose(ratios[sw.groups].sum(axis=1), 1.0)
    back = import_swarm(
        ws, "tiny-again", out, group_by="source", budget=sw.budget, objective=["bpb:python-doc"]
    )
    assert np.allclose(back.weight_matrix(), w, atol=1e-9)
    assert np.allclose(back.objective_values(), sw.objective_values(), atol=1e-9)

    fit = fit_swarm(sw, max_epochs=50.0)
    v = save_proposal(ws, fit, "tiny")
    m = load_mixture(ws.cursor(), "tiny", v)
    g0 = m.phases[0].groups[0]
    assert g0.method.name == "swarm" and g0.method.params["swarm"] == "tiny"
    assert {g.id: g.weight for g in m.phases[0].groups} == pytest.approx(fit.proposal, abs=1e-9)
    # the proposal's selections leave the held-out documents out
    ids = {r[0] for r in ws.cursor().execute(g0.selection.sql, g0.selection.params).fetchall()}
    assert ids and not (ids & set(held))
    assert selection_stats(ws.cursor(), g0.selection)["documents"] == g0.documents

    table = validate_proxy(ws, m, ref=f"tiny@{v}", seeds=[0])
    assert list(table["mixture"]) == ["proposal", "natural", "uniform"]
    assert np.all(np.isfinite(table["measured"])) and np.all(np.isfinite(table["predicted_mean"]))
    sw2 = load_swarm(ws.cursor(), "tiny")
    assert (sw2.runs["kind"] == "validate").sum() == 3
    assert len(sw2.swarm_runs()) == 4  # validation runs do not join the fitted swarm
