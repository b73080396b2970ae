"""Files uploaded through the dashboard: safe names, size limits, atomic saves."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import BinaryIO

from analytics.errors import MixscopeError

MAX_UPLOAD_BYTES = 200 * 1024**2
_ALLOWED = re.compile(r"[^A-Za-z0-9._-]+")
ALLOWED_SUFFIXES = (
    ".jsonl",
    ".json",
    ".ndjson",
    ".csv",
    ".tsv",
    ".parquet",
    ".gz",
    ".zst",
    ".zstd",
)


def safe_upload_name(name: str) -> str:
    """A file name with no directory part, no traversal and only [A-Za-z0-9._-]."""
    base = os.path.basename(name.replace("\\", "/"))
    base = _ALLOWED.sub("_", base).lstrip(".")
    if not base or base in (".", ".."):
        raise MixscopeError(f"upload {name!r}: not a usable file name.")
    if not base.lower().endswith(ALLOWED_SUFFIXES):
        raise MixscopeError(
            f"upload {name!r}: expected one of {', '.join(ALLOWED_SUFFIXES)} files."
        )
    return base[:120]


def save_upload(
    workspace_path: str | os.PathLike,
    name: str,
    stream: BinaryIO,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> Path:
    """Write an upload under `<workspace>/uploads/<uuid>/<safe name>` atomically."""
    safe = safe_upload_name(name)
    root = (Path(workspace_path) / "uploads").resolve()
    folder = root / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    dest = folder / safe
    if dest.resolve().parent != folder:
        raise MixscopeError(f"upload {name!r}: refused (resolves outside the uploads folder).")
    tmp = folder / f".{safe}.part"
    written = 0
    try:
        with open(tmp, "wb") as fh:
            while chunk := stream.read(1 << 20):
                written += len(chunk)
                if written > max_bytes:
                    raise MixscopeError(
                        f"upload {name!r}: larger than the limit of {max_bytes:,} bytes; put the "
                        "file on the server and ingest it by path (`mixscope ingest`)."
                    )
                fh.write(chunk)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        folder.rmdir() if not any(folder.iterdir()) else None
        raise
    return dest
