"""Hugging Face datasets: ``interleave_datasets(datasets, probabilities, seed, stopping_strategy)``.

Basis: per example. ``interleave_datasets`` picks the next *example* from dataset i with
probability p_i, so token weights are converted: p_g proportional to w_g / mean_doc_tokens_g
(tokens / documents of the group). One dataset per group (its locators are the data files
to load); the JSON lists them in the order of ``probabilities``. ``stopping_strategy``
defaults to ``"all_exhausted"`` (smaller datasets restart; ``"first_exhausted"`` would stop at
the first exhausted dataset and distort the mix).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from analytics.mixture.manifest import Manifest, Phase

from ._common import (
    Export,
    active_groups,
    as_number,
    dump_json,
    exact_decimals,
    export_per_phase,
    group_locators,
    per_document_weights,
    safe_name,
)
from ._registry import register_exporter

BASIS = "examples (documents): p_g ~ w_g / mean_doc_tokens_g"


@register_exporter("hf-datasets")
def export_hf_datasets(
    manifest: Manifest,
    *,
    phase: str | None = None,
    locators: Mapping[str, Sequence[str]] | None = None,
    stopping_strategy: str = "all_exhausted",
    decimals: int = 10,
) -> Export:
    """Arguments for ``datasets.interleave_datasets``, one JSON per phase."""

    def build(pi: int, ph: Phase, notes: list[str]) -> tuple[dict[str, str], dict]:
        groups = active_groups(ph, notes)
        probs = exact_decimals(per_document_weights(ph, notes), decimals=decimals)
        cfg = {
            "datasets": [
                {"group": g.id, "data_files": group_locators(pi, j, g, locators)} for j, g in groups
            ],
            "probabilities": [as_number(p) for p in probs],
            "seed": int(manifest.seed),
            "stopping_strategy": stopping_strategy,
        }
        return {f"{safe_name(ph.name)}.interleave.json": dump_json(cfg)}, cfg

    return export_per_phase(manifest, "hf-datasets", BASIS, phase, build)
