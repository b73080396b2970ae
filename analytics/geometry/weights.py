"""Weight-matrix geometry: stable rank, heavy-tailed power-law fits, intruder dimensions.

* stable rank: ||W||_F^2 / ||W||_2^2 = sum_i s_i^2 / s_1^2.
* power-law alpha (heavy-tailed self-regularisation, Martin & Mahoney / WeightWatcher):
  the empirical spectral density is the set of eigenvalues of W^T W, i.e. the
  min(rows, cols) values s_i^2. A continuous power law p(x) ~ x^-alpha for x >= x_min is
  fitted by the Clauset-Shalizi-Newman (2009) method: for each candidate x_min (every
  distinct eigenvalue except the largest, with at least ``min_tail`` points at or above
  it) the MLE alpha = 1 + n_tail / sum_{x >= x_min} ln(x / x_min); the x_min whose fit
  has the smallest Kolmogorov-Smirnov distance D = max |F_fit(x_j) - j/n_tail| (empirical
  CDF taken just below each sorted tail point, as in Clauset's plfit and the ``powerlaw``
  package) is chosen. Reading (WeightWatcher): 2-4 well trained, 4-6 weakly trained,
  > 6 random-like.
* intruder dimensions (Shuttleworth et al. 2024): among the top-k left singular vectors
  of the later matrix, those whose largest |cosine| with any left singular vector of the
  earlier matrix is below eps (defaults k = 10, eps = 0.5). The definition is for weights
  stored out_features x in_features (torch.nn.Linear), so the left singular vectors live in
  the output space. GPT-2-style models store their projections as transformers' Conv1D,
  in_features x out_features: :func:`as_out_in` transposes those before any analysis.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._linalg import as_matrix, as_spectrum, gram_eigenvalues, to_numpy64
from .errors import GeometryInputError

#: the fewest eigenvalues a power-law tail may have (x_min candidates leave at least these)
POWERLAW_MIN_TAIL = 10


def stable_rank(W: Any) -> float:
    """Stable rank ||W||_F^2 / ||W||_2^2 (in [1, rank(W)]); identity(n) -> n, rank one -> 1."""
    w = as_matrix(W, name="W")
    top = float(gram_eigenvalues(w)[0])  # sigma_1^2
    if top == 0:
        raise GeometryInputError("W: the matrix is all zeros; stable rank undefined")
    fro2 = float(np.sum(w * w))  # exact, not via the eigen-solver
    return fro2 / top


@dataclass(frozen=True)
class PowerLawResult:
    """Result of :func:`powerlaw_alpha`.

    alpha: exponent of p(x) ~ x^-alpha; xmin: lower cut-off; ks_distance: KS distance of
    the chosen fit; n_tail: eigenvalues >= xmin; n: eigenvalues considered; sigma:
    standard error (alpha - 1) / sqrt(n_tail).
    """

    alpha: float
    xmin: float
    ks_distance: float
    n_tail: int
    n: int
    sigma: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def esd(W: Any) -> np.ndarray:
    """Eigenvalues of W^T W (= squared singular values), descending, float64."""
    return gram_eigenvalues(as_matrix(W, name="W"))


def powerlaw_alpha(
    W_or_values: Any,
    *,
    from_eigs: bool = False,
    xmin: float | None = None,
    min_tail: int = POWERLAW_MIN_TAIL,
    zero_tol: float = 1e-12,
) -> PowerLawResult:
    """Clauset power-law fit to the eigenvalues of W^T W (or to given positive values).

    ``from_eigs=True`` fits ``W_or_values`` directly (any positive sample, e.g. Pareto
    draws). Values <= ``zero_tol`` * max are numerical zeros of a rank-deficient matrix
    and are dropped. ``xmin`` fixes the cut-off instead of scanning; otherwise candidates
    are the distinct values leaving at least ``min_tail`` (default 10) points in the tail,
    the largest value excluded. Returns NaNs when fewer than ``min_tail`` + 1 values remain.
    """
    if from_eigs:
        vals = as_spectrum(W_or_values, name="values")
    else:
        vals = esd(W_or_values)
    if min_tail < 2:
        raise GeometryInputError(f"min_tail: expected >= 2, got {min_tail}")
    vals = vals[vals > zero_tol * vals.max()] if vals.max() > 0 else vals[:0]
    x = np.sort(vals)
    n = int(x.size)
    nan = float("nan")
    if n < max(min_tail, 2) + (0 if xmin is not None else 1):
        return PowerLawResult(nan, nan, nan, 0, n, nan)
    logx = np.log(x)
    suffix = np.cumsum(logx[::-1])[::-1]  # suffix[i] = sum_{j >= i} log x_j
    first = np.searchsorted(x, x, side="left")  # index of first occurrence of each value

    def fit_at(i: int) -> tuple[float, float]:
        m = n - i
        denom = suffix[i] - m * logx[i]
        if denom <= 0:
            return nan, nan
        a = 1.0 + m / denom
        tail = x[i:]
        f_fit = 1.0 - (tail / x[i]) ** (1.0 - a)
        emp = (first[i:] - i) / m
        return a, float(np.max(np.abs(f_fit - emp)))

    if xmin is not None:
        i = int(np.searchsorted(x, float(xmin), side="left"))
        if i >= n - 1:
            return PowerLawResult(nan, float(xmin), nan, n - i, n, nan)
        a, d = fit_at(i)
        m = n - i
        return PowerLawResult(a, float(x[i]), d, m, n, (a - 1) / np.sqrt(m))

    cand = np.unique(first)
    cand = cand[(x[cand] < x[-1]) & (n - cand >= min_tail)]
    best = (np.inf, nan, -1)
    for i in cand:
        a, d = fit_at(int(i))
        if np.isfinite(d) and d < best[0]:
            best = (d, a, int(i))
    d, a, i = best
    if i < 0:
        return PowerLawResult(nan, nan, nan, 0, n, nan)
    m = n - i
    return PowerLawResult(float(a), float(x[i]), float(d), m, n, float((a - 1) / np.sqrt(m)))


#: transformers model types whose projections are Conv1D modules (weight: in x out)
CONV1D_MODEL_TYPES = frozenset({"gpt2", "openai-gpt", "imagegpt", "decision_transformer"})
_CONV1D_CLASS_PREFIXES = ("GPT2", "OpenAIGPT", "ImageGPT", "DecisionTransformer")
#: parameter names of those Conv1D modules (attention qkv / output, MLP in / out, cross-attn q)
_CONV1D_PARAM = re.compile(r"(?:^|\.)(?:c_attn|c_proj|c_fc|q_attn)\.weight$")


def uses_conv1d(*, model_type: str | None = None, model_class: str | None = None) -> bool:
    """Whether a model stores its projection weights as Conv1D (in x out): by the config's
    ``model_type`` or the model's class name (e.g. "GPT2LMHeadModel")."""
    if model_type and model_type.lower() in CONV1D_MODEL_TYPES:
        return True
    return bool(model_class) and str(model_class).startswith(_CONV1D_CLASS_PREFIXES)


