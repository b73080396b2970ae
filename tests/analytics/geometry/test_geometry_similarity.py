"""Linear CKA: invariances, independent data, and an independent Gram-space implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.geometry import GeometryInputError, cka_matrix, linear_cka


def _orth(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


def _song_unbiased_hsic(k: np.ndarray, l_: np.ndarray) -> float:
    """Song et al. (2012) unbiased HSIC, written directly from the paper's formula with
    explicit N x N kernels whose diagonals are zeroed."""
    n = k.shape[0]
    kt = k - np.diag(np.diag(k))
    lt = l_ - np.diag(np.diag(l_))
    one = np.ones(n)
    term1 = np.trace(kt @ lt)
    term2 = (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
    term3 = 2.0 / (n - 2) * (one @ kt @ lt @ one)
    return (term1 + term2 - term3) / (n * (n - 3))


def _gram_cka(x: np.ndarray, y: np.ndarray, debiased: bool) -> float:
    x = x - x.mean(0)
    y = y - y.mean(0)
    k, l_ = x @ x.T, y @ y.T
    if debiased:
        h = _song_unbiased_hsic
        return h(k, l_) / math.sqrt(h(k, k) * h(l_, l_))
    h = lambda a, b: float(np.sum(a * b))  # noqa: E731  (tr(KL) with centred features)
    return h(k, l_) / math.sqrt(h(k, k) * h(l_, l_))


def test_cka_is_one_under_rotation_isotropic_scaling_and_translation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 30)) @ rng.normal(size=(30, 30))
    y = 3.7 * x @ _orth(30, 1) + 5.0
    assert linear_cka(x, y) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, y, debiased=True) == pytest.approx(1.0, abs=1e-10)


def test_cka_handles_different_widths():
    # Y = X R with R (30 x 50) having orthonormal rows: Y Y^T = X X^T, so CKA = 1 exactly
    rng = np.random.default_rng(2)
    x = rng.normal(size=(150, 30))
    r = np.linalg.qr(rng.normal(size=(50, 30)))[0].T  # 30 x 50, R R^T = I
    assert linear_cka(x, x @ r) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x @ r, debiased=True) == pytest.approx(1.0, abs=1e-10)
    # a non-isotropic rescaling of the features is NOT an invariance
    assert linear_cka(x, x * np.linspace(0.1, 3, 30)) < 0.99


def test_cka_of_independent_gaussians_matches_expectation():
    # For independent centred Gaussians (m = N - 1):
    #   E||Y^T X||_F^2 = D1 D2 m,   E||X^T X||_F^2 = m D1 (m + D1 + 1)
    # so CKA ~ sqrt(D1 D2 / ((m + D1 + 1)(m + D2 + 1))) = 20/520 here (sd ~ 0.003).
    n, d = 500, 20
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    pred = d / (n - 1 + d + 1)
    assert linear_cka(x, y) == pytest.approx(pred, abs=0.012)
    # the debiased estimator removes that bias: mean 0, sd ~ 0.003
    assert abs(linear_cka(x, y, debiased=True)) < 0.015


def test_debiased_and_biased_match_explicit_gram_formulas():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(12, 5)) + 1.0
    y = np.tanh(x @ rng.normal(size=(5, 7))) + rng.normal(scale=0.3, size=(12, 7))
    assert linear_cka(x, y, debiased=True) == pytest.approx(_gram_cka(x, y, True), rel=1e-10)
    assert linear_cka(x, y) == pytest.approx(_gram_cka(x, y, False), rel=1e-10)
    # wide inputs (D > N) take the kernel-space branch
    xw = rng.normal(size=(10, 40))
    yw = xw @ rng.normal(size=(40, 60))
    assert linear_cka(xw, yw) == pytest.approx(_gram_cka(xw, yw, False), rel=1e-10)
    assert linear_cka(xw, yw, debiased=True) == pytest.approx(_gram_cka(xw, yw, True), rel=1e-9)


def test_cka_errors_and_degenerate_input():
    with pytest.raises(GeometryInputError, match="same number of rows"):
        linear_cka(np.ones((5, 2)), np.ones((6, 2)))
    with pytest.raises(GeometryInputError, match="at least 4 rows"):
        linear_cka(np.eye(3), np.eye(3), debiased=True)
    assert math.isnan(linear_cka(np.ones((5, 2)), np.eye(5)))


def test_cka_matrix_symmetric_with_unit_diagonal():
    rng = np.random.default_rng(4)
    base = rng.normal(size=(60, 8))
    reps = {"a": base, "b": base @ _orth(8, 3) * 2, "c": rng.normal(size=(60, 4))}
    m = cka_matrix(reps)
    assert list(m.index) == ["a", "b", "c"]
    np.testing.assert_allclose(np.diag(m.to_numpy()), 1.0)
    np.testing.assert_allclose(m.to_numpy(), m.to_numpy().T)
    assert m.loc["a", "b"] == pytest.approx(1.0)
    assert m.loc["a", "c"] < 0.5
