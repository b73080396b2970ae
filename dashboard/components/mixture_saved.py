"""Saved mixtures: the draft being edited, save by name (editors), open from `mix=NAME@VERSION`,
list, duplicate and diff versions, share a link."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from analytics.db import table_exists
from analytics.errors import MixscopeError
from analytics.filters import DocFilter
from analytics.mixture import (
    Manifest,
    MixtureError,
    diff_manifests,
    list_mixtures,
    load_mixture,
    save_mixture,
)
from analytics.mixture import builder as mb
from analytics.mixture.store import parse_ref as store_parse_ref
from dashboard import state
from dashboard.components.auth import acting_user, require_editor
from dashboard.components.mixture_plan import plain

RESTORABLE = ("natural", "uniform", "temperature", "unimax")


@dataclass
class Draft:
    """The mixture as edited on the page; ``manifest()`` builds what would be saved."""

    flt: DocFilter
    group_by: str
    phases: list[mb.PhaseSpec]
    seed: int
    tokenizer: str | None = None  # a name from `mixscope tokenize`; None: the ingest one

    def key(self) -> str:
        return json.dumps(
            {
                "tokenizer": self.tokenizer,
                "filter": self.flt.to_params(),
                "group_by": self.group_by,
                "seed": self.seed,
                "phases": [
                    [
                        s.name,
                        s.budget,
                        {g: round(float(w), 12) for g, w in s.weights.items()},
                        s.order,
                        s.order_column,
                        s.max_epochs,
                        s.method_block()["name"],
                    ]
                    for s in self.phases
                ],
                "snapshot": list(map(str, state.snapshot_key())),
            },
            sort_keys=True,
        )

    def manifest(self) -> Manifest:
        from analytics.tokenize import documents_table, manifest_tokenizer

        cur = state.workspace().cursor()
        return mb.create_manifest(
            cur,
            self.flt,
            group_by=self.group_by,
            phases=self.phases,
            seed=self.seed,
            locator_template=st.session_state.get("mx_locator_template") or "{group}",
            table=documents_table(cur, self.tokenizer),
            tokenizer=manifest_tokenizer(cur, self.tokenizer),
        )


# ----------------------------------------------------------------------------- reading


def _has_table(cur) -> bool:
    return table_exists(cur, "mixtures")


def saved_list(cur) -> pd.DataFrame:
    """Saved versions (empty when the workspace has no mixtures table yet)."""
    if not _has_table(cur):
        return pd.DataFrame(columns=["name", "version", "created_at", "saved_by", "note", "phases"])
    return list_mixtures(cur)


def saved_manifest(cur, *, name: str, version: int | None = None) -> dict:
    """A saved manifest as JSON data (cache-friendly)."""
    return load_mixture(cur, name, version).model_dump(mode="json")


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME@VERSION`` (the library's parser; a bad ref reads as a name)."""
    try:
        return store_parse_ref(ref)
    except MixtureError:
        return (ref or "").strip(), None


def load(ref: str) -> Manifest:
    name, version = parse_ref(ref)
    return Manifest.model_validate(state.cached(saved_manifest, name=name, version=version))


def share_url(ref: str, flt: DocFilter) -> str:
    query = urlencode({"mix": ref, **flt.to_params()})
    try:
        base = str(st.context.url).split("?", 1)[0]
    except Exception:  # no browser context (tests)
        base = "/mixtures"
    return f"{base}?{query}"


# ----------------------------------------------------------------------------- open


def _apply(ref: str, m: Manifest) -> None:
    """Fill the editor's widgets from a saved manifest."""
    ss = st.session_state
    sel = next((g.selection for g in m.phases[0].groups if g.selection is not None), None)
    if sel is not None and sel.group_by:
        ss["mx_group_by"] = sel.group_by
    if sel is not None and sel.filter is not None:
        state.set_filter(DocFilter.from_params(sel.filter))
    ss["mx_seed"] = int(m.seed)
    names = [p.name for p in m.phases][:2]
    ss["mx_phase_names"] = names + (["anneal"] if len(names) == 1 else [])
    ss["mx_anneal"] = len(names) > 1
    for i, ph in enumerate(m.phases[:2]):
        p = f"mx_p{i}_"
        method = ph.groups[0].method
        ss[f"{p}budget"] = int(ph.budget_tokens)
        ss[f"{p}cap"] = float(ph.groups[0].caps.max_epochs or 0.0)
        ss[f"{p}order"] = ph.order if ph.order != "as-is" else "shuffled"
        if ph.order_column:
            ss[f"{p}order_col"] = ph.order_column
        params = method.params
        if method.name in RESTORABLE and not params.get("caps"):
            ss[f"{p}strategy"] = method.name
            if method.name == "temperature":
                t = params.get("temperature", 2.0)
                ss[f"{p}T"] = 1000.0 if t in ("inf", None) else float(t)
                ss[f"{p}T_cap"] = int(params.get("cap") or 0)
            if method.name == "unimax":
                ss[f"{p}unimax_epochs"] = float(params.get("max_epochs", 4.0))
        else:  # weights as saved, editable by hand
            ss[f"{p}strategy"] = "manual"
            ss[f"{p}manual_mode"] = "numbers"
            ss[f"{p}manual_start"] = {g.id: g.weight for g in ph.groups}
            ss[f"{p}manual_origin"] = f"{ref} ({method.name})"
            for k in [k for k in ss if str(k).startswith(f"{p}w_")]:
                del ss[k]
    ss["mx_loaded_ref"] = ref
    ss["mx_save_name"] = ref.split("@", 1)[0]


