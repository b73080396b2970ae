"""Spectral metrics against closed-form cases (derivations in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.geometry import (
    GeometryInputError,
    alpha_req,
    anisotropy,
    eigenspectrum,
    intrinsic_dimension,
    participation_ratio,
    rankme,
    rankme_record,
    singular_values,
)


def matrix_with_spectrum(s: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """N x D matrix Z = Q diag(s) V^T whose columns have zero mean.

    Q comes from the QR of a column-centred Gaussian matrix, so every column of Q is a
    combination of centred vectors and hence orthogonal to the all-ones vector: centring
    Z changes nothing, Z's singular values are exactly s and its covariance eigenvalues
    are exactly s^2 / (N - 1).
    """
    rng = np.random.default_rng(seed)
    d = len(s)
    g = rng.normal(size=(n, d))
    g -= g.mean(axis=0)
    q, _ = np.linalg.qr(g)
    v, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q @ np.diag(s) @ v.T


def test_eigenspectrum_and_singular_values_are_exact_for_constructed_matrix():
    s = np.linspace(5.0, 0.5, 40)
    n = 120
    z = matrix_with_spectrum(s, n)
    np.testing.assert_allclose(singular_values(z), s, rtol=1e-10)
    np.testing.assert_allclose(eigenspectrum(z), s**2 / (n - 1), rtol=1e-9)
    np.testing.assert_allclose(eigenspectrum(z, method="svd"), s**2 / (n - 1), rtol=1e-9)
    assert eigenspectrum(z, max_eigs=7).shape == (7,)


def test_eigenspectrum_matches_sklearn_pca_explained_variance():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(3)
    z = rng.normal(size=(80, 12)) @ rng.normal(size=(12, 12)) + 4.0
    ref = PCA().fit(z).explained_variance_
    np.testing.assert_allclose(eigenspectrum(z), ref, rtol=1e-8)


@pytest.mark.parametrize("a", [0.7, 1.0, 1.9])
@pytest.mark.parametrize("fit_range", [(11, 100), (10, 100), "reptrix"])
@pytest.mark.parametrize("weighting", ["1/k", "none"])
def test_alpha_req_recovers_exact_power_law(a, fit_range, weighting):
    # singular values s_k = k^(-a/2), k = 1..D  =>  covariance eigenvalues
    # lambda_k = k^(-a) / (N - 1): log lambda_k = -a log k - log(N - 1) exactly, so any
    # weighted least-squares fit on the 1-based rank returns alpha = a, c = -log(N - 1),
    # R^2 = 1.
    d, n = 160, 400
    k = np.arange(1, d + 1)
    z = matrix_with_spectrum(k ** (-a / 2), n)
    res = alpha_req(z, fit_range=fit_range, weighting=weighting)
    assert res.alpha == pytest.approx(a, abs=1e-7)
    assert res.intercept == pytest.approx(-math.log(n - 1), abs=1e-6)
    assert res.r2 == pytest.approx(1.0, abs=1e-9)
    assert res.n_used == (89 if fit_range == (11, 100) else 90)


def test_alpha_req_from_eigs_uses_one_based_rank_and_half_open_range():
    # lambda at 0-based index i equals (i + 1)^-2: the 1-based regressor recovers 2
    # exactly; a 0-based regressor could not even take log(0) at index 0.
    lam = np.arange(1, 301, dtype=float) ** -2.0
    res = alpha_req(lam, from_eigs=True, fit_range=(0, 300))
    assert res.alpha == pytest.approx(2.0, abs=1e-10)
    assert res.n_used == 300
    # range clipped to the spectrum: 11..49 => 39 points
    res2 = alpha_req(lam[:50], from_eigs=True)
    assert res2.n_used == 39


def test_alpha_req_weighting_changes_broken_power_law_fit():
    # piecewise law: slope 1 up to rank 30, slope 3 after. 1/k weighting emphasises
    # the low ranks, so its alpha must be smaller than the unweighted one, and both lie
    # strictly between 1 and 3; R^2 < 1 because the line cannot fit the kink.
    k = np.arange(1, 201, dtype=float)
    lam = np.where(k <= 30, k**-1.0, 30.0**-1.0 * (k / 30.0) ** -3.0)
    w = alpha_req(lam, from_eigs=True, weighting="1/k")
    u = alpha_req(lam, from_eigs=True, weighting="none")
    assert 1.0 < w.alpha < u.alpha < 3.0
    assert w.r2 < 0.999


def test_alpha_req_too_few_points_gives_nan_and_bad_range_raises():
    res = alpha_req(np.ones(12), from_eigs=True)  # only index 11 available
    assert math.isnan(res.alpha) and res.n_used == 1
    with pytest.raises(GeometryInputError, match="fit_range"):
        alpha_req(np.ones(50), from_eigs=True, fit_range=(20, 10))
    with pytest.raises(GeometryInputError, match="fit_range"):
        alpha_req(np.ones(50), from_eigs=True, fit_range="nope")


@pytest.mark.parametrize("eps", [1e-7, 1e-5, 0.0])
def test_rankme_flat_spectrum_closed_form(eps):
    # m equal values: p_k = 1/m + eps for every k, so
    # H = -m (1/m + eps) log(1/m + eps) and RankMe = (1/m + eps)^(-(1 + m eps)).
    d, n = 64, 200
    z = matrix_with_spectrum(np.full(d, 3.0), n)
    expected = (1 / d + eps) ** (-(1 + d * eps))
    assert rankme(z, variant="singular", eps=eps) == pytest.approx(expected, rel=1e-9)
    assert rankme(z, variant="covariance", eps=eps) == pytest.approx(expected, rel=1e-9)
    if eps == 0.0:
        assert expected == pytest.approx(d)


def test_rankme_rank_one_closed_form():
    # Z = u v^T: one non-zero singular value among m = min(N, D) = 50, so
    # p = (1 + eps, eps, ..., eps) and H = -(1 + eps) log(1 + eps) - (m - 1) eps log eps.
    rng = np.random.default_rng(1)
    z = np.outer(rng.normal(size=100), rng.normal(size=50))
    eps, m = 1e-7, 50
    h = -(1 + eps) * math.log(1 + eps) - (m - 1) * eps * math.log(eps)
    assert rankme(z, variant="singular", eps=eps) == pytest.approx(math.exp(h), rel=1e-9)
    assert rankme(z, variant="singular", eps=eps) == pytest.approx(1.0, abs=1e-3)
    # eps changes the answer visibly for wide D: with eps = 1e-5 it is about 1.0056
    assert rankme(z, variant="singular", eps=1e-5) > 1.005


def test_rankme_variants_differ_and_record_parameters():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(300, 20)) * np.linspace(1, 4, 20) + 10.0  # large mean
    # the singular variant sees the mean direction (uncentred), the covariance one does not
    assert rankme(z, variant="singular") < rankme(z, variant="covariance")
    rec = rankme_record(z, variant="covariance", eps=1e-5, max_eigs=10)
    assert rec["variant"] == "covariance" and rec["params"]["eps"] == 1e-5
    assert rec["params"]["max_eigs"] == 10 and rec["params"]["centred"] is True
    assert rec["value"] == pytest.approx(rankme(z, variant="covariance", eps=1e-5, max_eigs=10))
    assert rec["value"] <= 10.01
    with pytest.raises(GeometryInputError, match="variant"):
        rankme(z, variant="bogus")  # type: ignore[arg-type]


def test_rankme_accepts_torch_bfloat16():
    torch = pytest.importorskip("torch")
    z = torch.eye(8, dtype=torch.bfloat16) * 2
    assert rankme(z, eps=0.0) == pytest.approx(8.0, rel=1e-12)


def test_marchenko_pastur_moments_and_edges():
    # Z with iid N(0, 1) entries, N = 2000, D = 400. The centred sample covariance
    # C = Z_c^T Z_c / (N - 1) is Wishart with m = N - 1 degrees of freedom divided by m:
    #   E[mean eigenvalue]     = tr(E C)/D = 1
    #   E[mean eigenvalue^2]   = E tr(W^2) / (m^2 D) = m D (m + D + 1) / (m^2 D) = 1 + (D + 1)/m
    # and the spectrum fills the MP support [(1 - sqrt(g))^2, (1 + sqrt(g))^2], g = D/m.
    n, d = 2000, 400
    z = np.random.default_rng(7).normal(size=(n, d))
    lam = eigenspectrum(z)
    m = n - 1
    g = d / m
    assert lam.mean() == pytest.approx(1.0, abs=0.01)  # sd of the mean ~ 1.6e-3
    assert np.mean(lam**2) == pytest.approx(1 + (d + 1) / m, rel=0.01)
    assert lam.max() == pytest.approx((1 + math.sqrt(g)) ** 2, rel=0.03)
    assert lam.min() == pytest.approx((1 - math.sqrt(g)) ** 2, rel=0.06)
    # participation ratio = D * mean^2 / mean(lambda^2) ~ D / (1 + (D + 1)/m)
    assert participation_ratio(z) == pytest.approx(d / (1 + (d + 1) / m), rel=0.015)


def test_participation_ratio_closed_forms():
    assert participation_ratio(np.full(17, 2.5), from_eigs=True) == pytest.approx(17.0)
    assert participation_ratio(np.array([1.0, 0, 0, 0]), from_eigs=True) == pytest.approx(1.0)
    # (1 + 1/2)^2 / (1 + 1/4) = 2.25 / 1.25
    assert participation_ratio(np.array([1.0, 0.5]), from_eigs=True) == pytest.approx(1.8)


def test_anisotropy_known_vectors():
    e1, e2 = np.eye(2)
    # identical directions (any positive scale): every cosine is 1
    assert anisotropy(np.array([e1, 3 * e1, 0.5 * e1])) == pytest.approx(1.0)
    # mutually orthogonal rows: 0
    assert anisotropy(np.eye(5)) == pytest.approx(0.0, abs=1e-15)
    # e1, e2, (e1+e2)/sqrt2: cosines 0, 1/sqrt2, 1/sqrt2 => mean sqrt2/3
    z = np.array([e1, e2, (e1 + e2) * 7.0])
    assert anisotropy(z) == pytest.approx(math.sqrt(2) / 3)
    # antipodal pair: -1
    assert anisotropy(np.array([e1, -2 * e1])) == pytest.approx(-1.0)
    with pytest.raises(GeometryInputError, match="row 1"):
        anisotropy(np.array([e1, np.zeros(2)]))


def test_bad_inputs_raise_value_errors_naming_the_field():
    with pytest.raises(GeometryInputError, match="2-D"):
        rankme(np.ones(5))
    with pytest.raises(ValueError, match="non-finite"):
        rankme(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(GeometryInputError, match="zero"):
        rankme(np.zeros((4, 3)))


def _surface(n: int, d: int, seed: int) -> np.ndarray:
    """n points on a smooth 2-D surface embedded in R^d (nonlinear map, then rotation)."""
    rng = np.random.default_rng(seed)
    u, v = rng.random(n), rng.random(n)
    feats = np.column_stack(
        [u, v, np.sin(2 * u), np.cos(3 * v), u * v, u**2 - v, np.sin(u + 2 * v)]
    )
    rot, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return np.column_stack([feats, np.zeros((n, d - feats.shape[1]))]) @ rot


@pytest.mark.slow
def test_twonn_and_mle_on_2d_manifold_in_high_dimension():
    pytest.importorskip("skdim")
    z = _surface(1500, 40, seed=0)
    assert intrinsic_dimension(z, method="twonn") == pytest.approx(2.0, abs=0.25)
    assert intrinsic_dimension(z, method="mle") == pytest.approx(2.0, abs=0.35)
    # a full-dimensional Gaussian cloud in R^6 reads much higher than 2
    g = np.random.default_rng(1).normal(size=(1500, 6))
    assert intrinsic_dimension(g, method="twonn") > 4.5
