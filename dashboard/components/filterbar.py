"""The facet filter bar shared by Explore (and any page that narrows the corpus)."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from analytics import overview
from analytics.errors import MixscopeError
from analytics.filters import DocFilter
from dashboard import state
from dashboard.components.signal_filters import signal_filters
from dashboard.components.text import md, show_warning


def filter_caption(flt: DocFilter) -> str:
    if flt.is_empty():
        return "Showing the whole corpus."
    return f"Filtered: {md(flt.describe())}."  # values come from links: never Markdown


def _init(key: str, value) -> None:
    if key not in st.session_state:
        st.session_state[key] = value


def filter_bar() -> DocFilter:
    """Facet widgets (initialised from the URL once per session); returns the filter."""
    url = state.current_filter()
    facets = state.facets()
    bounds = state.cached(overview.ranges)
    _init("ex_source", [v for v in url.source if v in facets["source"]])
    _init("ex_domain", [v for v in url.domain if v in facets["domain"]])
    _init("ex_lang", [v for v in url.lang if v in facets["lang"]])
    _init("ex_q", url.text_contains or "")
    _init("ex_tmin", url.min_tokens or 0)
    _init("ex_tmax", url.max_tokens or 0)
    dmin, dmax = bounds["date_min"], bounds["date_max"]
    has_dates = dmin is not None and dmax is not None
    if has_dates:
        dmin, dmax = _as_date(dmin), _as_date(dmax)
        _init("ex_dates", (url.date_from or dmin, url.date_to or dmax))

    c1, c2, c3 = st.columns(3)
    sources = c1.multiselect("Source", facets["source"], key="ex_source", placeholder="all")
    domains = c2.multiselect("Domain", facets["domain"], key="ex_domain", placeholder="all")
    langs = c3.multiselect("Language", facets["lang"], key="ex_lang", placeholder="all")
    c4, c5, c6, c7 = st.columns([2, 1, 1, 2])
    date_from = date_to = None
    if has_dates:
        picked = c4.date_input(
            "Date range (dated documents)", key="ex_dates", min_value=dmin, max_value=dmax
        )
        if isinstance(picked, tuple) and len(picked) == 2:
            date_from = picked[0] if picked[0] != dmin else None
            date_to = picked[1] if picked[1] != dmax else None
    tmin = c5.number_input("Min tokens", min_value=0, step=10, key="ex_tmin")
    tmax = c6.number_input("Max tokens (0 = no max)", min_value=0, step=100, key="ex_tmax")
    text = c7.text_input("Text contains", key="ex_q", placeholder="case-insensitive substring")
    # signal conditions come from the Signals expander; other capabilities' conditions (map
    # clusters, selections) are kept as the link gave them
    conditions = tuple(c for c in url.conditions if c.kind != "signal" and _usable(c))
    conditions += signal_filters(tuple(c for c in url.conditions if c.kind == "signal"))
    flt = DocFilter(
        source=tuple(sources),
        domain=tuple(domains),
        lang=tuple(langs),
        date_from=date_from,
        date_to=date_to,
        min_tokens=int(tmin) or None,
        max_tokens=int(tmax) or None,
        text_contains=text.strip() or None,
        conditions=conditions,
    )
    state.set_filter(flt)
    return flt


def _as_date(v) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    return dt.date.fromisoformat(str(v)[:10])


def _usable(cond) -> bool:
    """A condition from a link that cannot be resolved is dropped with a warning."""
    try:
        DocFilter(conditions=(cond,)).where()
    except MixscopeError as exc:
        show_warning(f"Ignoring a filter from the link: {exc}")
        return False
    return True
