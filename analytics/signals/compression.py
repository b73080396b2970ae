"""Information density: compression ratio = compressed bytes / raw UTF-8 bytes.

Lower means more redundant (repeated boilerplate, lists of near-identical lines); natural
prose is typically ~0.35-0.5 with zlib level 6, random strings approach (or exceed) 1.
Empty texts get null. `method` is "zlib" (stdlib, default) or "zstd" (package zstandard).
"""

from __future__ import annotations

import zlib

import pyarrow as pa

from analytics.signals.base import Column, Signal, SignalError, lazy_import, texts_of
from analytics.signals.registry import register


@register
class Compression(Signal):
    name = "compression"
    description = "compression ratio (compressed / raw bytes): lower = more redundant"
    params_doc = {
        "method": ("zlib", "'zlib' or 'zstd'"),
        "level": (6, "compression level"),
    }
    columns = (
        Column("compression_ratio", "DOUBLE", "compressed bytes / raw UTF-8 bytes"),
        Column("raw_bytes", "BIGINT", "UTF-8 bytes of the text"),
    )

    def validate(self) -> None:
        if self.params["method"] not in ("zlib", "zstd"):
            raise SignalError("compression: parameter method must be 'zlib' or 'zstd'")

    def compute(self, batch: pa.Table) -> pa.Table:
        level = int(self.params["level"])
        if self.params["method"] == "zstd":
            zstd = lazy_import("zstandard", "zstandard", "compression method 'zstd'")
            compress = zstd.ZstdCompressor(level=level).compress
        else:

            def compress(data: bytes) -> bytes:
                return zlib.compress(data, level)

        ratios, sizes = [], []
        for text in texts_of(batch):
            raw = text.encode("utf-8", errors="surrogatepass")
            sizes.append(len(raw))
            ratios.append(len(compress(raw)) / len(raw) if raw else None)
        return self._result(batch, {"compression_ratio": ratios, "raw_bytes": sizes})