def open_from_url() -> tuple[str, Manifest] | None:
    """Open `?mix=NAME@VERSION` once per change of the parameter; returns (ref, manifest)."""
    ref = st.query_params.get("mix")
    if not ref:
        return None
    try:
        m = load(ref)
    except (MixtureError, MixscopeError) as exc:
        st.error(plain(f"Cannot open mixture {ref!r}: {exc}"))
        return None
    if st.session_state.get("mx_loaded_ref") != ref:
        _apply(ref, m)
    return ref, m


# ----------------------------------------------------------------------------- save


def save_panel(draft: Draft | None) -> None:
    """Save the draft under a name as a new version (editors only)."""
    st.subheader("Save")
    if not require_editor("save mixtures"):
        return
    c1, c2, c3 = st.columns([2, 3, 1])
    name = c1.text_input("Name", key="mx_save_name", placeholder="e.g. web-heavy-v2")
    note = c2.text_input("Note (optional)", key="mx_save_note")
    c3.write("")
    go = c3.button("Save version", key="mx_save", type="primary", disabled=draft is None)
    if go and draft is not None:
        try:
            if not name.strip():
                raise MixscopeError("give the mixture a name.")
            m = draft.manifest()
            ws = state.workspace()
            with ws.write(job=f"mix save {name.strip()}") as con:
                version = save_mixture(
                    con, name.strip(), m, note=note.strip() or None, saved_by=acting_user()
                )
        except (MixtureError, MixscopeError) as exc:
            st.error(plain(exc))
            return
        ref = f"{name.strip()}@{version}"
        st.session_state["mx_loaded_ref"] = ref
        st.query_params["mix"] = ref
        st.session_state["mx_just_saved"] = ref
    if saved := st.session_state.get("mx_just_saved"):
        st.success(f"Saved {plain(saved)}. Share it:")
        st.code(share_url(saved, draft.flt if draft else DocFilter()), language=None)


# ----------------------------------------------------------------------------- library


def library_panel(opened: tuple[str, Manifest] | None) -> None:
    """Saved mixtures: list, open, duplicate, diff two versions."""
    st.subheader("Saved mixtures")
    saved = state.cached(saved_list)
    if saved.empty:
        st.caption("No saved mixtures yet.")
        return
    refs = [f"{r.name}@{r.version}" for r in saved.itertuples(index=False)]
    st.dataframe(saved, hide_index=True, width="stretch", key="mx_saved_table")
    c1, c2 = st.columns([3, 1])
    pick = c1.selectbox("Open", refs, index=len(refs) - 1, key="mx_open_ref")
    c2.write("")
    if c2.button("Open", key="mx_open"):
        st.query_params["mix"] = pick
        st.session_state.pop("mx_just_saved", None)
        st.rerun()
    if opened is not None:
        ref, m = opened
        st.caption(f"Opened **{plain(ref)}**. Share it:")
        st.code(share_url(ref, state.current_filter()), language=None)
        if can_dup := require_editor("duplicate mixtures"):
            d1, d2 = st.columns([3, 1])
            new = d1.text_input("Duplicate as", key="mx_dup_name", placeholder="new name")
            d2.write("")
            if d2.button("Duplicate", key="mx_dup", disabled=not can_dup):
                try:
                    with state.workspace().write(job=f"mix duplicate {ref}") as con:
                        v = save_mixture(
                            con, new.strip(), m, note=f"duplicate of {ref}", saved_by=acting_user()
                        )
                    st.success(plain(f"Saved {new.strip()}@{v} (a copy of {ref})."))
                except (MixtureError, MixscopeError) as exc:
                    st.error(plain(exc))
    if len(refs) >= 2:
        st.markdown("**Compare two versions**")
        d1, d2 = st.columns(2)
        a = d1.selectbox("A", refs, index=max(0, len(refs) - 2), key="mx_diff_a")
        b = d2.selectbox("B", refs, index=len(refs) - 1, key="mx_diff_b")
        diff = diff_manifests(load(a), load(b))
        changed = diff[diff["status"] != "same"]
        st.caption(f"{len(changed)} of {len(diff)} (phase, group) rows differ.")
        st.dataframe(diff, hide_index=True, width="stretch", key="mx_diff_table")
