"""Proxy swarms on the Mixtures page: start a swarm as a job (progress per proxy), look at
its runs, fit the regressors and propose under constraints (on a click), save the proposal,
and see validation runs (measured vs predicted)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics.errors import MixscopeError
from analytics.mixture import MixtureError
from analytics.mixture import swarm as sw_lib
from analytics.mixture.propose import LABELS
from analytics.mixture.swarm import SwarmOptions
from analytics.mixture.swarm_fit import FitOptions
from analytics.params import default_of, help_for
from dashboard import state
from dashboard.components.auth import acting_user, require_editor
from dashboard.components.jobs import follow, submit
from dashboard.components.mixture_plan import plain


def _S(name: str):
    return default_of(SwarmOptions, name)


def _fit(name: str, regressor: str, max_epochs: float | None, kl_max: float | None):
    from analytics.mixture.swarm_fit import fit_swarm

    sw = sw_lib.load_swarm(state.workspace().cursor(), name)
    fit = fit_swarm(
        sw, use=regressor, max_epochs=max_epochs, kl_max=kl_max, seed=int(sw.params.get("seed", 0))
    )
    return fit.scores(), fit.comparison, fit.proposal, fit.method_block()


def _so(name: str) -> str:
    return help_for(SwarmOptions, name)


def _start_form(groups_hint: str) -> None:
    with st.expander("Start a proxy swarm (a job)"):
        st.caption(
            "Draws mixtures from a Dirichlet around a prior, materialises each, trains a small "
            "GPT-2-style proxy on each from the same seed, and measures bits per byte on "
            "held-out documents of every group (and on the target). Then fits RegMix, the Data "
            "Mixing Law and a log-linear model and saves the proposed mixture under the swarm's "
            "name."
        )
        form = _form_widgets(groups_hint)
        st.caption(
            plain(
                "Mixtures ~ "
                + sw_lib.sampler_description(form["prior"], float(form["conc"]) or None, 0)
            )
        )
        if st.button("Start swarm", key="mx_sw_go", type="primary"):
            _submit_swarm(form)
    if st.session_state.get("mx_sw_jobs"):
        follow(st.session_state["mx_sw_jobs"][-3:])


def _form_widgets(groups_hint: str) -> dict:
    """The start form's widgets (help and defaults from :class:`SwarmOptions`); their values."""
    c1, c2, c3, c4 = st.columns(4)
    f = {
        "name": c1.text_input("Swarm name", "my-swarm", key="mx_sw_name"),
        "group_by": c2.text_input(
            "Group by", _S("group_by"), key="mx_sw_group_by", help=_so("group_by")
        ),
        "proxies": c3.number_input(
            "Proxies", 4, 512, _S("proxies"), key="mx_sw_proxies", help=_so("proxies")
        ),
        "steps": c4.number_input(
            "Steps per proxy", 1, 100_000, _S("steps"), step=50, key="mx_sw_steps",
            help=_so("steps"),
        ),
    }  # fmt: skip
    c1, c2, c3, c4 = st.columns(4)
    f["target"] = c1.text_input(
        "Target groups (comma-separated; empty = mean over groups)",
        "",
        key="mx_sw_eval",
        help=f"Groups: {groups_hint}",
    )
    f["prior"] = c2.selectbox(
        "Dirichlet prior",
        ["natural", "uniform"],
        key="mx_sw_prior",
        format_func=lambda p: {
            "natural": "token distribution (RegMix's authors)",
            "uniform": "uniform",
        }[p],
        help=_so("prior"),
    )
    f["conc"] = c3.number_input(
        "Concentration (0 = default)",
        0.0,
        1000.0,
        0.0,
        key="mx_sw_conc",
        help=_so("concentration"),
    )
    f["engine"] = c4.selectbox(
        "Engine",
        ["local", "ray"],
        key="mx_sw_engine",
        format_func=lambda e: {"local": "local processes", "ray": "Ray (a task per proxy)"}[e],
        help=_so("engine"),
    )
    c1, _c2, _c3, _c4 = st.columns(4)
    if f["engine"] == "local":
        f["workers"] = c1.number_input(
            "Local processes", 1, 64, _S("workers"), key="mx_sw_workers", help=_so("workers")
        )
        f["address"] = ""
    else:
        f["workers"] = 1
        f["address"] = c1.text_input(
            "Ray address (empty = a local Ray)", "", key="mx_sw_ray", help=_so("ray_address")
        )
    return f