def conv1d_weight_names(names: Iterable[str]) -> list[str]:
    """The names among ``names`` that are Conv1D weights in a GPT-2-style model."""
    return [n for n in names if _CONV1D_PARAM.search(n)]


def as_out_in(state: Mapping[str, Any], *, conv1d: bool) -> dict[str, Any]:
    """``state`` with every Conv1D weight transposed to out x in (a view, no copy), so that
    left singular vectors are output directions as in Linear layers; unchanged when
    ``conv1d`` is False (see :func:`uses_conv1d`)."""
    out = dict(state)
    if conv1d:
        for name in conv1d_weight_names(out):
            if getattr(out[name], "ndim", 0) == 2:
                out[name] = out[name].T
    return out


def _named_matrices(model_or_state_dict: Any) -> Iterable[tuple[str, Any]]:
    """(name, 2-D tensor/array) pairs, out x in (a module's Conv1D weights are transposed);
    tied parameters appear once."""
    if hasattr(model_or_state_dict, "named_parameters"):
        conv1d = {
            f"{mod_name}.weight" if mod_name else "weight"
            for mod_name, mod in model_or_state_dict.named_modules()
            if type(mod).__name__ == "Conv1D"
        }
        for name, p in model_or_state_dict.named_parameters():
            if p.ndim == 2:
                yield name, (p.T if name in conv1d else p)
        return
    if not isinstance(model_or_state_dict, Mapping):
        raise GeometryInputError(
            "model_or_state_dict: expected a torch.nn.Module or a mapping name -> tensor/array, "
            f"got {type(model_or_state_dict).__name__}"
        )
    seen: set[Any] = set()
    for name, t in model_or_state_dict.items():
        if getattr(t, "ndim", None) != 2:
            continue
        key: Any
        if hasattr(t, "data_ptr"):
            key = ("torch", t.data_ptr(), tuple(t.shape))
        elif isinstance(t, np.ndarray):
            key = ("np", t.__array_interface__["data"][0], t.shape)
        else:
            key = ("obj", id(t))
        if key in seen:
            continue
        seen.add(key)
        yield name, t


WEIGHT_SPECTRA_COLUMNS = [
    "name",
    "shape",
    "rows",
    "cols",
    "stable_rank",
    "spectral_norm",
    "alpha",
    "xmin",
    "ks_distance",
    "n_tail",
    "n_eigs",
]


