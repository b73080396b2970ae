"""GPT-NeoX: YAML ``train_data_paths`` + explicit ``train_data_weights`` per phase.

Basis: NeoX samples sequences of seq_length tokens per the weights, so token weights are
written unchanged. NeoX treats omitted weights as EQUAL (not size-proportional), so the
weights are always written, and ``weight_by_num_documents: false`` is set so NeoX does not
re-weight by document counts. NeoX has no phases: one YAML per phase.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from analytics.mixture.manifest import Manifest, Phase

from ._common import (
    Export,
    as_number,
    dump_yaml,
    export_per_phase,
    safe_name,
    token_weights,
    weighted_locators,
)
from ._registry import register_exporter

BASIS = "tokens (NeoX samples fixed-length sequences; omitted weights would mean equal weights)"


@register_exporter("gpt-neox")
def export_gpt_neox(
    manifest: Manifest,
    *,
    phase: str | None = None,
    locators: Mapping[str, Sequence[str]] | None = None,
    valid_data_paths: Sequence[str] | None = None,
    test_data_paths: Sequence[str] | None = None,
    decimals: int = 10,
) -> Export:
    """GPT-NeoX data config fragments, one YAML per phase."""

    def build(pi: int, ph: Phase, notes: list[str]) -> tuple[dict[str, str], dict]:
        rows = weighted_locators(pi, ph, token_weights(ph, notes), locators, notes, decimals)
        cfg: dict = {
            "train_data_paths": [loc for _, loc, _ in rows],
            "train_data_weights": [as_number(w) for _, _, w in rows],
            "weight_by_num_documents": False,
            "seed": manifest.seed,
        }
        if valid_data_paths is not None:
            cfg["valid_data_paths"] = list(valid_data_paths)
        if test_data_paths is not None:
            cfg["test_data_paths"] = list(test_data_paths)
        return {f"{safe_name(ph.name)}.yml": dump_yaml(cfg)}, cfg

    return export_per_phase(manifest, "gpt-neox", BASIS, phase, build)