def swarm_job_args(f: dict) -> list[str]:
    """The ``mixscope`` arguments of the start form's values."""
    args = [
        "mix",
        "swarm",
        f["name"],
        "--group-by",
        f["group_by"],
        "--proxies",
        str(int(f["proxies"])),
        "--steps",
        str(int(f["steps"])),
        "--prior",
        f["prior"],
        "--workers",
        str(int(f["workers"])),
        "--engine",
        f["engine"],
    ]
    if f["engine"] == "ray" and f["address"].strip():
        args += ["--ray-address", f["address"].strip()]
    if float(f["conc"]) > 0:
        args += ["--concentration", str(float(f["conc"]))]
    if f["target"].strip():
        args += ["--eval", f["target"].strip()]
    return args


def _submit_swarm(f: dict) -> None:
    if not require_editor("start proxy swarms"):
        return
    try:
        sw_lib.check_name(f["name"])
    except MixtureError as exc:
        st.error(plain(exc))
        return
    job = submit("mix-swarm", swarm_job_args(f))
    st.session_state.setdefault("mx_sw_jobs", []).append(job.id)
    st.success(plain(f"Queued job {job.id}: swarm {f['name']}"))


def swarm_panel(groups_hint: str = "") -> None:
    st.subheader("Proxy swarms: let mixscope fit the mixture")
    _start_form(groups_hint)
    cur = state.workspace().cursor()
    swarms = sw_lib.list_swarms(cur)
    if swarms.empty:
        st.caption("No proxy swarm yet in this workspace.")
        return
    name = st.selectbox("Swarm", list(swarms["name"]), key="mx_sw_pick")
    try:
        sw = sw_lib.load_swarm(cur, name)
    except MixtureError as exc:
        st.error(plain(exc))
        return
    _runs_table(sw)
    settings = _fit_settings(name)
    got = st.session_state.get("mx_sw_result")
    if not got or got[0] != settings:
        st.info("Press **Fit and propose** for these settings.")
    else:
        _show_fit(sw, name, settings, got[1])
    _validation(sw)


def _runs_table(sw) -> None:
    """The swarm in one line, then its runs (objective and weights), best first."""
    runs = sw.swarm_runs()
    obj = sw.objective_values()
    p = sw.params
    st.caption(
        plain(
            f"{len(runs)} proxy runs over {len(sw.groups)} groups by {sw.group_by}, "
            f"{sw.budget:,} tokens each; objective: mean of {', '.join(sw.objective)} (bits per "
            f"byte, lower is better). Mixtures ~ {p.get('sampler', sw.source)}."
            + (
                f" Proxy: {p['config']['n_layer']} layers x {p['config']['n_embd']}, "
                f"{p['config']['steps']} steps, seed {p.get('seed')}."
                if "config" in p
                else ""
            )
        )
    )
    table = pd.DataFrame(sw.weight_matrix(), columns=sw.groups)
    table.insert(0, "objective", obj)
    table.insert(0, "run", runs["run_id"].tolist())
    st.dataframe(table.sort_values("objective"), hide_index=True, key="mx_sw_runs")


