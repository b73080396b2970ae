"""Errors of the embedding package."""

from __future__ import annotations

from analytics.errors import MixscopeError


class EmbedError(MixscopeError):
    """A model cannot be loaded, a sample or an embedding set is inconsistent, and so on."""
