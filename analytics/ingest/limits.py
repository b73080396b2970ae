"""Bounds on what one ingest may read: record size, decompression, nesting depth, spill.

Every limit has a default meant for real corpora, an environment variable (for a server
or a job queue) and a CLI flag of `mixscope ingest` (which wins). A file beyond a limit is
refused before its content is loaded into memory, with a message that names the file, the
line (or row, or column) and the limit, and how to raise it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields, replace

from analytics.errors import IngestError

KIB, MIB, GIB = 1024, 1024**2, 1024**3

#: (field, environment variable, CLI flag)
_NAMES = {
    "max_record_bytes": ("MIXSCOPE_MAX_RECORD_BYTES", "--max-record-bytes"),
    "max_expansion_ratio": ("MIXSCOPE_MAX_EXPANSION_RATIO", "--max-expansion-ratio"),
    "max_expanded_bytes": ("MIXSCOPE_MAX_EXPANDED_BYTES", "--max-expanded-bytes"),
    "max_json_depth": ("MIXSCOPE_MAX_JSON_DEPTH", "--max-json-depth"),
    "max_temp_bytes": ("MIXSCOPE_MAX_TEMP_BYTES", "--max-temp-bytes"),
}
_SIZE_FIELDS = ("max_record_bytes", "max_expanded_bytes", "max_temp_bytes")
#: expansion below this many bytes is never called a bomb, whatever the ratio
EXPANSION_FLOOR = 64 * MIB


@dataclass(frozen=True)
class IngestLimits:
    """Per-ingest bounds (see the module docstring).

    max_record_bytes: longest JSONL/CSV line (decompressed) and longest string value of a
        Parquet/HF row; DuckDB's reader holds several copies of one record in memory.
    max_expansion_ratio / max_expanded_bytes: a compressed file (gzip, zstd, a Parquet
        file's dictionary pages) may expand to at most ratio x its size (once past 64 MiB)
        and at most max_expanded_bytes in all.
    max_json_depth: nesting of arrays/objects in one record (the record itself is level 1).
    max_temp_bytes: DuckDB's spill files of the ingest (inside the workspace's .tmp/).
    """

    max_record_bytes: int = 16 * MIB
    max_expansion_ratio: int = 1000
    max_expanded_bytes: int = 200 * GIB
    max_json_depth: int = 64
    max_temp_bytes: int = 50 * GIB

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> IngestLimits:
        """Defaults, then `$MIXSCOPE_MAX_*` variables, then `overrides` that are not None."""
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            var, flag = _NAMES[f.name]
            raw = overrides.get(f.name)
            origin = flag
            if raw is None and env.get(var):
                raw, origin = env[var], f"${var}"
            if raw is not None:
                values[f.name] = _parse(f.name, raw, origin)
        return replace(cls(), **values)

    @staticmethod
    def how(name: str) -> str:
        var, flag = _NAMES[name]
        return f"{flag} or ${var}"


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": KIB, "m": MIB, "g": GIB, "t": 1024 * GIB}


def parse_size(text: str | int) -> int:
    """`123`, `16MB`, `16MiB`, `1.5G` -> bytes (binary units). ValueError otherwise."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(text)
    unit = (m.group(2) or "").lower()[:1]
    return int(float(m.group(1)) * _UNITS[unit])


def _parse(name: str, raw, origin: str) -> int:
    try:
        value = parse_size(raw) if name in _SIZE_FIELDS else int(str(raw).strip())
    except ValueError:
        kind = "a size such as 16MiB" if name in _SIZE_FIELDS else "a whole number"
        raise IngestError(f"{origin}: {raw!r} is not {kind}.") from None
    if value < 1:
        raise IngestError(f"{origin}: {raw!r} must be at least 1.")
    return value


def human(n: int) -> str:
    """16777216 -> '16 MiB (16,777,216 bytes)'."""
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if n >= size:
            return f"{n / size:g} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"
