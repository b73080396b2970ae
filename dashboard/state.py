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


def _name(func) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def _digest(key: Any) -> str:
    import hashlib

    return hashlib.sha256(repr(key).encode()).hexdigest()


@st.cache_data(max_entries=1024, show_spinner=False)
def _cached(snap: tuple, name: str, flt_key: str, kw: str, _func, _flt: DocFilter | None):
    import json

    args: dict[str, Any] = json.loads(kw)
    for k, v in list(args.items()):
        if isinstance(v, list):
            args[k] = tuple(v)
    cur = workspace().cursor()
    return _func(cur, _flt, **args) if _flt is not None else _func(cur, **args)


def cached(func, flt: DocFilter | None = None, **kwargs: Any):
    """Call `func(cursor, flt, **kwargs)` once per (snapshot, function, filter, arguments)."""
    import json

    kw = json.dumps(kwargs, sort_keys=True, default=str)
    return _cached(snapshot_key(), _name(func), repr(flt), kw, func, flt)


@st.cache_data(max_entries=256, show_spinner=False)
def _memo(name: str, key: str, _func, _args: tuple, _kwargs: dict):
    return _func(*_args, **_kwargs)


@st.cache_data(max_entries=8, show_spinner=False)
def _memo_rows(name: str, key: str, _func, _args: tuple, _kwargs: dict):
    return _func(*_args, **_kwargs)


def memo(func, *args: Any, key: Any, rows: bool = False, **kwargs: Any):
    """`func(*args, **kwargs)` once per (function, `key`); `key` names everything the result
    depends on (artefact stamps, the snapshot, the arguments), as plain values. `rows=True`
    for results that grow with the corpus (a map's points): at most 8 of those are kept,
    so the server's memory stays bounded."""
    cache = _memo_rows if rows else _memo
    return cache(_name(func), _digest(key), func, args, kwargs)


@st.cache_resource(max_entries=2, show_spinner=False)
def _memo_large(name: str, key: str, _func, _args: tuple, _kwargs: dict):
    return _func(*_args, **_kwargs)


def memo_large(func, *args: Any, key: Any, **kwargs: Any):
    """Like :func:`memo` for large in-memory objects (an embedding index): shared, not
    copied, and at most two are held."""
    return _memo_large(_name(func), _digest(key), func, args, kwargs)


@st.cache_resource(max_entries=64, show_spinner=False)
def _shared(name: str, key: str, _func, _args: tuple):
    return _func(*_args)


def shared(func, *args: Any):
    """One `func(*args)` for the whole server process (a limiter, loaded secrets)."""
    return _shared(_name(func), _digest(args), func, args)


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
