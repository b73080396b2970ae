"""Weights by strategy: each strategy's parameters as widgets, heavy fits on explicit clicks.

Target features (hashing a bounded sample of each group), quality-diversity over the
documents' scores and regression fits on proxy runs run only when their button is pressed;
their results are cached (state.memo keyed by the inputs) and kept in the session, so a
rerun never recomputes them.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from analytics.errors import MixscopeError
from analytics.filters import DocFilter
from analytics.mixture import MixtureError, MixtureWeights
from analytics.mixture import builder as mb
from dashboard import state
from dashboard.components.mixture_plan import plain

LABELS = {
    "natural": "Natural (proportional to tokens)",
    "uniform": "Uniform",
    "temperature": "Temperature (n^(1/T))",
    "unimax": "UniMax (budget, max epochs)",
    "manual": "By hand (sliders or numbers)",
    "target_matching": "Target matching (hashed n-grams)",
    "quality_diversity": "Quality-diversity (QuaDMix-style)",
    "regmix": "Regression from proxy runs: RegMix (LightGBM)",
    "mixing_law": "Regression from proxy runs: Data Mixing Law",
}
MAX_TARGET_CHARS = 2_000_000


def strategy_names(has_quality: bool) -> list[str]:
    names = list(LABELS)
    if not has_quality:
        names.remove("quality_diversity")
    return names


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _results() -> dict[str, Any]:
    return st.session_state.setdefault("mx_results", {})


def _strip(w: MixtureWeights) -> MixtureWeights:
    """Drop non-serialisable extras (fitted models) before caching/keeping a result."""
    return MixtureWeights(w, method=w.method, params=w.params, diagnostics=w.diagnostics)


# ----------------------------------------------------------------------------- target


def _target_features(texts: tuple[str, ...], buckets: int) -> np.ndarray:
    from analytics.mixture import hashed_ngram_features

    return state.memo(
        hashed_ngram_features, list(texts), buckets=buckets, key=(_digest(texts), buckets)
    )


def target_panel(flt: DocFilter, group_by: str, counts: pd.DataFrame) -> dict | None:
    """Target texts -> hashed n-gram features of the target and of each group's sample.

    Returns ``{"key", "target", "groups", "sample"}`` once computed for the current inputs,
    else None. Computed on the button click only.
    """
    with st.expander("Target texts (for target matching and KL to a target)"):
        st.caption(
            "Paste or upload texts that look like what the model should be good at. mixscope "
            "hashes word unigrams and bigrams (10,000 buckets) of the target and of a bounded, "
            "seeded sample of each group's documents, then finds group weights minimising "
            "KL(target || mixture)."
        )
        text = st.text_area(
            "Target texts (separate documents by a blank line)", key="mx_target_text", height=120
        )
        up = st.file_uploader(
            "…or upload .txt / .jsonl (with a text field)",
            type=["txt", "jsonl", "ndjson", "md"],
            key="mx_target_file",
        )
        c1, c2, c3 = st.columns([1, 1, 2])
        per_group = c1.number_input(
            "Sample per group", 10, 5000, 200, step=50, key="mx_tm_per_group"
        )
        max_chars = c2.number_input(
            "Characters per document", 200, 100_000, 4000, step=500, key="mx_tm_chars"
        )
        go = c3.button("Compute target features", key="mx_tm_go", type="primary")
        try:
            texts = mb.split_target_texts(text) if text.strip() else []
            if up is not None:
                raw = up.getvalue()
                if len(raw) > MAX_TARGET_CHARS:
                    raise MixscopeError(f"{up.name}: larger than {MAX_TARGET_CHARS:,} bytes")
                texts += mb.split_target_texts(raw.decode("utf-8", "replace"), name=up.name)
        except (MixtureError, MixscopeError) as exc:
            st.error(plain(exc))
            texts = []
        sample = {"per_group": int(per_group), "max_chars": int(max_chars), "seed": 0}
        key = _digest(texts, group_by, repr(flt), sample, state.snapshot_key())
        if go:
            if not texts:
                st.error("Paste or upload at least one target text first.")
            else:
                with st.spinner("Hashing the target and a sample of each group…"):
                    groups = state.cached(mb.group_ngram_features, flt, group_by=group_by, **sample)
                    target = _target_features(tuple(texts), 10_000)
                st.session_state["mx_target"] = {
                    "key": key,
                    "target": target,
                    "groups": groups,
                    "sample": sample,
                    "texts": len(texts),
                }
        got = st.session_state.get("mx_target")
        if got and got["key"] != key:
            st.info("The target texts or the groups changed: press the button to recompute.")
            return None
        if got:
            st.caption(
                f"Target: {got['texts']} text(s); features of {len(got['groups'])} groups from "
                f"up to {got['sample']['per_group']} documents each."
            )
        return got


def target_matching(target: dict | None, counts: pd.DataFrame) -> MixtureWeights | None:
    if target is None:
        st.info("Set target texts above and press **Compute target features**.")
        return None
    tokens = dict(zip(counts["group"], counts["tokens"]))
    res = _results()
    k = ("tm", target["key"])
    if res.get(k) is None:
        from analytics.mixture import target_matching_weights

        feats = {g: target["groups"][g] for g in tokens if g in target["groups"]}
        w = target_matching_weights(feats, target["target"], tokens={g: tokens[g] for g in feats})
        res[k] = MixtureWeights(
            {g: w.get(g, 0.0) for g in tokens},
            method=w.method,
            params={**w.params, "group_sample": target["sample"], "target_texts": target["texts"]},
            diagnostics=w.diagnostics,
        )
    w = res[k]
    d = w.diagnostics
    c1, c2, c3 = st.columns(3)
    c1.metric("KL before (natural)", f"{d['kl_before']:.4f} nats")
    c2.metric("KL after", f"{d['kl_after']:.4f} nats")
    c3.metric(
        "KL reduction",
        f"{d['kl_reduction']:.4f} nats",
        f"{d['kl_reduction'] / d['kl_before']:.1%}" if d["kl_before"] else None,
    )
    return w


# ----------------------------------------------------------------------------- quality


def quality_diversity(
    p: str, flt: DocFilter, group_by: str, counts: pd.DataFrame
) -> MixtureWeights | None:
    qcols = state.cached(mb.quality_columns)
    c1, c2, c3 = st.columns(3)
    col = c1.selectbox("Quality score", list(qcols), key=f"{p}qd_col", format_func=str)
    thr = c2.slider(
        "Drop the lowest fraction of each group", 0.0, 0.95, 0.2, 0.05, key=f"{p}qd_thr"
    )
    sharp = c3.number_input("Sharpness (favour the best)", 0.0, 50.0, 0.0, key=f"{p}qd_sharp")
    key = ("qd", p, _digest(col, thr, sharp, group_by, repr(flt), state.snapshot_key()))
    if st.button("Compute quality-diversity weights", key=f"{p}qd_go"):
        with st.spinner("Scoring documents…"):
            docs = state.cached(mb.quality_docs, flt, group_by=group_by, quality_column=col)
            w = mb.quality_diversity_for(
                docs, list(counts["group"]), quality_column=col, thresholds=thr, sharpness=sharp
            )
        _results()[key] = _strip(w)
    w = _results().get(key)
    if w is None:
        st.info("Press the button to compute weights for these settings.")
        return None
    kept = w.diagnostics.get("kept_tokens", {})
    st.caption(f"Kept {sum(kept.values()):,.0f} tokens above the thresholds.")
    return w


# ----------------------------------------------------------------------------- regression


def _fit(method: str, csv: bytes, tokens: dict[str, float], prior: str) -> MixtureWeights:
    """RegMix / Data Mixing Law on an uploaded CSV, through the one strategy resolver."""
    from analytics.mixture import resolve

    params: dict[str, Any] = {"runs": csv}
    if method == "regmix":  # RegMix's Dirichlet: the token distribution or uniform
        params["prior"] = prior
    return _strip(resolve.strategy_weights(method, params, tokens=tokens, seed=0))


#: RegMix's candidate draws on the page
REGMIX_PRIORS = {
    "natural": "token distribution (RegMix's authors: alpha = token share)",
    "uniform": "uniform (alpha = 1 per group; mixscope's earlier default)",
}


def regression(p: str, method: str, counts: pd.DataFrame) -> MixtureWeights | None:
    groups = list(counts["group"])
    st.caption(
        "Upload one row per proxy run: a column per group with that run's weight, and one or "
        "more validation-loss columns (lower is better). Fit quality is measured on held-out "
        "folds."
    )
    up = st.file_uploader("Proxy runs (CSV)", type=["csv"], key=f"{p}runs")
    if up is None:
        example = pd.DataFrame(
            [dict({g: round(1 / len(groups), 3) for g in groups}, val_loss=3.21)]
        ).to_csv(index=False)
        st.download_button("Example CSV", example, "proxy_runs.csv", key=f"{p}runs_example")
        return None
    prior = "natural"
    if method == "regmix":
        prior = st.selectbox(
            "Candidate mixtures: Dirichlet prior",
            list(REGMIX_PRIORS),
            key=f"{p}regmix_prior",
            format_func=REGMIX_PRIORS.get,
            help="RegMix scores mixtures drawn from a Dirichlet around this prior.",
        )
    tokens = tuple(float(t) for t in counts["tokens"])
    key = ("fit", p, method, prior, _digest(up.getvalue(), groups))
    if st.button("Fit and propose", key=f"{p}fit", type="primary"):
        with st.spinner("Fitting…"):
            try:
                _results()[key] = state.memo(
                    _fit, method, up.getvalue(), dict(zip(groups, tokens)), prior, key=(key, tokens)
                )
            except (ImportError, MixtureError) as exc:
                st.error(plain(exc))
    w = _results().get(key)
    if w is None:
        st.info("Press **Fit and propose**.")
        return None
    if w.params.get("sampler") == "dirichlet":
        st.caption(plain(f"Candidates ~ {w.params['description']}."))
    d = w.diagnostics
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Spearman (held out)", _num(d.get("spearman")))
    c2.metric("R² (held out)", _num(d.get("r2")))
    c3.metric("Predicted loss", _num(d.get("predicted_loss")))
    c4.metric("Best observed", _num(d.get("best_observed_loss")))
    if d.get("groups_not_in_runs"):
        st.caption(plain(f"Groups absent from the runs get weight 0: {d['groups_not_in_runs']}"))
    return w


def _num(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.4f}"


# ----------------------------------------------------------------------------- dispatcher


#: UniMax's default max epochs per group
UNIMAX_EPOCHS = 4.0


def _init(key: str, value) -> None:
    if key not in st.session_state:
        st.session_state[key] = value


def weights_for(
    p: str,
    strategy: str,
    *,
    counts: pd.DataFrame,
    budget: int,
    flt: DocFilter,
    group_by: str,
    target: dict | None,
    max_epochs: float | None = None,
) -> MixtureWeights | None:
    """Widgets of ``strategy`` (keys prefixed ``p``) and the weights they give (None: not yet).
    ``max_epochs``: the phase's epoch cap (UniMax's parameter)."""
    tokens = dict(zip(counts["group"], counts["tokens"]))
    try:
        if strategy in ("natural", "uniform"):
            return mb.token_strategy_weights(strategy, tokens)
        if strategy == "temperature":
            # defaults through Session State only (a `value=` as well would warn when a
            # `?mix=` link sets these keys)
            _init(f"{p}T", 2.0)
            _init(f"{p}T_cap", 0)
            c1, c2 = st.columns(2)
            t = c1.number_input(
                "Temperature T", min_value=0.05, max_value=1000.0, step=0.5,
                key=f"{p}T", help="T = 1: natural; larger T flattens towards uniform.",
            )  # fmt: skip
            cap = c2.number_input(
                "Size cap per group (tokens, 0 = none)", min_value=0, step=100_000,
                key=f"{p}T_cap", help="seqio's maximum: sizes are capped before the temperature.",
            )  # fmt: skip
            params = {"temperature": float(t), "cap": int(cap) or None}
            return mb.token_strategy_weights("temperature", tokens, params=params)
        if strategy == "unimax":
            # UniMax's max epochs is the phase's epoch cap, one field drawn by the phase editor
            e = max_epochs if max_epochs else UNIMAX_EPOCHS
            return mb.token_strategy_weights(
                "unimax", tokens, budget=budget, params={"max_epochs": float(e)}
            )
        if strategy == "manual":
            return manual(p, counts)
        if strategy == "target_matching":
            return target_matching(target, counts)
        if strategy == "quality_diversity":
            return quality_diversity(p, flt, group_by, counts)
        if strategy in ("regmix", "mixing_law"):
            return regression(p, strategy, counts)
    except (MixtureError, MixscopeError) as exc:
        st.error(plain(exc))
        return None
    st.error(plain(f"Unknown strategy {strategy!r}."))
    return None


def manual(p: str, counts: pd.DataFrame) -> MixtureWeights:
    """Relative weights by sliders or typed numbers (normalised to sum to 1)."""
    groups = list(counts["group"])
    tokens = dict(zip(groups, counts["tokens"]))
    start = (
        st.session_state.get(f"{p}manual_start")
        or st.session_state.get(f"{p}last_weights")
        or mb.token_strategy_weights("natural", tokens)
    )
    mode = st.radio(
        "Edit with", ["sliders", "numbers"], horizontal=True, key=f"{p}manual_mode",
        help="Values are relative: they are normalised to sum to 1.",
    )  # fmt: skip
    raw: dict[str, float] = {}
    cols = st.columns(3)
    for i, g in enumerate(groups):
        key = f"{p}w_{i}"
        if key not in st.session_state or st.session_state.get(f"{key}_group") != g:
            st.session_state[key] = float(start.get(g, 0.0)) * 100
            st.session_state[f"{key}_group"] = g
        box = cols[i % 3]
        if mode == "sliders":
            raw[g] = box.slider(plain(g), 0.0, 100.0, step=0.5, key=key)
        else:
            raw[g] = box.number_input(plain(g), min_value=0.0, step=1.0, format="%g", key=key)
    origin = st.session_state.get(f"{p}manual_origin")
    w = mb.token_strategy_weights("manual", tokens, params=raw)
    if origin:
        w.params["origin"] = origin
    return w
