"""Where outputs may be written: never over a workspace, its database or a folder by accident.

`check_output_dir` is the one check that `mix export --out`, `mix materialize --out` and the
Mixtures page use before anything is written:

* the target may not be a workspace directory, inside one except under its `exports/` folder
  (`<workspace>/exports/<name>`), or a folder that holds a workspace (replacing it would
  delete the workspace);
* it may not be an existing file (the workspace database or any other);
* an existing non-empty directory is replaced only with `overwrite=True`, and then by the
  writer's write-beside-then-swap (the old folder is renamed away only once the new one is
  complete).

A workspace is recognised by its marker files (the database, the writer's lock file), so the
check also protects workspaces other than the one named on the command line.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from analytics.errors import MixscopeError

#: files that only a workspace directory holds
WORKSPACE_MARKERS = ("workspace.json", "catalog.sqlite", "mixscope.duckdb", ".write.lock")
EXPORTS_DIR = "exports"
_SCAN_LIMIT = 20_000  # entries looked at when checking that a folder holds no workspace


class OutputPathError(MixscopeError):
    """An output path that would overwrite a workspace, a file or a folder by accident."""


def _is_workspace(path: Path) -> bool:
    return any((path / m).exists() for m in WORKSPACE_MARKERS)


def _workspaces_above(out: Path, workspaces: list[Path]) -> list[Path]:
    """Workspace directories that are `out` itself or one of its parents."""
    found = [ws for ws in workspaces if out == ws or ws in out.parents]
    found += [p for p in (out, *out.parents) if p not in found and _is_workspace(p)]
    return found


def _holds_workspace(out: Path, workspaces: list[Path]) -> Path | None:
    """A workspace inside the existing directory `out`, if any (bounded scan)."""
    for ws in workspaces:
        if out in ws.parents:
            return ws
    seen = 0
    for root, dirs, files in os.walk(out):
        seen += len(dirs) + len(files)
        if any(m in files for m in WORKSPACE_MARKERS):
            return Path(root)
        if seen > _SCAN_LIMIT:
            break
    return None


def _resolve(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve()


def check_output_path(
    out: str | os.PathLike,
    *,
    workspaces: list[str | os.PathLike] | tuple = (),
    overwrite: bool = False,
    kind: str = "directory",
    option: str = "--out",
) -> Path:
    """Return `out` resolved, or raise OutputPathError saying why it may not be written.

    `kind` is "directory" (an export or materialisation folder) or "file" (a manifest).
    `workspaces` are workspace directories to protect besides those recognised on disk.
    """
    target = _resolve(out)
    known = [_resolve(w) for w in workspaces if w]
    for ws in _workspaces_above(target, known):
        exports = ws / EXPORTS_DIR
        if target == ws:
            raise OutputPathError(
                f"{option} {target}: this is a mixscope workspace; expected a new directory "
                f"outside it or under {exports}/."
            )
        if exports not in target.parents:
            raise OutputPathError(
                f"{option} {target}: inside the workspace {ws}; write outputs outside it or "
                f"under {exports}/."
            )
    if target.exists() or target.is_symlink():
        if kind == "directory" and not target.is_dir():
            raise OutputPathError(
                f"{option} {target}: an existing file; expected a directory that does not exist "
                "yet (or an empty one)."
            )
        if kind == "file" and target.is_dir():
            raise OutputPathError(f"{option} {target}: a directory; expected a file name.")
        if target.is_dir():
            inner = _holds_workspace(target, known)
            if inner is not None:
                raise OutputPathError(
                    f"{option} {target}: holds the mixscope workspace {inner}; replacing it "
                    "would delete the workspace. Expected a new directory."
                )
            if any(target.iterdir()) and not overwrite:
                raise OutputPathError(
                    f"{option} {target}: already exists and is not empty; pass --overwrite to "
                    "replace it, or name a new directory."
                )
    return target


def check_output_dir(
    out: str | os.PathLike,
    *,
    workspaces: list[str | os.PathLike] | tuple = (),
    overwrite: bool = False,
    option: str = "--out",
) -> Path:
    """`check_output_path` for an output directory (export, materialisation)."""
    return check_output_path(
        out, workspaces=workspaces, overwrite=overwrite, kind="directory", option=option
    )


def is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


_REMOTE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_GLOB_CHARS = re.compile(r"[*?\[]")


def check_input_paths(lines: list[str] | tuple[str, ...]) -> list[str]:
    """Server paths named by a user (one per entry) checked before an ingest job gets them:
    each must be an existing file or directory, a glob that matches at least one file, or
    a remote URL (s3://, hf:// ...). The job's arguments put them after `--`, so a line
    such as `--workspace=/elsewhere` can only ever be a (missing) path, never an option."""
    out = []
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if _REMOTE.match(line):
            out.append(line)
            continue
        p = Path(line).expanduser()
        if _GLOB_CHARS.search(line):
            if not p.is_absolute():
                raise OutputPathError(f"{line}: expected an absolute path or glob on the server.")
            anchor = Path(p.anchor)
            matches = [m for m in anchor.glob(str(p.relative_to(anchor))) if m.is_file()]
            if not matches:
                raise OutputPathError(f"{line}: the glob matches no file on the server.")
        elif not p.is_absolute():
            raise OutputPathError(f"{line}: expected an absolute path on the server.")
        elif not (p.is_file() or p.is_dir()):
            raise OutputPathError(
                f"{line}: no such file or directory on the server (expected a file, a dataset "
                "directory or a glob)."
            )
        out.append(str(p))
    return out
