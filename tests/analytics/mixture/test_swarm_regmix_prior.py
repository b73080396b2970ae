"""The shared Dirichlet sampler (analytics/mixture/dirichlet.py): RegMix's default draws
have the token distribution as their mean (the authors' prior), ``prior=uniform`` is
mixscope's earlier behaviour draw for draw, and manifests and swarm records store the
sampler, the prior and the concentration."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analytics.mixture.dirichlet import DirichletSampler
from analytics.mixture.errors import StrategyInputError
from analytics.mixture.strategies.regmix import DEFAULT_LGBM_PARAMS, fit_regmix
from analytics.mixture.swarm import sample_mixtures

GROUPS = ["web", "code", "books", "wiki"]
TOKENS = {"web": 7_000_000, "code": 2_000_000, "books": 800_000, "wiki": 200_000}
Q = np.array([TOKENS[g] for g in GROUPS], dtype=float) / sum(TOKENS.values())


def _within(mean: np.ndarray, q: np.ndarray, c: float, n: int, sigmas: float = 5.0) -> bool:
    """|mean - q| within ``sigmas`` standard errors, Var[w_g] = q(1-q)/(c+1) (closed form)."""
    se = np.sqrt(q * (1 - q) / (c + 1) / n)
    return bool(np.all(np.abs(mean - q) <= sigmas * se))


def test_the_default_draw_has_the_token_distribution_as_mean():
    s = DirichletSampler.make(GROUPS, tokens=TOKENS)
    assert (s.prior, s.concentration) == ("natural", 1.0)
    assert np.allclose(s.alpha, Q)  # alpha = 1 x the token distribution (RegMix's authors)
    n = 40_000
    w = s.draw(n, 0)
    assert w.shape == (n, 4) and np.allclose(w.sum(axis=1), 1.0)
    assert _within(w.mean(axis=0), Q, 1.0, n)
    # not vacuous: the uniform mean is far outside those bounds
    assert not _within(np.full(4, 0.25), Q, 1.0, n)
    # variance of a component matches the closed form q(1-q)/(c+1)
    assert w[:, 0].var() == pytest.approx(Q[0] * (1 - Q[0]) / 2, rel=0.05)
    # the swarm's draws are the same sampler's
    same = DirichletSampler.make(GROUPS, tokens=Q)
    assert np.array_equal(sample_mixtures(Q, n=50, seed=3), same.draw(50, 3))


def test_regmix_candidates_default_to_the_token_prior_and_uniform_on_request():
    """With top_k = n_candidates the proposal is the mean of every candidate: the mean of
    the draws, so it shows which prior drew them."""
    rng = np.random.default_rng(0)
    runs = pd.DataFrame(rng.dirichlet(np.ones(4), size=12), columns=GROUPS)
    loss = pd.Series(3.0 - runs["code"], name="val_loss")
    n = 20_000
    kw = dict(n_candidates=n, top_k=n, seed=1, model_params={"n_estimators": 5})
    nat = fit_regmix(runs, loss, tokens=TOKENS, **kw)
    assert _within(np.array([nat[g] for g in GROUPS]), Q, 1.0, n)
    assert nat.params["sampler"] == "dirichlet" and nat.params["prior"] == "natural"
    assert nat.params["concentration"] == 1.0
    assert nat.params["prior_weights"] == pytest.approx(dict(zip(GROUPS, Q)))
    assert "RegMix's authors" in nat.params["description"]
    uni = fit_regmix(runs, loss, prior="uniform", **kw)
    assert _within(np.array([uni[g] for g in GROUPS]), np.full(4, 0.25), 4.0, n)
    assert (uni.params["prior"], uni.params["concentration"]) == ("uniform", 4.0)
    # the default needs the token counts (no silent uniform fallback)
    with pytest.raises(StrategyInputError, match="token counts"):
        fit_regmix(runs, loss, **kw)


def test_prior_uniform_is_the_old_behaviour_draw_for_draw():
    """mixscope's earlier RegMix: candidates = default_rng(seed).dirichlet(ones(G)), LightGBM
    on all runs, the mean of the top_k lowest predictions."""
    import lightgbm as lgb

    s = DirichletSampler.make(GROUPS, prior="uniform")
    assert np.array_equal(s.alpha, np.ones(4))
    want = np.random.default_rng(7).dirichlet(np.ones(4), size=1000)
    assert np.array_equal(s.draw(1000, np.random.default_rng(7)), want)

    rng = np.random.default_rng(4)
    w = rng.dirichlet(np.ones(4), size=16)
    y = 2.0 + ((w - np.array([0.1, 0.6, 0.2, 0.1])) ** 2).sum(axis=1)
    runs = pd.DataFrame(w, columns=GROUPS)
    got = fit_regmix(runs, pd.Series(y), prior="uniform", n_candidates=5000, top_k=20, seed=3)
    model = lgb.LGBMRegressor(**{**DEFAULT_LGBM_PARAMS, "random_state": 3}).fit(w, y)
    cand = np.random.default_rng(3).dirichlet(np.ones(4), size=5000)
    best = np.argsort(model.predict(cand), kind="stable")[:20]
    old = cand[best].mean(axis=0)
    old /= old.sum()
    assert [got[g] for g in GROUPS] == pytest.approx(old.tolist(), abs=1e-12)


def test_the_manifest_records_the_prior(demo_workspace_copy, tmp_path):
    """`mix create --strategy regmix`: the token prior by default, `--param prior=uniform`
    for the old draws; the manifest's method params and the CLI say which."""
    from analytics.mixture import read_manifest
    from tests.conftest import mixscope

    ws = demo_workspace_copy
    groups = ["austen", "licenses", "python-code"]
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.dirichlet([1, 1, 1], size=12), columns=groups)
    frame["val_loss"] = 3.0 - 0.6 * frame["austen"] + rng.normal(0, 0.01, 12)
    csv = tmp_path / "runs.csv"
    frame.to_csv(csv, index=False)
    tokens = dict(
        ws.cursor()
        .execute(
            "SELECT source, sum(n_tokens) FROM documents WHERE source IN (?, ?, ?) GROUP BY 1",
            groups,
        )
        .fetchall()
    )
    base = ["mix", "create", "--group-by", "source", "--budget", "100000", "--strategy",
            "regmix", "--param", f"runs={csv}", "--param", "n_candidates=2000"]  # fmt: skip
    src = ["--where-from-url", "src=" + ",".join(groups)]
    out = {}
    for name, extra in (("nat", []), ("uni", ["--param", "prior=uniform"])):
        dest = tmp_path / f"{name}.json"
        r = mixscope(*base[:2], name, *base[2:], *extra, *src, "--out", str(dest), ws=ws.path)
        assert r.returncode == 0, r.stderr
        out[name] = (read_manifest(tmp_path / f"{name}.json"), " ".join(r.stderr.split()))
    p = out["nat"][0].phases[0].groups[0].method.params
    assert (p["sampler"], p["prior"], p["concentration"]) == ("dirichlet", "natural", 1.0)
    total = sum(tokens.values())
    assert p["prior_weights"] == pytest.approx({g: tokens[g] / total for g in groups})
    assert "candidates ~ Dirichlet(1 x token distribution prior)" in out["nat"][1]
    p = out["uni"][0].phases[0].groups[0].method.params
    assert (p["prior"], p["concentration"]) == ("uniform", 3.0)
    assert p["prior_weights"] == pytest.approx({g: 1 / 3 for g in groups})
    assert "candidates ~ Dirichlet(3 x uniform prior)" in out["uni"][1]
    r = mixscope(*base[:2], "bad", *base[2:], "--param", "prior=flat", *src, ws=ws.path)
    assert r.returncode == 2 and "prior: expected natural" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_swarm_record_stores_the_sampler(demo_workspace_copy):
    from analytics.mixture.proxy import ProxyConfig
    from analytics.mixture.swarm import SwarmSpec, load_swarm, run_swarm

    cfg = ProxyConfig(
        steps=1, n_layer=1, n_embd=16, n_head=1, vocab_size=300, block_size=16, batch_size=2,
        eval_max_chars=100,
    )  # fmt: skip
    ws = demo_workspace_copy
    spec = SwarmSpec(
        "uni",
        proxies=2,
        seed=4,
        prior="uniform",
        heldout_per_group=1,
        tokenizer_chars_per_group=1000,
        budget=200,
        config=cfg,
    )
    run_swarm(ws, spec)
    sw = load_swarm(ws.cursor(), "uni")
    g = len(sw.groups)
    assert (sw.params["prior"], sw.params["concentration"]) == ("uniform", float(g))
    rec = sw.params["dirichlet"]
    assert rec["sampler"] == "dirichlet" and rec["prior"] == "uniform"
    assert rec["prior_weights"] == pytest.approx({x: 1 / g for x in sw.groups})
    assert "alpha = 1 per group" in sw.params["sampler"]
    # the stored mixtures are the shared sampler's draws for the swarm's seed
    want = DirichletSampler.make(sw.groups, prior="uniform").draw(2, 4)
    assert np.allclose(sw.weight_matrix(), want, atol=1e-12)
    raw = ws.cursor().execute("SELECT params FROM proxy_swarms WHERE name = 'uni'").fetchone()
    assert json.loads(raw[0])["dirichlet"]["concentration"] == float(g)
