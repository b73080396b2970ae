"""What every Ray worker of a mixscope job runs before its first task.

:func:`analytics.engine.ray_connect` names :func:`setup_worker` as the job's
``worker_process_setup_hook``, so every worker process (on every node) settles the import of
fsspec and its HTTP filesystem once, on one thread, before Ray Data's threads race to import
them. Ray Data's ``_is_http_filesystem`` imports ``fsspec.implementations.http`` lazily from
several threads and only expects ``ModuleNotFoundError`` (aiohttp missing); a thread that
finds the module half-initialised by another one gets ``ImportError: cannot import name
'HTTPFileSystem'`` instead and the read fails (ray-project/ray#52327). Kept tiny: it must
import fast on every worker.
"""

from __future__ import annotations

import importlib
import sys

#: the hook as Ray wants it in ``runtime_env`` (a module path, imported on each worker)
HOOK = "analytics.ray_hook.setup_worker"

#: modules the hook imports, in order
PRELOADED = ("fsspec", "fsspec.implementations.http")

#: set by the hook in the worker process that ran it (tests ask a task on the cluster)
RAN = False


def setup_worker() -> None:
    """Import fsspec and its HTTP filesystem now. Where one cannot be imported (the HTTP
    filesystem needs aiohttp), mark it missing in ``sys.modules``: every later import of it,
    from any thread, then fails the same way, with ``ModuleNotFoundError`` (which Ray Data
    reads as "not an HTTP filesystem"), never with a half-initialised module."""
    global RAN
    RAN = True
    for name in PRELOADED:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = None  # type: ignore[assignment]  # import -> ModuleNotFoundError
            return


def runtime_env(extra: dict | None = None) -> dict:
    """A ``runtime_env`` for ``ray.init`` with the hook set (merged into `extra`)."""
    env = dict(extra or {})
    env.setdefault("worker_process_setup_hook", HOOK)
    return env
