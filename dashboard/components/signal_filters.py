"""The "Signals" expander of the filter bar: toggles, sliders and multiselects that become
signal Conditions of the shared DocFilter (and so travel in the URL, parameter `c`)."""

from __future__ import annotations

import math

import streamlit as st

from analytics.errors import MixscopeError
from analytics.filters import Condition
from analytics.signals import views
from analytics.signals.filtering import (
    DEDUP_COLUMNS,
    PASS_COLUMNS,
    check_condition,
    describe_condition,
    split_values,
)
from dashboard import state
from dashboard.components.signal_jobs import run_signals_box
from dashboard.components.text import show_warning

#: numeric columns that always get a range slider (when their signal is computed)
SLIDER_COLUMNS = ("compression_ratio", "toxicity_max", "detected_lang_conf")
#: text columns picked from their most frequent values
SELECT_COLUMNS = {"detected_lang": "Detected language", "url_domain": "URL domain"}
TOGGLE_LABELS = {
    "gopher_quality": "Gopher quality: passing only",
    "gopher_repetition": "Gopher repetition: passing only",
    "c4_quality": "C4 rules: passing only",
    "fineweb_quality": "FineWeb rules: passing only",
    "exact_dup": "One per exact-duplicate cluster",
    "near_dup": "One per near-duplicate cluster",
}


def _init(key: str, value) -> None:
    if key not in st.session_state:
        st.session_state[key] = value


def _is_true(value) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes", "pass")


def _step(lo: float, hi: float) -> float:
    """A power of ten giving about 100 steps between lo and hi."""
    span = hi - lo
    return 0.01 if span <= 0 else 10 ** math.floor(math.log10(span / 100))


def _fmt(v: float) -> str:
    return format(v, ".6g")


def _valid(conds: tuple[Condition, ...]) -> tuple[Condition, ...]:
    ok = []
    for c in conds:
        try:
            ok.append(check_condition(c))
        except MixscopeError as exc:
            show_warning(f"Ignoring a signal condition from the link: {exc}")
    return tuple(ok)


def signal_filters(url_conditions: tuple[Condition, ...]) -> tuple[Condition, ...]:
    """Draw the Signals expander (initialised from the URL's signal conditions once per
    session); return the signal conditions it sets."""
    url_conditions = _valid(url_conditions)
    computed = state.cached(views.computed_signals)
    have = set(computed["name"])
    # The label counts the conditions the expander applies. Its widgets are drawn inside it,
    # so the count is known only after them: the count of the last run is shown and, when
    # this run's differs (a widget changed), the script reruns once with the new count.
    shown = st.session_state.get("ex_sig_n_active")
    if shown is None:
        shown = len(url_conditions)
    label = "Signals" + (f" · {shown} condition{'s' * (shown != 1)} active" if shown else "")
    used: set[Condition] = set()
    out: list[Condition] = []
    with st.expander(label, expanded=bool(url_conditions)):
        if not have:
            st.info(
                "No signals are computed for this workspace yet: quality rules, language, "
                "toxicity, compression ratio, duplicates and URL domains appear here once "
                "`mixscope signals run` has scored the documents."
            )
            run_signals_box("ex_sig_run")
            return url_conditions
        low = computed[computed["coverage"] < 1]
        partly = ", ".join(f"{r.name} {r.coverage:.1%}" for r in low.itertuples())
        st.caption(
            "Each condition keeps documents scored at the signal's latest version whose value "
            "passes; documents not yet scored never match."
            + (f" Partly scored: {partly}." if partly else "")
        )
        out += _toggles(have, url_conditions, used)
        out += _selects(have, url_conditions, used)
        out += _sliders(url_conditions, used)
        rest = [c for c in url_conditions if c not in used]
        if rest:
            keep = st.toggle(
                "Keep the link's other conditions: " + "; ".join(map(describe_condition, rest)),
                value=True,
                key="ex_sig_keep_link",
            )
            if keep:
                out += rest
    st.session_state["ex_sig_n_active"] = len(out)
    if len(out) != shown:
        st.rerun()
    return tuple(out)


