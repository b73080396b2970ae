"""Builders of the small fixture workspaces that several test packages share (each built once
per session; the fixtures themselves are in tests/conftest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from analytics.workspace import Workspace


def copy_of(src: Path, dst: Path) -> Workspace:
    """A private, writable copy of a fixture workspace (without its job queue and lock)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("jobs", ".write.lock"))
    return Workspace.open(dst)
