"""The dashboard's only cached wrappers: one Workspace per process, cached query results.

Results are keyed by the workspace snapshot's identity, so a job that publishes a new
snapshot invalidates them and nothing heavy is recomputed on a rerun.
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from analytics import overview
from analytics.errors import MixscopeError
from analytics.filters import DocFilter
from analytics.workspace import Workspace


@st.cache_resource(show_spinner=False)
def _workspace(path: str | None) -> Workspace:
    return Workspace.open(path)


def workspace() -> Workspace:
    """The process-wide workspace (from $MIXSCOPE_WORKSPACE, set by `mixscope serve`)."""
    return _workspace(os.environ.get("MIXSCOPE_WORKSPACE"))


def snapshot_key() -> tuple:
    ws = workspace()
    return (str(ws.path), ws.snapshot_id())


@st.cache_data(max_entries=1024, show_spinner=False)
def _cached(key: tuple, module: str, fn: str, flt_key: str, _flt: DocFilter | None, kw: str):
    import importlib
    import json

    func = getattr(importlib.import_module(module), fn)
    args: dict[str, Any] = json.loads(kw)
    for k, v in list(args.items()):
        if isinstance(v, list):
            args[k] = tuple(v)
    cur = workspace().cursor()
    return func(cur, _flt, **args) if _flt is not None else func(cur, **args)


def cached(func, flt: DocFilter | None = None, **kwargs: Any):
    """Call `func(cursor, flt, **kwargs)` once per (snapshot, filter, arguments)."""
    import json

    return _cached(
        snapshot_key(),
        func.__module__,
        func.__name__,
        repr(flt),
        flt,
        json.dumps(kwargs, sort_keys=True, default=str),
    )


FILTER_KEYS = ("src", "dom", "lang", "from", "to", "tmin", "tmax", "q", "c")


def current_filter() -> DocFilter:
    """The shared document filter, read from the URL (the Explore page writes it)."""
    from analytics.signals.external import definitions, register_definitions

    register_definitions(cached(definitions))  # imported/classifier signals for conditions
    params = {k: st.query_params[k] for k in FILTER_KEYS if k in st.query_params}
    try:
        return DocFilter.from_params(params)
    except MixscopeError as exc:
        st.warning(f"Ignoring the filter in the URL: {exc}")
        return DocFilter()


def set_filter(flt: DocFilter) -> None:
    """Write the filter into the URL so the view can be shared (other params are kept)."""
    wanted = flt.to_params()
    for key in FILTER_KEYS:
        if key in wanted:
            if st.query_params.get(key) != wanted[key]:
                st.query_params[key] = wanted[key]
        elif key in st.query_params:
            del st.query_params[key]


def facets() -> dict[str, list[str]]:
    return {c: cached(overview.facet_values, column=c) for c in ("source", "domain", "lang")}


@st.cache_data(max_entries=16, show_spinner=False)
def _meta(key: tuple) -> dict[str, str]:
    return workspace().meta()


def cached_meta() -> dict[str, str]:
    return _meta(snapshot_key())


def is_demo() -> bool:
    """Whether this workspace is the demo's (pages then show what the demo ships)."""
    from analytics.demo import is_demo_workspace

    return bool(cached(is_demo_workspace))
