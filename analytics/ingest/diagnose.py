"""Error-path helpers: find the exact file/line behind a reader failure.

These run only after DuckDB's reader has refused a file (its own line numbers can be off by
the header or by one), so streaming through the file line by line here costs nothing on the
happy path.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from pathlib import Path

from analytics.errors import IngestError


def open_text_bytes(path: Path):
    """A binary stream of the decompressed content of `path` (.gz, .zst or plain)."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith((".zst", ".zstd")):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb")))
    return open(path, "rb")


MAX_RATIO = 1000  # real text compresses 3-20x; far beyond that is a decompression bomb
MAX_EXPANDED = 200 * 1024**3


def _bomb_check(path: Path, compressed: int, expanded: int) -> None:
    if expanded > MAX_EXPANDED or (expanded > 64 * 1024**2 and expanded > MAX_RATIO * compressed):
        raise IngestError(
            f"{path}: refusing a suspected decompression bomb ({compressed:,} bytes expand to "
            f"more than {expanded:,}; the limits are {MAX_RATIO}x and {MAX_EXPANDED:,} bytes)."
        )


def check_compressed(path: Path) -> None:
    """Raise IngestError if a .gz/.zst file is truncated, corrupt (DuckDB may not notice) or a
    decompression bomb. Streams through the file once with bounded memory."""
    name = path.name.lower()
    size = path.stat().st_size
    expanded = 0
    try:
        if name.endswith(".gz"):
            with open(path, "rb") as fh:
                d = zlib.decompressobj(wbits=31)
                while chunk := fh.read(1 << 20):
                    while chunk:
                        out = d.decompress(chunk, 1 << 24)
                        expanded += len(out)
                        _bomb_check(path, size, expanded)
                        chunk = d.unconsumed_tail
                        if d.eof and d.unused_data:  # concatenated gzip members
                            chunk = d.unused_data + chunk
                            d = zlib.decompressobj(wbits=31)
                if not d.eof:
                    raise IngestError(f"{path}: truncated gzip archive (the stream ends early).")
        elif name.endswith((".zst", ".zstd")):
            import zstandard

            dctx = zstandard.ZstdDecompressor()
            obj = dctx.decompressobj()
            with open(path, "rb") as fh:
                # small input slices bound the memory one decompress() call can expand into
                while chunk := fh.read(8192):
                    while chunk:
                        if obj.eof:
                            obj = dctx.decompressobj()
                        expanded += len(obj.decompress(chunk))
                        _bomb_check(path, size, expanded)
                        chunk = obj.unused_data if obj.eof else b""
            if not obj.eof:
                raise IngestError(f"{path}: truncated zstd archive (the stream ends early).")
    except IngestError:
        raise
    except (OSError, EOFError, zlib.error) as exc:
        raise IngestError(f"{path}: unreadable or corrupt compressed file ({exc}).") from exc
    except Exception as exc:  # zstandard.ZstdError
        raise IngestError(f"{path}: unreadable or corrupt compressed file ({exc}).") from exc


def first_bad_utf8_line(path: Path) -> int | None:
    """1-based line number of the first line that is not valid UTF-8, or None."""
    with open_text_bytes(path) as fh:
        for i, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return i
    return None


def first_bad_json_line(path: Path) -> tuple[int, str] | None:
    """(line, reason) of the first JSONL line that is not a JSON object, or None."""
    with open_text_bytes(path) as fh:
        for i, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                return i, "bytes that are not valid UTF-8"
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                return i, f"invalid JSON ({exc.msg} at column {exc.colno})"
            if not isinstance(obj, dict):
                return i, f"expected a JSON object, found {type(obj).__name__}"
    return None


def first_jsonl_line_missing(path: Path, field: str) -> int | None:
    """1-based line of the first JSONL record whose `field` is missing or null."""
    with open_text_bytes(path) as fh:
        for i, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                return i
            if not isinstance(obj, dict) or obj.get(field) is None:
                return i
    return None
