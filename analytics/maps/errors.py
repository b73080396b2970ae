"""Errors of the maps package."""

from __future__ import annotations

from analytics.errors import MixscopeError


class MapError(MixscopeError):
    """Bad map parameters, missing embeddings or inconsistent inputs."""
