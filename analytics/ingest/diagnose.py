"""Bounded checks of input files, and the exact file/line behind a reader failure.

`check_file` runs before DuckDB reads a local file: one streaming pass over the
(decompressed) bytes that refuses decompression bombs, truncated archives and lines longer
than the record limit, in bounded memory, with 1-based physical line numbers (blank lines
count). The `first_*` helpers run only after a reader has refused a file (its own line
numbers can be off by the header, by blank lines or by one), so streaming through the file
here costs nothing on the happy path.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

from analytics.errors import IngestError
from analytics.ingest.limits import EXPANSION_FLOOR, IngestLimits, human

COMPRESSED = (".gz", ".zst", ".zstd")


def open_text_bytes(path: Path):
    """A binary stream of the decompressed content of `path` (.gz, .zst or plain)."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith((".zst", ".zstd")):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb")))
    return open(path, "rb")


def _limits(limits: IngestLimits | None) -> IngestLimits:
    return limits if limits is not None else IngestLimits.from_env()


def _too_long(path: Path, line: int, limits: IngestLimits) -> IngestError:
    return IngestError(
        f"{path}: line {line}: a record longer than the limit of "
        f"{human(limits.max_record_bytes)}; split it, or raise the limit "
        f"({IngestLimits.how('max_record_bytes')})."
    )


class _LineMeter:
    """Counts lines of a byte stream fed in pieces and refuses one longer than the limit,
    with C-speed work per piece (pieces are at most `step` <= the limit, so only the line
    that straddles a piece boundary can be too long)."""

    def __init__(self, path: Path, limits: IngestLimits):
        self.path, self.limits = path, limits
        self.max = limits.max_record_bytes
        self.step = min(1 << 20, self.max)
        self.line = 1
        self.cur = 0

    def feed(self, data: bytes) -> None:
        for i in range(0, len(data), self.step):
            piece = data[i : i + self.step]
            n = piece.count(b"\n")
            if n == 0:
                self.cur += len(piece)
            else:
                if self.cur + piece.find(b"\n") > self.max:
                    raise _too_long(self.path, self.line, self.limits)
                self.line += n
                self.cur = len(piece) - piece.rfind(b"\n") - 1
            if self.cur > self.max:
                raise _too_long(self.path, self.line, self.limits)


def _bomb_check(path: Path, compressed: int, expanded: int, limits: IngestLimits) -> None:
    ratio, cap = limits.max_expansion_ratio, limits.max_expanded_bytes
    if expanded > cap or (expanded > EXPANSION_FLOOR and expanded > ratio * compressed):
        raise IngestError(
            f"{path}: refusing a suspected decompression bomb ({compressed:,} bytes expand to "
            f"more than {expanded:,}; the limits are {ratio}x "
            f"({IngestLimits.how('max_expansion_ratio')}) and {human(cap)} "
            f"({IngestLimits.how('max_expanded_bytes')}))."
        )


def _chunks(path: Path, limits: IngestLimits) -> Iterator[bytes]:
    """The decompressed content of `path` in pieces of at most 1 MiB, refusing bombs and
    truncated or corrupt archives."""
    name = path.name.lower()
    size = path.stat().st_size
    expanded = 0
    try:
        if name.endswith(".gz"):
            with open(path, "rb") as fh:
                d = zlib.decompressobj(wbits=31)
                while chunk := fh.read(1 << 16):
                    while chunk:
                        out = d.decompress(chunk, 1 << 20)
                        expanded += len(out)
                        _bomb_check(path, size, expanded, limits)
                        yield out
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
                        out = obj.decompress(chunk)
                        expanded += len(out)
                        _bomb_check(path, size, expanded, limits)
                        yield out
                        chunk = obj.unused_data if obj.eof else b""
            if not obj.eof:
                raise IngestError(f"{path}: truncated zstd archive (the stream ends early).")
        else:
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    yield chunk
    except IngestError:
        raise
    except (OSError, EOFError, zlib.error) as exc:
        raise IngestError(f"{path}: unreadable or corrupt compressed file ({exc}).") from exc
    except Exception as exc:  # zstandard.ZstdError
        raise IngestError(f"{path}: unreadable or corrupt compressed file ({exc}).") from exc


