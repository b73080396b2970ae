"""Ingestion of JSONL (.gz/.zst), Parquet, CSV, Dolma and Hugging Face datasets."""

from analytics.ingest.core import IngestReport, ingest

__all__ = ["IngestReport", "ingest"]
