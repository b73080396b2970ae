"""LitData: ``CombinedStreamingDataset(datasets, weights, seed, iterate_over_all=False)``.

Basis: per item. An item is one document when the data was optimised one document per item
(default, ``per="document"``: p_g proportional to w_g / mean_doc_tokens_g) or a fixed block of
tokens with ``TokensLoader`` (``per="token-block"``: token weights unchanged).
``iterate_over_all=False`` is required for the weights to apply. One JSON per phase; one
``StreamingDataset(input_dir=...)`` per locator (a group's weight split equally over them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from analytics.mixture.manifest import Manifest, Phase

from ._common import (
    Export,
    as_number,
    basis_weights,
    check_per,
    dump_json,
    export_per_phase,
    safe_name,
    weighted_locators,
)
from ._registry import register_exporter

BASIS = "items (documents unless per='token-block'): p_g ~ w_g / mean_doc_tokens_g"


@register_exporter("litdata")
def export_litdata(
    manifest: Manifest,
    *,
    phase: str | None = None,
    locators: Mapping[str, Sequence[str]] | None = None,
    per: Literal["document", "token-block"] = "document",
    decimals: int = 10,
) -> Export:
    """Arguments for ``litdata.CombinedStreamingDataset``, one JSON per phase."""
    check_per(per)

    def build(pi: int, ph: Phase, notes: list[str]) -> tuple[dict[str, str], dict]:
        base = basis_weights(ph, per, notes)
        rows = weighted_locators(pi, ph, base, locators, notes, decimals)
        cfg = {
            "datasets": [{"group": gid, "input_dir": loc} for gid, loc, _ in rows],
            "weights": [as_number(w) for _, _, w in rows],
            "seed": int(manifest.seed),
            "iterate_over_all": False,
        }
        return {f"{safe_name(ph.name)}.litdata.json": dump_json(cfg)}, cfg

    return export_per_phase(manifest, "litdata", BASIS, phase, build)