def check_file(path: Path, fmt: str | None, limits: IngestLimits | None = None) -> None:
    """Refuse, in one bounded-memory pass, a decompression bomb, a truncated archive and (for
    line formats: jsonl, csv) a line longer than the record limit."""
    limits = _limits(limits)
    lined = fmt in ("jsonl", "csv")
    if not lined and not path.name.lower().endswith(COMPRESSED):
        return
    meter = _LineMeter(path, limits) if lined else None
    for chunk in _chunks(path, limits):
        if meter:
            meter.feed(chunk)


def check_compressed(path: Path, limits: IngestLimits | None = None) -> None:
    """Raise IngestError if a .gz/.zst file is truncated, corrupt or a decompression bomb."""
    check_file(path, None, limits)


def iter_lines(path: Path, limits: IngestLimits | None = None) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, bytes without the newline) of every physical line, blank ones
    included, never holding more than one record's worth of bytes."""
    limits = _limits(limits)
    buf = b""
    line = 1
    for chunk in _chunks(path, limits):
        buf += chunk
        start = 0
        while (i := buf.find(b"\n", start)) >= 0:
            if i - start > limits.max_record_bytes:
                raise _too_long(path, line, limits)
            yield line, buf[start:i]
            line += 1
            start = i + 1
        buf = buf[start:]
        if len(buf) > limits.max_record_bytes:
            raise _too_long(path, line, limits)
    if buf:
        yield line, buf


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


def json_depth(raw: bytes, stop: int | None = None) -> int:
    """Nesting depth of arrays/objects in one JSON text (a flat object is 1), without
    recursion; counting stops once past `stop`."""
    brackets = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", raw))
    depth = deepest = 0
    for c in brackets:
        if c in (91, 123):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop is not None and deepest > stop:
                    break
        else:
            depth -= 1
    return deepest


def _too_deep(path: Path, line: int, limits: IngestLimits) -> str:
    return (
        f"nested more than {limits.max_json_depth} levels deep (arrays/objects); flatten "
        f"it, or raise the limit ({IngestLimits.how('max_json_depth')})"
    )


def first_too_deep_line(path: Path, limits: IngestLimits | None = None) -> int | None:
    """1-based line of the first JSONL record nested deeper than the limit, or None."""
    limits = _limits(limits)
    for i, raw in iter_lines(path, limits):
        if json_depth(raw, stop=limits.max_json_depth) > limits.max_json_depth:
            return i
    return None


def depth_error(path: Path, line: int | None, limits: IngestLimits, column: str | None = None):
    where = f"line {line}" if line else f"column {column!r}" if column else "a record"
    return IngestError(f"{path}: {where}: {_too_deep(path, line or 0, limits)}.")


def first_bad_utf8_line(path: Path, limits: IngestLimits | None = None) -> int | None:
    """1-based line number of the first line that is not valid UTF-8, or None."""
    for i, line in iter_lines(path, limits):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return i
    return None


def first_bad_json_line(path: Path, limits: IngestLimits | None = None) -> tuple[int, str] | None:
    """(line, reason) of the first JSONL line that is not a JSON object of valid Unicode
    within the depth limit, or None."""
    limits = _limits(limits)
    for i, raw in iter_lines(path, limits):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            return i, "bytes that are not valid UTF-8"
        if not line.strip():
            continue
        if json_depth(raw, stop=limits.max_json_depth) > limits.max_json_depth:
            return i, _too_deep(path, i, limits)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            return i, f"invalid JSON ({exc.msg} at column {exc.colno})"
        except RecursionError:
            return i, _too_deep(path, i, limits)
        if not isinstance(obj, dict):
            return i, f"expected a JSON object, found {type(obj).__name__}"
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return i, (
                "a \\u escape of a lone UTF-16 surrogate (half of a pair), which is not "
                "valid Unicode text"
            )
    return None


def first_jsonl_line_missing(
    path: Path, field: str, limits: IngestLimits | None = None
) -> int | None:
    """1-based line of the first JSONL record whose `field` is missing or null."""
    for i, raw in iter_lines(path, limits):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return i
        if not isinstance(obj, dict) or obj.get(field) is None:
            return i
    return None
