"""MosaicML streaming: ``Stream(remote=..., local=..., proportion=...)`` per locator.

Basis: per sample. A stream's ``proportion`` is its share of the *samples* drawn; each
sample is one document unless the data was pre-packed into fixed-length token blocks. The
token weights are therefore converted: p_g proportional to w_g / mean_doc_tokens_g (tokens /
documents of the group), then split equally over a group's locators. Pass
``per="token-block"`` when the shards hold fixed-size token blocks (weights unchanged).
A locator with a URL scheme (s3://, gs://, oci://, hf://, https://) becomes ``remote`` with
``local = <local_root>/<phase>/<stream>``; a plain path becomes ``local``.
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
    dump_yaml,
    export_per_phase,
    is_remote,
    safe_name,
    weighted_locators,
)
from ._registry import register_exporter

BASIS = "samples (documents): p_g ~ w_g / mean_doc_tokens_g unless per='token-block'"


@register_exporter("mosaic-streaming")
def export_mosaic_streaming(
    manifest: Manifest,
    *,
    phase: str | None = None,
    locators: Mapping[str, Sequence[str]] | None = None,
    per: Literal["document", "token-block"] = "document",
    local_root: str = "/tmp/mixscope-streaming",
    decimals: int = 10,
) -> Export:
    """``streams:`` mappings (llm-foundry style), one YAML per phase."""
    check_per(per)

    def build(pi: int, ph: Phase, notes: list[str]) -> tuple[dict[str, str], dict]:
        rows = weighted_locators(pi, ph, basis_weights(ph, per, notes), locators, notes, decimals)
        streams: dict[str, dict] = {}
        for k, (gid, loc, w) in enumerate(rows):
            name = (
                safe_name(gid) if sum(r[0] == gid for r in rows) == 1 else f"{safe_name(gid)}_{k}"
            )
            entry = (
                {"remote": loc, "local": f"{local_root.rstrip('/')}/{safe_name(ph.name)}/{name}"}
                if is_remote(loc)
                else {"local": loc}
            )
            entry["proportion"] = as_number(w)
            streams[name] = entry
        cfg = {"streams": streams, "shuffle_seed": int(manifest.seed)}
        return {f"{safe_name(ph.name)}.streams.yaml": dump_yaml(cfg)}, cfg

    return export_per_phase(manifest, "mosaic-streaming", BASIS, phase, build)
