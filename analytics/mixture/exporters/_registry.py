"""The exporter registry: format name -> function(manifest, **options) -> Export."""

from __future__ import annotations

from collections.abc import Callable

from analytics.mixture.errors import MixtureError
from analytics.registry import Registry

from ._common import Export

EXPORTERS: Registry[Callable[..., Export]] = Registry("export format", MixtureError)
register_exporter = EXPORTERS.register