def _toggles(have, url_conditions, used) -> list[Condition]:
    out = []
    items = [(n, c) for n, c in {**PASS_COLUMNS, **DEDUP_COLUMNS}.items() if n in have]
    cols = st.columns(3)
    for i, (name, col) in enumerate(items):
        cond = Condition("signal", name, col, "eq", "true")
        hits = [
            c
            for c in url_conditions
            if c.name == name and c.column == col and c.op == "eq" and _is_true(c.value)
        ]
        used.update(hits)
        key = f"ex_sig_keep_{name}"
        _init(key, bool(hits))
        if cols[i % 3].toggle(TOGGLE_LABELS.get(name, name), key=key):
            out.append(cond)
    return out


def _selects(have, url_conditions, used) -> list[Condition]:
    out = []
    cols = st.columns(len(SELECT_COLUMNS))
    for (column, label), col in zip(SELECT_COLUMNS.items(), cols, strict=True):
        values = state.cached(views.column_values, column=column)
        if values.empty:
            continue
        hits = [c for c in url_conditions if c.column == column and c.op == "in"]
        used.update(hits)
        picked_url = [v for c in hits for v in split_values(c.value)]
        options = list(dict.fromkeys([*values["value"].astype(str), *picked_url]))
        key = f"ex_sig_in_{column}"
        _init(key, picked_url)
        picked = col.multiselect(label, options, key=key, placeholder="any")
        if picked:
            signal = hits[0].name if hits else _signal_of(column)
            out.append(Condition("signal", signal, column, "in", ",".join(picked)))
    return out


def _signal_of(column: str) -> str:
    from analytics.signals import all_columns

    return all_columns()[column][0]


def _sliders(url_conditions, used) -> list[Condition]:
    stats = state.cached(views.column_stats)
    stats = stats[stats["n"] > 0]
    numeric = {
        r.column: r
        for r in stats.itertuples(index=False)
        if math.isfinite(float(r.min)) and math.isfinite(float(r.max))
    }
    url_cols = [
        c.column for c in url_conditions if c.column in numeric and c.op in ("ge", "gt", "le", "lt")
    ]
    fixed = [c for c in SLIDER_COLUMNS if c in numeric]
    others = [c for c in numeric if c not in fixed]
    _init("ex_sig_more", [c for c in dict.fromkeys(url_cols) if c in others])
    more = st.multiselect(
        "Ranges on more signal columns", others, key="ex_sig_more", placeholder="add a column"
    )
    out = []
    cols = st.columns(3)
    for i, column in enumerate([*fixed, *more]):
        r = numeric[column]
        integer = r.type != "DOUBLE"
        if integer:
            lo, hi, step = int(r.min), int(r.max), 1
        else:
            step = _step(float(r.min), float(r.max))
            lo = round(math.floor(float(r.min) / step) * step, 10)
            hi = round(math.ceil(float(r.max) / step) * step, 10)
        if hi <= lo:
            hi = lo + step
        a, b = lo, hi
        for c in url_conditions:
            if c.column != column or c.op not in ("ge", "gt", "le", "lt"):
                continue
            used.add(c)
            try:
                v = float(c.value)
            except ValueError:
                continue
            v = min(max(v, lo), hi)
            if c.op in ("ge", "gt"):
                a = int(v) if integer else v
            else:
                b = int(v) if integer else v
        key = f"ex_sig_range_{column}"
        _init(key, (a, b))
        val = cols[i % 3].slider(
            column.replace("_", " "), min_value=lo, max_value=hi, step=step, key=key
        )
        if val[0] > lo:
            out.append(Condition("signal", r.signal, column, "ge", _fmt(val[0])))
        if val[1] < hi:
            out.append(Condition("signal", r.signal, column, "le", _fmt(val[1])))
    return out