def weight_spectra(
    model_or_state_dict: Any,
    *,
    include: str | None = None,
    min_dim: int = 16,
    min_tail: int = POWERLAW_MIN_TAIL,
) -> pd.DataFrame:
    """One row per 2-D weight matrix: name, shape ("rows x cols"), rows, cols,
    stable_rank, spectral_norm, power-law alpha, xmin, ks_distance, n_tail, n_eigs.

    Accepts a torch ``nn.Module`` (parameters; tied weights once) or a mapping
    name -> tensor/array (e.g. a state dict; identical tensors once). Matrices whose
    smaller side is below ``min_dim`` (default 16) are skipped (too few eigenvalues for a
    tail fit); ``include`` is an optional regex the name must match (``re.search``).
    """
    pattern = re.compile(include) if include else None
    rows: list[dict[str, Any]] = []
    for name, t in _named_matrices(model_or_state_dict):
        if pattern is not None and not pattern.search(name):
            continue
        w = to_numpy64(t, name=name)
        if min(w.shape) < min_dim:
            continue
        ev = esd(w)
        fit = powerlaw_alpha(ev, from_eigs=True, min_tail=min_tail)
        rows.append(
            {
                "name": name,
                "shape": f"{w.shape[0]}x{w.shape[1]}",
                "rows": int(w.shape[0]),
                "cols": int(w.shape[1]),
                "stable_rank": float(np.sum(w * w) / ev[0]) if ev[0] > 0 else float("nan"),
                "spectral_norm": float(np.sqrt(ev[0])),
                "alpha": fit.alpha,
                "xmin": fit.xmin,
                "ks_distance": fit.ks_distance,
                "n_tail": fit.n_tail,
                "n_eigs": fit.n,
            }
        )
    return pd.DataFrame(rows, columns=WEIGHT_SPECTRA_COLUMNS)


@dataclass(frozen=True)
class IntruderResult:
    """Result of :func:`intruder_dimensions`.

    count: number of intruder dimensions among the top k; details: DataFrame with one
    row per top-k singular vector of W_after (rank 1-based, singular_value,
    max_abs_cos, best_match 0-based index into W_before's singular vectors, is_intruder).
    """

    count: int
    k: int
    eps: float
    details: pd.DataFrame


def _left_singular(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u, s, _ = np.linalg.svd(w, full_matrices=False)
    return u, s


def _top_left_singular(w: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` left singular vectors and values from the eigendecomposition of the
    smaller Gram matrix (u_j = W v_j / s_j when W is tall): accurate for the leading
    singular values (relative error ~1e-16 * (s_1 / s_j)^2), several times cheaper than a
    full SVD; falls back to the SVD when s_k is below 1e-4 s_1 or zero."""
    m, n = w.shape
    g = w.T @ w if m >= n else w @ w.T
    ev, vec = np.linalg.eigh(g)
    ev, vec = ev[::-1][:k], vec[:, ::-1][:, :k]
    if ev.size == 0 or ev[-1] <= 1e-8 * ev[0]:
        u, s = _left_singular(w)
        return u[:, :k], s[:k]
    s = np.sqrt(ev)
    u = (w @ vec) / s if m >= n else vec
    return u, s


def intruder_dimensions(
    W_before: Any,
    W_after: Any,
    *,
    k: int = 10,
    eps: float = 0.5,
) -> IntruderResult:
    """Intruder dimensions of ``W_after`` relative to ``W_before`` (same shape).

    For each of the top-``k`` left singular vectors u'_j of W_after, take
    max_i |<u'_j, u_i>| over the min(rows, cols) left singular vectors u_i of W_before
    (reduced SVD); u'_j is an intruder when that maximum is below ``eps``.
    Defaults follow Shuttleworth et al. 2024: k = 10, eps = 0.5.
    """
    w0 = as_matrix(W_before, name="W_before")
    w1 = as_matrix(W_after, name="W_after")
    if w0.shape != w1.shape:
        raise GeometryInputError(f"W_before, W_after: shapes differ ({w0.shape} vs {w1.shape})")
    if k < 1:
        raise GeometryInputError(f"k: expected a positive integer, got {k}")
    if not 0 < eps <= 1:
        raise GeometryInputError(f"eps: expected 0 < eps <= 1, got {eps}")
    u0, _ = _left_singular(w0)
    kk = min(int(k), min(w1.shape))
    u1, s1 = _top_left_singular(w1, kk)
    cos = np.abs(u1[:, :kk].T @ u0)  # kk x r
    best = cos.argmax(axis=1)
    maxcos = cos[np.arange(kk), best]
    is_intr = maxcos < eps
    details = pd.DataFrame(
        {
            "rank": np.arange(1, kk + 1),
            "singular_value": s1[:kk],
            "max_abs_cos": maxcos,
            "best_match": best,
            "is_intruder": is_intr,
        }
    )
    return IntruderResult(int(is_intr.sum()), kk, float(eps), details)
