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

from analytics.mixture.errors import ExportError
from analytics.mixture.manifest import Manifest

from ._common import (
    Export,
    as_number,
    dump_json,
    exact_decimals,
    per_document_weights,
    safe_name,
    select_phases,
    split_over_locators,
    token_weights,
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
    if per not in ("document", "token-block"):
        raise ExportError(f"per: expected 'document' or 'token-block', got {per!r}")
    notes: list[str] = []
    files: dict[str, str] = {}
    data: dict[str, dict] = {}
    for pi, ph in select_phases(manifest, phase):
        base = per_document_weights(ph, notes) if per == "document" else token_weights(ph, notes)
        rows = split_over_locators(pi, ph, base, locators, notes)
        ws = exact_decimals([w for _, _, w in rows], decimals=decimals)
        cfg = {
            "datasets": [{"group": gid, "input_dir": loc} for gid, loc, _ in rows],
            "weights": [as_number(w) for w in ws],
            "seed": int(manifest.seed),
            "iterate_over_all": False,
        }
        files[f"{safe_name(ph.name)}.litdata.json"] = dump_json(cfg)
        data[ph.name] = cfg
    return Export(format="litdata", files=files, data=data, basis=BASIS, notes=notes)
