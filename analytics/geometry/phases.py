"""Training-phase labels from RankMe and alpha-ReQ trajectories.

The tracing paper (Li et al. 2025) describes three phases across pretraining:
an early "warmup" collapse of RankMe; "entropy-seeking" (RankMe rises while alpha
falls: variance spreads over more directions); "compression-seeking" (RankMe falls while
alpha rises: variance concentrates in few directions). Intervals where both move the same
way fit neither and are labelled "mixed".

Rule implemented by :func:`phases` (simple on purpose, so a reader can check it; the same
text is :data:`PHASE_RULE`, shown on the Geometry page):

1. Sort by step and smooth both series with a centred moving average of ``window``
   points (shrinking at the ends).
2. Warmup collapse: starting at the first step, the leading run of intervals where the
   smoothed RankMe falls - everything up to its first local minimum - is
   "warmup-collapse". If RankMe rises first there is no warmup phase.
3. After the collapse, per interval between consecutive steps, take the changes dR and dA
   of the smoothed series, each divided by its series' range over the steps AFTER the
   collapse (from the collapse's last step on; a constant series contributes 0). Normalising
   over all steps would let the collapse's large drop make every later RankMe change count
   for almost nothing.
4. Each such interval is "mixed" when RankMe and alpha move the same way (dR * dA > 0 and
   both |dR| and |dA| > ``tol``); otherwise it gets the score z = dR - dA: z > ``tol``
   means "entropy-seeking" (RankMe up and/or alpha down), z < -``tol``
   "compression-seeking"; |z| <= tol keeps the previous label (the first such interval
   falls back to the sign of z, "entropy-seeking" on an exact tie).
5. A step carries the label of the interval that ends at it; the first step carries the
   label of the first interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._linalg import to_numpy64
from .errors import GeometryInputError

WARMUP = "warmup-collapse"
ENTROPY = "entropy-seeking"
COMPRESSION = "compression-seeking"
MIXED = "mixed"
PHASE_LABELS = (WARMUP, ENTROPY, COMPRESSION, MIXED)
PHASE_RULE = (
    "RankMe and alpha-ReQ are smoothed with a {window}-checkpoint moving average. "
    "The leading run of falling RankMe is the warmup collapse. After it, each interval's "
    "changes dR and dA are divided by their series' range over the steps after the collapse; "
    "an interval where RankMe and alpha move the same way (dR * dA > 0) is mixed, otherwise "
    "it is entropy-seeking when dR - dA > 0 (RankMe up and/or alpha down) and "
    "compression-seeking when dR - dA < 0 (RankMe down and/or alpha up)."
)


def _smooth(v: np.ndarray, window: int) -> np.ndarray:
    if window <= 1:
        return v.copy()
    half = window // 2
    out = np.empty_like(v)
    for i in range(v.size):
        lo, hi = max(0, i - half), min(v.size, i + half + 1)
        seg = v[lo:hi]
        seg = seg[np.isfinite(seg)]
        out[i] = seg.mean() if seg.size else np.nan
    return out


def _scaled_diff(v: np.ndarray) -> np.ndarray:
    d = np.diff(v)
    finite = v[np.isfinite(v)]
    rng = float(finite.max() - finite.min()) if finite.size else 0.0
    if rng <= 0:
        return np.zeros_like(d)
    d = d / rng
    return np.where(np.isfinite(d), d, 0.0)


def phases(
    steps: Sequence[float] | Any,
    rankme: Sequence[float] | Any,
    alpha: Sequence[float] | Any,
    *,
    window: int = 3,
    tol: float = 0.0,
) -> list[str]:
    """Label each step "warmup-collapse", "entropy-seeking", "compression-seeking" or "mixed".

    Inputs are aligned sequences (any order; labels come back in input order). See the
    module docstring for the rule; ``window`` is the moving-average width (default 3,
    1 = no smoothing) and ``tol`` the dead band on the range-normalised score dR - dA.
    """
    s = to_numpy64(steps, name="steps").ravel()
    r = to_numpy64(rankme, name="rankme").ravel()
    a = to_numpy64(alpha, name="alpha").ravel()
    if not (s.size == r.size == a.size):
        raise GeometryInputError(
            f"steps, rankme, alpha: expected equal lengths, got {s.size}, {r.size}, {a.size}"
        )
    if s.size == 0:
        return []
    if s.size == 1:
        return [ENTROPY]
    if window < 1:
        raise GeometryInputError(f"window: expected >= 1, got {window}")
    order = np.argsort(s, kind="stable")
    rs = _smooth(r[order], window)
    as_ = _smooth(a[order], window)
    raw_dr = np.diff(rs)
    n_int = raw_dr.size
    interval = [""] * n_int
    i = 0
    while i < n_int and raw_dr[i] < 0:
        interval[i] = WARMUP
        i += 1
    # normalise by the ranges after the collapse: from its last step (index i) on
    dr = np.zeros(n_int)
    da = np.zeros(n_int)
    if i < n_int:
        dr[i:] = _scaled_diff(rs[i:])
        da[i:] = _scaled_diff(as_[i:])
    prev = ""
    for j in range(i, n_int):
        z = dr[j] - da[j]
        if dr[j] * da[j] > 0 and min(abs(dr[j]), abs(da[j])) > tol:
            lab = MIXED
        elif z > tol:
            lab = ENTROPY
        elif z < -tol:
            lab = COMPRESSION
        else:
            lab = prev or (COMPRESSION if z < 0 else ENTROPY)
        interval[j] = lab
        prev = lab
    sorted_labels = [interval[0], *interval]
    out = [""] * s.size
    for pos, idx in enumerate(order):
        out[int(idx)] = sorted_labels[pos]
    return out


def phase_bands(steps: Sequence[float] | Any, labels: Sequence[str]) -> list[dict[str, Any]]:
    """Collapse per-step labels into contiguous bands for plotting.

    Returns ``[{"phase": label, "start_step": s0, "end_step": s1}, ...]`` in step order;
    a band spans from the step before its first labelled step (where the interval
    begins) to its last step.
    """
    s = to_numpy64(steps, name="steps").ravel()
    if s.size != len(labels):
        raise GeometryInputError(f"steps, labels: lengths differ ({s.size} vs {len(labels)})")
    order = np.argsort(s, kind="stable")
    bands: list[dict[str, Any]] = []
    for pos, idx in enumerate(order):
        lab = labels[int(idx)]
        step = float(s[idx])
        if bands and bands[-1]["phase"] == lab:
            bands[-1]["end_step"] = step
        else:
            start = float(s[order[pos - 1]]) if pos > 0 else step
            bands.append({"phase": lab, "start_step": start, "end_step": step})
    return bands