def _fit_settings(name: str) -> tuple:
    """The fit's widgets and button; returns (swarm, regressor, max epochs, KL bound)."""
    c1, c2, c3, c4 = st.columns(4)
    names = {
        "auto": "regressors with held-out R² > 0 (else best Spearman)",
        "mean": "mean of all regressors",
        **LABELS,
    }
    reg = c1.selectbox(
        "Minimise",
        list(names),
        key="mx_sw_reg",
        format_func=names.get,
        help=help_for(FitOptions, "regressor"),
    )
    me = c2.number_input(
        "Max epochs per group (0 = none)",
        0.0,
        1000.0,
        0.0,
        key="mx_sw_me",
        help=help_for(FitOptions, "max_epochs"),
    )
    klm = c3.number_input(
        "KL bound to natural, nats (0 = none)",
        0.0,
        50.0,
        0.0,
        key="mx_sw_kl",
        help=help_for(FitOptions, "kl_max"),
    )
    c4.write("")
    settings = (name, reg, float(me) or None, float(klm) or None)
    if c4.button("Fit and propose", key="mx_sw_fit", type="primary"):
        try:
            with st.spinner("Fitting three regressors and searching the constrained simplex…"):
                fit = state.memo(_fit, *settings, key=(state.snapshot_key(), settings))
                st.session_state["mx_sw_result"] = (settings, fit)
        except (MixtureError, MixscopeError) as exc:
            st.error(plain(exc))
    return settings


def _show_fit(sw, name: str, settings: tuple, result: tuple) -> None:
    """Fit quality, predicted objectives, the proposal and its save button."""
    scores, comparison, proposal, block = result
    st.markdown("**Fit quality** (5-fold cross-validation, held-out predictions)")
    st.dataframe(scores, hide_index=True, key="mx_sw_scores")
    st.markdown(
        "**Predicted objective** for the proposal and the usual baselines; the "
        "spread is max - min across regressors"
    )
    used = ", ".join(block["params"]["regressors_used"])
    st.caption(plain(f"Minimised: the mean prediction of {used}."))
    comp = comparison.assign(spread=comparison["max"] - comparison["min"])
    st.dataframe(comp.drop(columns=["min", "max"]), hide_index=True, key="mx_sw_comparison")
    wt = pd.DataFrame(
        {
            "group": list(proposal),
            "weight": list(proposal.values()),
            "natural": sw.natural.tolist(),
        }
    )
    st.dataframe(wt.sort_values("weight", ascending=False), hide_index=True, key="mx_sw_proposal")
    if st.button(f"Save the proposal as mixture {name}", key="mx_sw_save"):
        if require_editor("save mixtures"):
            _save_proposal(sw, name, settings)


def _save_proposal(sw, name: str, settings: tuple) -> None:
    from analytics.mixture.swarm_fit import fit_swarm, save_proposal

    try:
        fit = fit_swarm(
            sw,
            use=settings[1],
            max_epochs=settings[2],
            kl_max=settings[3],
            seed=int(sw.params.get("seed", 0)),
        )
        v = save_proposal(state.workspace(), fit, name, saved_by=acting_user())
        st.success(
            plain(
                f"Saved {name}@{v}. Validate it with `mixscope mix "
                f"validate-proxy {name}@{v}` or the button below."
            )
        )
    except (MixtureError, MixscopeError) as exc:
        st.error(plain(exc))


def _validation(sw) -> None:
    """Stored validation runs, and (for a swarm trained here) a button to start more."""
    val = sw.runs[sw.runs["kind"] == "validate"]
    if not val.empty:
        st.markdown(
            "**Validation runs** (measured objective of proxies trained on saved "
            "proposals and baselines)"
        )
        vt = pd.DataFrame(
            {
                "mixture": val["mixture"],
                "trained on": val["label"],
                "seed": val["seed"],
                "measured": [
                    sum(m[c] for c in sw.objective) / len(sw.objective) for m in val["metrics"]
                ],
            }
        )
        st.dataframe(vt, hide_index=True, key="mx_sw_validation")
    if sw.source == "trained":
        ref = st.text_input("Validate a saved proposal (NAME@VERSION)", "", key="mx_sw_vref")
        if st.button("Validate with proxies (a job)", key="mx_sw_validate") and ref.strip():
            if require_editor("start validation runs"):
                job = submit(
                    "mix-validate-proxy", ["mix", "validate-proxy", ref.strip(), "--seeds", "0,1"]
                )
                st.session_state.setdefault("mx_sw_jobs", []).append(job.id)
                st.success(plain(f"Queued job {job.id}"))
