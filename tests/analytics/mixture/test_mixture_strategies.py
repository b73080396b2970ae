"""Weighting strategies against hand-computed values and independent implementations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analytics.mixture import (
    STRATEGIES,
    InfeasibleMixtureError,
    StrategyInputError,
    fit_mixing_law,
    fit_regmix,
    hashed_ngram_features,
    kl_divergence,
    natural_weights,
    quality_diversity_sampling,
    quality_diversity_weights,
    target_matching_weights,
    temperature_weights,
    uniform_weights,
    unimax_weights,
)

SIZES = {"small": 10.0, "mid": 100.0, "big": 1000.0}


def test_registry_has_every_strategy():
    assert set(STRATEGIES.names()) == {
        "natural",
        "uniform",
        "temperature",
        "unimax",
        "target_matching",
        "quality_diversity",
        "regmix",
        "mixing_law",
        "dsir",
        "manual",
    }
    assert STRATEGIES.get("unimax") is unimax_weights
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        STRATEGIES.get("nope")


def test_natural_and_uniform_by_hand():
    # natural: 10/1110, 100/1110, 1000/1110
    w = natural_weights(SIZES)
    assert w == pytest.approx({"small": 10 / 1110, "mid": 100 / 1110, "big": 1000 / 1110})
    assert w.method == "natural"
    # uniform over non-empty groups; the empty group gets 0
    u = uniform_weights({"a": 5, "b": 0, "c": 7})
    assert u == pytest.approx({"a": 0.5, "b": 0.0, "c": 0.5})


def test_temperature_limits_and_hand_value():
    # T = 1 is the natural mixture
    assert temperature_weights(SIZES, 1.0) == pytest.approx(natural_weights(SIZES), rel=1e-12)
    # T -> infinity approaches uniform; T = inf is exactly uniform
    far = temperature_weights(SIZES, 1e6)
    assert max(abs(v - 1 / 3) for v in far.values()) < 1e-5
    assert temperature_weights(SIZES, math.inf) == pytest.approx({k: 1 / 3 for k in SIZES})
    # T = 2: p ~ sqrt(n): sqrt(10)=3.1623, 10, 31.623 -> total 44.785054
    t2 = temperature_weights(SIZES, 2.0)
    assert t2["small"] == pytest.approx(3.16227766 / 44.78505426, rel=1e-6)
    assert t2["big"] == pytest.approx(31.6227766 / 44.78505426, rel=1e-6)
    # seqio variant caps sizes before the temperature: cap=100 -> (10, 100, 100) at T=1
    capped = temperature_weights(SIZES, 1.0, cap=100)
    assert capped == pytest.approx({"small": 10 / 210, "mid": 100 / 210, "big": 100 / 210})
    assert capped.params["variant"] == "seqio-capped"
    # tiny T does not overflow and puts everything on the largest group
    assert temperature_weights(SIZES, 1e-4)["big"] == pytest.approx(1.0)


def test_unimax_cap_binds_for_some_groups_only():
    # sizes ascending: small=10, mid=100, big=1000; budget 600, max_epochs 2
    # small: min(600/3 = 200, 2*10 = 20)   = 20   (cap binds), remaining 580
    # mid:   min(580/2 = 290, 2*100 = 200) = 200  (cap binds), remaining 380
    # big:   min(380/1 = 380, 2*1000)      = 380  (cap does not bind)
    w = unimax_weights(SIZES, 600, 2)
    assert w == pytest.approx({"small": 20 / 600, "mid": 200 / 600, "big": 380 / 600})
    assert w.diagnostics["capped_groups"] == ["small", "mid"]
    assert list(w) == list(SIZES)  # caller's order kept


def test_unimax_no_cap_binds_is_uniform_and_infeasible_budget():
    # budget 30, max_epochs 5: each share 10 <= 5 * size -> uniform
    assert unimax_weights(SIZES, 30, 5) == pytest.approx({k: 1 / 3 for k in SIZES})
    # capacity 2 * 1110 = 2220 < 5000
    with pytest.raises(InfeasibleMixtureError, match="exceeds max_epochs"):
        unimax_weights(SIZES, 5000, 2)
    # non-strict: the paper's normalisation of the capped allocations (20, 200, 2000)/2220
    w = unimax_weights(SIZES, 5000, 2, strict=False)
    assert w == pytest.approx({"small": 20 / 2220, "mid": 200 / 2220, "big": 2000 / 2220})


@pytest.mark.parametrize(
    "bad, match",
    [
        ({}, "empty"),
        ({"a": -1}, r"tokens\['a'\]"),
        ({"a": float("nan")}, r"tokens\['a'\]"),
        ({"a": 0}, "total"),
    ],
)
def test_bad_tokens_are_named(bad, match):
    with pytest.raises(StrategyInputError, match=match):
        natural_weights(bad)


def test_temperature_rejects_bad_temperature():
    with pytest.raises(ValueError, match="temperature"):
        temperature_weights(SIZES, 0)


# ----------------------------------------------------------------------- target matching


def _texts(rng, vocab, probs, n_docs, words=40):
    return [" ".join(rng.choice(vocab, size=words, p=probs)) for _ in range(n_docs)]


def _zipf(n):
    p = 1.0 / np.arange(1, n + 1)
    return p / p.sum()


def test_hashed_ngram_features_counts_unigrams_and_bigrams():
    one = hashed_ngram_features(["The cat sat"], buckets=10_000)
    # 3 unigrams + 2 bigrams, case-folded
    assert one.sum() == 5
    assert one.shape == (10_000,)
    assert np.array_equal(hashed_ngram_features(["the CAT sat"]), one)
    mat = hashed_ngram_features(["a b", "c"], per_document=True)
    assert mat.shape == (2, 10_000) and mat.sum() == 4
    with pytest.raises(StrategyInputError):
        hashed_ngram_features("not a list")


def test_target_matching_recovers_known_weights():
    rng = np.random.default_rng(0)
    vocab = {g: np.array([f"{g}{i}" for i in range(150)]) for g in ("web", "code", "math")}
    z = _zipf(150)
    group_texts = {g: _texts(rng, vocab[g], z, 300) for g in vocab}
    # target: 50% / 30% / 20% of the documents (all docs have 40 words -> same token share)
    target_texts = (
        _texts(rng, vocab["web"], z, 250)
        + _texts(rng, vocab["code"], z, 150)
        + _texts(rng, vocab["math"], z, 100)
    )
    feats = {g: hashed_ngram_features(t) for g, t in group_texts.items()}
    target = hashed_ngram_features(target_texts)
    w = target_matching_weights(feats, target, tokens={"web": 1e9, "code": 1e6, "math": 1e6})
    assert w == pytest.approx({"web": 0.5, "code": 0.3, "math": 0.2}, abs=0.03)
    d = w.diagnostics
    assert d["converged"]
    assert d["kl_after"] < d["kl_before"]
    assert d["kl_reduction"] == pytest.approx(d["kl_before"] - d["kl_after"])

    # independent check: the same objective solved by scipy SLSQP reaches the same KL
    from scipy.optimize import minimize
    from scipy.special import rel_entr

    groups = list(feats)
    q = np.stack([feats[g] + 0.01 for g in groups])
    q = q / q.sum(axis=1, keepdims=True)
    p = target / target.sum()

    def kl(x):
        return float(np.sum(rel_entr(p, x @ q)))

    res = minimize(
        kl,
        np.full(3, 1 / 3),
        method="SLSQP",
        bounds=[(1e-9, 1)] * 3,
        constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1}],
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert kl(np.array([w[g] for g in groups])) == pytest.approx(d["kl_after"], rel=1e-9)
    assert d["kl_after"] <= res.fun + 1e-7
    assert dict(zip(groups, res.x)) == pytest.approx(dict(w), abs=2e-3)


def test_dsir_log_importance_by_hand():
    from analytics.mixture import dsir_log_importance

    # 2 buckets, as data-selection does: p_target = (3, 0)/3 = (1, 0); q_raw = (1, 1)/2;
    # log ratio per bucket = log(p + 1e-8) - log(q + 1e-8)
    # doc counts (2, 1): 2 * that of bucket 0 + 1 * that of bucket 1
    e = 1e-8
    r0, r1 = math.log(1 + e) - math.log(0.5 + e), math.log(e) - math.log(0.5 + e)
    got = dsir_log_importance(np.array([[2, 1], [0, 3]]), [3, 0], [1, 1])
    assert got[0] == pytest.approx(2 * r0 + r1)
    assert got[1] == pytest.approx(3 * r1)
    sparse = hashed_ngram_features(["alpha beta", "gamma"], per_document=True)
    assert dsir_log_importance(sparse, np.ones(10_000), np.ones(10_000)) == pytest.approx(
        [0.0, 0.0]
    )


def test_kl_divergence_hand_value():
    # KL([.5,.5] || [.25,.75]) = .5 ln 2 + .5 ln(2/3)
    assert kl_divergence([1, 1], [1, 3]) == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3))
    assert kl_divergence([1, 1], [1, 0]) == math.inf


# -------------------------------------------------------------------- quality-diversity


def _qd_docs():
    return pd.DataFrame(
        {
            "group": ["A", "A", "A", "A", "B", "B"],
            "quality": [1.0, 2.0, 3.0, 4.0, 5.0, 1.0],
            "n_tokens": [10, 10, 10, 10, 30, 10],
        }
    )


def test_quality_diversity_by_hand():
    docs = _qd_docs()
    # A: percentiles .25 .5 .75 1; threshold .5 keeps the two best (20 tokens) -> K_A = 20
    # B: threshold 0 keeps both -> K_B = 40;  lambda_A = 2, lambda_B = 1
    # w_A = 2*20 / (2*20 + 1*40) = 0.5
    w = quality_diversity_weights(docs, thresholds={"A": 0.5}, group_weights={"A": 2.0}, budget=160)
    assert w == pytest.approx({"A": 0.5, "B": 0.5})
    assert w.diagnostics["kept_documents"] == {"A": 2, "B": 2}
    t = w.extras["documents"]
    assert list(t["kept"]) == [False, False, True, True, True, True]
    # pi_d = lambda r / sum(lambda r) = (0, 0, 2, 2, 1, 1) / 6
    assert t["sampling_probability"].tolist() == pytest.approx([0, 0, 1 / 3, 1 / 3, 1 / 6, 1 / 6])
    # expected repeats = 160 * lambda r / sum lambda K (= 80): A kept 4, B 2
    assert t["expected_repeats"].tolist() == pytest.approx([0, 0, 4, 4, 2, 2])
    assert float((t["expected_repeats"] * t["n_tokens"]).sum()) == pytest.approx(160)
    assert "group" in docs.columns and "kept" not in docs.columns  # input untouched


def test_quality_diversity_sharpness_and_score_threshold():
    docs = _qd_docs()
    t = quality_diversity_sampling(docs, sharpness=math.log(4))
    # r = exp(ln4 (u - 1)): A u=.25 -> 4^-0.75, u=1 -> 1
    assert t["intensity"].iloc[0] == pytest.approx(4**-0.75)
    assert t["intensity"].iloc[3] == pytest.approx(1.0)
    s = quality_diversity_sampling(docs, thresholds=3.0, threshold_kind="score")
    assert list(s["kept"]) == [False, False, True, True, True, False]
    with pytest.raises(StrategyInputError, match=r"thresholds\['A'\]"):
        quality_diversity_sampling(docs, thresholds={"A": 1.5})
    with pytest.raises(StrategyInputError, match="missing column"):
        quality_diversity_sampling(docs.drop(columns="quality"))


# -------------------------------------------------------------- regression from proxy runs

W_STAR = np.array([0.2, 0.5, 0.3])


def _runs(n, seed, noise=0.0):
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(3), size=n)
    loss = 2.0 + 4.0 * np.sum((w - W_STAR) ** 2, axis=1) + noise * rng.standard_normal(n)
    return pd.DataFrame(w, columns=["web", "code", "books"]), pd.Series(loss, name="val_loss")


@pytest.mark.slow
def test_regmix_fits_and_proposes_near_the_optimum():
    df, loss = _runs(96, seed=1, noise=0.005)
    w = fit_regmix(df, loss, n_candidates=20_000, top_k=50, seed=0, prior="uniform")
    d = w.diagnostics
    assert d["spearman"] > 0.8 and d["r2"] > 0.5
    prop = np.array([w[g] for g in ["web", "code", "books"]])
    assert np.abs(prop - W_STAR).sum() < 0.25
    assert sum(w.values()) == pytest.approx(1.0)
    # same seed -> same proposal
    assert fit_regmix(
        df, loss, n_candidates=20_000, top_k=50, seed=0, prior="uniform"
    ) == pytest.approx(dict(w))
    with pytest.raises(StrategyInputError, match="rows"):
        fit_regmix(df, loss.iloc[:-1])


def test_mixing_law_recovers_exact_law_and_optimum():
    rng = np.random.default_rng(3)
    r = rng.dirichlet(np.ones(3), size=24)
    t1, t2 = np.array([-3.0, 0.5, 0.0]), np.array([0.2, -2.5, -1.0])
    losses = pd.DataFrame(
        {"val_a": 1.5 + 2.0 * np.exp(r @ t1), "val_b": 2.0 + 1.0 * np.exp(r @ t2)}
    )
    df = pd.DataFrame(r, columns=["x", "y", "z"])
    w = fit_mixing_law(df, losses, n_candidates=5000, seed=0)
    d = w.diagnostics
    assert d["r2"] > 0.999 and d["spearman"] > 0.99
    assert d["per_domain"]["val_a"]["r2"] > 0.999
    assert d["laws"]["val_a"]["c"] == pytest.approx(1.5, abs=1e-3)

    # independent optimum of the true total (mean of the two laws) on a simplex grid, step 0.005
    def true_total(x):
        return 0.5 * (1.5 + 2.0 * np.exp(x @ t1)) + 0.5 * (2.0 + 1.0 * np.exp(x @ t2))

    g = np.arange(0, 1.0001, 0.005)
    a, b = np.meshgrid(g, g)
    m = a + b <= 1
    grid = np.stack([a[m], b[m], 1 - a[m] - b[m]], axis=1)
    best = true_total(grid).min()
    prop = np.array([w[k] for k in ["x", "y", "z"]])
    assert true_total(prop[None, :])[0] <= best + 1e-4
