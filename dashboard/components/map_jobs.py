"""Starting `mixscope embed` / `mixscope map` from the Map page (editors) and following them."""

from __future__ import annotations

import streamlit as st

from analytics.maps.cluster import CLUSTERERS
from analytics.maps.compute import MapOptions as Map
from analytics.params import default_of, help_for
from dashboard.components.auth import can_edit
from dashboard.components.jobs import follow_and_refresh, submit

_JOBS = "map_jobs"
DEFAULT_SAMPLE = 5_000


def embed_args(n_docs: int, sample: int = DEFAULT_SAMPLE) -> list[str]:
    """`embed --sample N` (a sample only when the corpus is larger than N)."""
    return ["embed", "--sample", str(sample)] if n_docs > sample else ["embed"]


_CLUSTERER = default_of(Map, "cluster_method")
_SEED = default_of(Map, "random_state")


def map_args(
    *,
    clusterer: str = _CLUSTERER,
    k: int | None = None,
    seed: int = _SEED,
    model: str | None = None,
) -> list[str]:
    """`mixscope map` with the options that differ from the defaults."""
    args = ["map"]
    if model:
        args += ["--model", model]
    if clusterer != _CLUSTERER:
        args += ["--clusterer", clusterer]
    if k:
        args += ["--k", str(int(k))]
    if seed != _SEED:
        args += ["--seed", str(int(seed))]
    return args


def _command_lines(commands: list[list[str]]) -> str:
    return "\n".join("mixscope " + " ".join(c) for c in commands)


def no_map_box(*, n_docs: int, has_embeddings: bool) -> None:
    """What to run to get a map, and for editors a button that queues it."""
    commands = [map_args()] if has_embeddings else [embed_args(n_docs), map_args()]
    st.info(
        "No map yet. A map embeds documents (or a sample of them), projects the embeddings to "
        "2-D with UMAP, clusters them and labels each cluster with its most distinctive terms."
    )
    st.code(_command_lines(commands), language="bash")
    if can_edit():
        label = "Draw the map (queues a job)" if has_embeddings else (
            "Embed a sample and draw the map (queues 2 jobs)"
        )  # fmt: skip
        if st.button(label, key="map_queue", type="primary"):
            queue(commands)
    else:
        st.caption("Viewers cannot start jobs; ask an editor or run the commands.")
    follow_jobs_box()


def new_map_box(*, model_key: str) -> None:
    """Editors: queue another map of the same set with other clustering parameters."""
    with st.expander("Compute another map"):
        c1, c2, c3 = st.columns(3)
        clusterer = c1.selectbox(
            "Clusterer", list(CLUSTERERS), key="map_new_clusterer",
            help=help_for(Map, "cluster_method"),
        )  # fmt: skip
        k = c2.number_input(
            "k (k-means; 0 = sqrt(N/2))", min_value=0, max_value=500, value=0, step=1,
            key="map_new_k", disabled=clusterer != "kmeans", help=help_for(Map, "n_clusters"),
        )  # fmt: skip
        seed = c3.number_input(
            "Seed", min_value=0, value=_SEED, step=1, key="map_new_seed",
            help=help_for(Map, "random_state"),
        )  # fmt: skip
        args = map_args(
            clusterer=clusterer, k=int(k) if clusterer == "kmeans" else None, seed=int(seed),
            model=model_key,
        )  # fmt: skip
        st.code(_command_lines([args]), language="bash")
        if can_edit():
            if st.button("Compute (queues a job)", key="map_new_go"):
                queue([args])
        else:
            st.caption("Viewers cannot start jobs; ask an editor or run the command.")


def queue(commands: list[list[str]]) -> None:
    ids: list[str] = []
    for args in commands:  # each step runs after the previous one (embed, then map)
        job = submit(args[0], args, after=ids[-1:])
        ids.append(job.id)
    st.session_state.setdefault(_JOBS, []).extend(ids)
    st.success(f"Queued {len(ids)} job(s): {', '.join(ids)}. Progress below and on the Jobs page.")


def follow_jobs_box() -> None:
    if st.session_state.get(_JOBS):
        follow_map_jobs(st.session_state[_JOBS][-4:])


def follow_map_jobs(job_ids: list[str]) -> None:
    """Live progress; reruns the page once every followed job has finished, so the new map
    shows up without a reload."""
    follow_and_refresh(job_ids, "map_jobs_seen", when="all")
