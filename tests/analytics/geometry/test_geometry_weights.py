"""Weight geometry: stable rank, Clauset power-law fits, intruder dimensions, weight spectra."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from analytics.geometry import (
    GeometryInputError,
    intruder_dimensions,
    powerlaw_alpha,
    stable_rank,
    weight_spectra,
)


def _pareto(n: int, alpha: float, xmin: float, seed: int) -> np.ndarray:
    # inverse-CDF sampling of p(x) = (alpha-1)/xmin (x/xmin)^-alpha, x >= xmin
    u = np.random.default_rng(seed).random(n)
    return xmin * (1 - u) ** (-1 / (alpha - 1))


def test_stable_rank_known_matrices():
    assert stable_rank(np.eye(7)) == pytest.approx(7.0)
    assert stable_rank(np.outer([1.0, 2, 3], [4.0, 5])) == pytest.approx(1.0)
    # diag(3, 4): (9 + 16) / 16
    assert stable_rank(np.diag([3.0, 4.0])) == pytest.approx(25 / 16)
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(9, 9)))
    assert stable_rank(5 * q) == pytest.approx(9.0)
    with pytest.raises(GeometryInputError):
        stable_rank(np.zeros((3, 3)))


def test_powerlaw_alpha_recovers_pareto_exponent():
    # MLE standard error is (alpha - 1)/sqrt(n) = 1.5/sqrt(5000) ~ 0.021
    x = _pareto(5000, 2.5, 1.0, seed=1)
    res = powerlaw_alpha(x, from_eigs=True)
    assert res.alpha == pytest.approx(2.5, abs=0.08)
    assert 1.0 <= res.xmin < 1.3
    assert 0 < res.ks_distance < 0.05
    assert res.sigma == pytest.approx((res.alpha - 1) / math.sqrt(res.n_tail))


def test_powerlaw_alpha_finds_xmin_above_non_power_law_body():
    # body: uniform on [0.1, 2); tail: Pareto(alpha=3) above 2
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.uniform(0.1, 2.0, 2000), _pareto(2000, 3.0, 2.0, seed=5)])
    res = powerlaw_alpha(x, from_eigs=True)
    # the KS scan must cut the uniform body away (xmin at or above 2); it may sit a bit
    # higher inside the tail, where any cut-off is a valid power law
    assert 1.95 <= res.xmin <= 4.0
    assert res.alpha == pytest.approx(3.0, abs=3 * res.sigma + 0.02)
    # with xmin fixed at the true cut-off the MLE is 1 + n / sum(log(x / xmin)) by hand
    fixed = powerlaw_alpha(x, from_eigs=True, xmin=2.0)
    tail = x[x >= 2.0]
    assert fixed.alpha == pytest.approx(1 + tail.size / np.sum(np.log(tail / tail.min())))
    assert res.ks_distance <= fixed.ks_distance  # the scan minimises D
    # a cut-off inside the uniform body fits badly
    assert powerlaw_alpha(x, from_eigs=True, xmin=0.5).ks_distance > 3 * res.ks_distance


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_powerlaw_alpha_matches_powerlaw_package(seed):
    powerlaw = pytest.importorskip("powerlaw")
    rng = np.random.default_rng(seed)
    x = np.concatenate([_pareto(1200, 2.2 + seed * 0.4, 1.0, seed), rng.lognormal(-1, 0.5, 400)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = powerlaw.Fit(x, verbose=False)
    # min_tail=3 gives exactly powerlaw's candidate set (it skips the two largest values)
    res = powerlaw_alpha(x, from_eigs=True, min_tail=3)
    assert res.xmin == pytest.approx(ref.xmin, rel=1e-12)
    assert res.alpha == pytest.approx(ref.alpha, rel=1e-9)
    assert res.ks_distance == pytest.approx(ref.D, rel=1e-6)


def test_powerlaw_alpha_on_matrix_uses_squared_singular_values_and_drops_zeros():
    rng = np.random.default_rng(3)
    w = (
        rng.normal(size=(64, 40))
        @ np.diag(np.r_[np.ones(30), np.zeros(10)])
        @ rng.normal(size=(40, 40))
    )
    res = powerlaw_alpha(w)
    assert res.n == 30  # rank 30: the 10 numerical zeros are dropped
    ev = np.linalg.svd(w, compute_uv=False) ** 2
    same = powerlaw_alpha(ev[:30], from_eigs=True)
    assert res.alpha == pytest.approx(same.alpha, rel=1e-8)
    assert math.isnan(powerlaw_alpha(np.array([1.0, 2.0]), from_eigs=True).alpha)


def _well_separated(m: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(m, n)))
    v, _ = np.linalg.qr(rng.normal(size=(n, n)))
    s = 10.0 * 0.85 ** np.arange(n)  # gaps between neighbours >= 15%
    return u @ np.diag(s) @ v.T, u


def test_intruder_dimensions_zero_without_and_one_with_planted_direction():
    w0, _ = _well_separated(128, 96, seed=0)
    rng = np.random.default_rng(1)
    # identical matrices: every top vector matches itself with |cos| = 1
    same = intruder_dimensions(w0, w0)
    assert same.count == 0 and np.allclose(same.details["max_abs_cos"], 1.0)
    # a small perturbation rotates nothing by much
    small = intruder_dimensions(w0, w0 + 1e-3 * rng.normal(size=w0.shape))
    assert small.count == 0
    # plant a strong rank-one update along a random direction u: it becomes the top
    # singular vector; a random unit vector in R^128 has max |cos| with 96 orthonormal
    # vectors around sqrt(2 ln 192 / 128) ~ 0.29 < 0.5, so exactly one intruder
    u = rng.normal(size=128)
    u /= np.linalg.norm(u)
    v = rng.normal(size=96)
    v /= np.linalg.norm(v)
    planted = intruder_dimensions(w0, w0 + 30.0 * np.outer(u, v), k=10, eps=0.5)
    assert planted.count == 1
    top = planted.details.iloc[0]
    assert bool(top["is_intruder"]) and top["rank"] == 1 and top["max_abs_cos"] < 0.5
    assert planted.details["is_intruder"].iloc[1:].sum() == 0


def test_intruder_dimensions_validates_input():
    with pytest.raises(GeometryInputError, match="shapes differ"):
        intruder_dimensions(np.eye(3), np.eye(4))
    with pytest.raises(GeometryInputError, match="eps"):
        intruder_dimensions(np.eye(3), np.eye(3), eps=0)


def test_weight_spectra_table_for_mapping_and_module():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    emb = torch.tensor(rng.normal(size=(50, 32)), dtype=torch.float32)
    sd = {
        "emb.weight": emb,
        "head.weight": emb,  # tied: the same tensor appears once
        "eye": np.eye(20),
        "small": np.eye(4),  # below min_dim: skipped
        "bias": np.ones(20),  # 1-D: skipped
    }
    df = weight_spectra(sd)
    assert list(df["name"]) == ["emb.weight", "eye"]
    eye = df.set_index("name").loc["eye"]
    assert eye["shape"] == "20x20" and eye["stable_rank"] == pytest.approx(20.0)
    assert eye["spectral_norm"] == pytest.approx(1.0)
    assert (df["n_eigs"] == [32, 20]).all()
    lin = torch.nn.Sequential(torch.nn.Linear(32, 24), torch.nn.ReLU(), torch.nn.Linear(24, 16))
    dfm = weight_spectra(lin)
    assert list(dfm["name"]) == ["0.weight", "2.weight"]
    assert list(dfm["shape"]) == ["24x32", "16x24"]
    assert weight_spectra(lin, include=r"^2\.").shape[0] == 1
    with pytest.raises(GeometryInputError, match="mapping"):
        weight_spectra([1, 2, 3])


def _tiny_gpt2():
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(
        n_embd=4, n_layer=1, n_head=2, n_positions=8, vocab_size=11, n_inner=16
    )
    import torch

    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(cfg)


def test_conv1d_names_are_exactly_gpt2s_conv1d_modules():
    from transformers.pytorch_utils import Conv1D

    from analytics.geometry.weights import conv1d_weight_names, uses_conv1d

    model = _tiny_gpt2()
    want = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, Conv1D)}
    assert want and set(conv1d_weight_names(model.state_dict())) == want
    assert uses_conv1d(model_class=type(model).__name__) and uses_conv1d(model_type="gpt2")
    assert not uses_conv1d(model_class="LlamaForCausalLM", model_type="llama")
    # a module is read out x in: the MLP's c_fc (4 in, 16 out) is reported as 16x4
    df = weight_spectra(model, min_dim=2).set_index("name")
    assert df.loc["transformer.h.0.mlp.c_fc.weight", "shape"] == "16x4"


def test_intruder_planted_in_a_conv1d_layer_is_found_after_transposing():
    from analytics.geometry.weights import as_out_in, uses_conv1d

    model = _tiny_gpt2()
    name = "transformer.h.0.mlp.c_fc.weight"
    s0 = {k: v.detach().double().numpy() for k, v in model.state_dict().items() if v.ndim == 2}
    stored = s0[name]
    assert stored.shape == (4, 16)  # Conv1D: in x out
    w0 = stored.T  # the paper's out x in
    # plant a strong rank-one update along an OUTPUT direction u outside W0's column space
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(np.column_stack([w0, rng.normal(size=16)]))
    u = q[:, -1]
    assert np.abs(u @ w0).max() < 1e-10
    v = rng.normal(size=4)
    v /= np.linalg.norm(v)
    s1 = dict(s0)
    s1[name] = (w0 + 30.0 * np.outer(u, v)).T  # stored back as in x out
    conv1d = uses_conv1d(model_class=type(model).__name__)
    a, b = as_out_in(s0, conv1d=conv1d)[name], as_out_in(s1, conv1d=conv1d)[name]
    assert a.shape == (16, 4)
    res = intruder_dimensions(a, b)
    assert res.count == 1 and bool(res.details.iloc[0]["is_intruder"])
    assert res.details.iloc[0]["max_abs_cos"] < 0.05  # the top direction is ~u
    # read as stored (in x out), left singular vectors span all of R^4: nothing is found
    assert intruder_dimensions(s0[name], s1[name]).count == 0
