"""Exporters from a manifest to training-framework configs, registered by name in :data:`EXPORTERS`.

| name | consumer | weight basis written |
|---|---|---|
| ``megatron`` | Megatron-LM ``--data-path`` / data-args file | tokens (samples of seq_length) |
| ``gpt-neox`` | GPT-NeoX ``train_data_paths`` + ``train_data_weights`` | tokens (always explicit) |
| ``olmo-core`` | ``SourceMixtureDatasetConfig`` | tokens, ratios sum to exactly 1 |
| ``mosaic-streaming`` | ``streaming.Stream(proportion=...)`` | samples: w / mean_doc_tokens |
| ``hf-datasets`` | ``interleave_datasets(probabilities=...)`` | examples: w / mean_doc_tokens |
| ``litdata`` | ``CombinedStreamingDataset(weights=...)`` | items: w / mean_doc_tokens |
| ``nanotron`` | ``data_stages[].data.dataset.dataset_folder`` | tokens (samples of seq_len + 1) |
"""

from __future__ import annotations

from typing import Any

from analytics.mixture.manifest import Manifest

from . import gpt_neox, hf_datasets, litdata, megatron, mosaic_streaming, nanotron, olmo_core  # noqa: F401  (registration)
from ._common import Export, write_export
from ._registry import EXPORTERS, register_exporter


def export_manifest(manifest: Manifest, fmt: str, **options: Any) -> Export:
    """Run the exporter registered as ``fmt`` (see :data:`EXPORTERS`)."""
    return EXPORTERS.get(fmt)(manifest, **options)


__all__ = ["EXPORTERS", "Export", "export_manifest", "register_exporter", "write_export"]
