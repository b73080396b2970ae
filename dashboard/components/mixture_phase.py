"""The phases of a mixture: each with its token budget, weights (a strategy or by hand), an
epoch cap, a document order, and its always-visible plan."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from analytics.errors import MixscopeError
from analytics.filters import DocFilter
from analytics.mixture import MixtureError, apply_caps
from analytics.mixture import builder as mb
from dashboard.components import mixture_plan, mixture_strategies

ORDERS = {
    "shuffled": "Shuffled (seeded)",
    "ascending-quality": "Ascending quality (best documents last)",
    "descending-quality": "Descending quality",
}


def _default(key: str, value) -> None:
    if key not in st.session_state:
        st.session_state[key] = value


def phase_names() -> list[str]:
    """``main`` plus an optional annealing phase (names editable; restored when opening)."""
    names = st.session_state.setdefault("mx_phase_names", ["main", "anneal"])
    _default("mx_anneal", False)
    on = st.toggle(
        "Add an annealing phase (its own weights and budget, trained after the main phase)",
        key="mx_anneal",
    )
    return names[:2] if on else names[:1]


def phases_editor(
    counts: pd.DataFrame,
    *,
    flt: DocFilter,
    group_by: str,
    target: dict | None,
    quality: dict[str, str],
) -> list[mb.PhaseSpec] | None:
    """One tab per phase; returns the phase specs, or None while a phase has no weights yet."""
    names = phase_names()
    tabs = st.tabs([f"Phase {i + 1}: {n}" for i, n in enumerate(names)])
    specs = []
    for i, (name, tab) in enumerate(zip(names, tabs)):
        with tab:
            specs.append(
                phase_editor(
                    i, name, counts, flt=flt, group_by=group_by, target=target, quality=quality
                )
            )
    return specs if all(s is not None for s in specs) else None


def phase_editor(
    i: int,
    name: str,
    counts: pd.DataFrame,
    *,
    flt: DocFilter,
    group_by: str,
    target: dict | None,
    quality: dict[str, str],
) -> mb.PhaseSpec | None:
    p = f"mx_p{i}_"
    total = int(counts["tokens"].sum())
    step = max(1, 10 ** max(0, int(math.log10(max(total, 1))) - 1))
    _default(f"{p}budget", total if i == 0 else max(1, total // 10))
    _default(f"{p}strategy", "natural" if i == 0 else "uniform")
    _default(f"{p}cap", 0.0)
    _default(f"{p}order", "shuffled")
    c1, c2, c3, c4 = st.columns([1.2, 2, 1, 1.4])
    budget = c1.number_input(
        "Token budget", min_value=1, step=step, key=f"{p}budget",
        help=f"The filtered corpus holds {total:,} tokens; a larger budget repeats data.",
    )  # fmt: skip
    strategy = c2.selectbox(
        "Weights",
        mixture_strategies.strategy_names(bool(quality)),
        format_func=mixture_strategies.LABELS.get,
        key=f"{p}strategy",
    )
    if strategy == "unimax":  # its max epochs is the phase's cap: one field, not two
        _default(f"{p}unimax_epochs", mixture_strategies.UNIMAX_EPOCHS)
        cap = c3.number_input(
            "Max epochs per group", min_value=0.1, max_value=1000.0, step=0.5, format="%g",
            key=f"{p}unimax_epochs",
            help="UniMax's cap on passes over each group (also the phase's epoch cap).",
        )  # fmt: skip
    else:
        cap = c3.number_input(
            "Max epochs (0 = none)", min_value=0.0, step=1.0, format="%g", key=f"{p}cap",
            help="Cap on passes over each group; enforced by moving the excess to other groups.",
        )  # fmt: skip
    orders = list(ORDERS) if quality else ["shuffled"]
    order = c4.selectbox("Document order", orders, format_func=ORDERS.get, key=f"{p}order")
    order_column = None
    if order != "shuffled":
        order_column = st.selectbox("Order by", list(quality), key=f"{p}order_col")
    weights = mixture_strategies.weights_for(
        p, strategy, counts=counts, budget=int(budget), flt=flt, group_by=group_by,
        target=target, max_epochs=float(cap),
    )  # fmt: skip
    if weights is None:
        return None
    if strategy != "manual":  # where the sliders start when switching to "by hand"
        st.session_state[f"{p}last_weights"] = dict(weights)
    tokens = dict(zip(counts["group"], counts["tokens"]))
    try:
        if cap > 0:
            weights = apply_caps(weights, tokens, int(budget), max_epochs=float(cap))
        spec = mb.PhaseSpec(
            name,
            int(budget),
            weights,
            order=order,
            order_column=order_column,
            max_epochs=float(cap) or None,
        )
        plan = mb.plan_for(counts, spec)
    except (MixtureError, MixscopeError) as exc:
        st.error(mixture_plan.plain(exc))
        return None
    mixture_plan.plan_view(p, plan, kl=mixture_plan.kl_for(target, dict(weights)))
    return spec
