"""analytics.ray_hook: after the worker setup hook, importing fsspec's HTTP filesystem from
many threads at once gives every thread the same outcome (the class, or ModuleNotFoundError
where aiohttp is missing), never the half-initialised ImportError of ray-project/ray#52327."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.conftest import ROOT

PROBE = textwrap.dedent(
    """
    import json, sys, threading
    from analytics.ray_hook import setup_worker
    setup_worker()
    outcomes = []
    def imp():
        try:
            from fsspec.implementations.http import HTTPFileSystem  # noqa: F401
            outcomes.append("ok")
        except ImportError as exc:
            outcomes.append(type(exc).__name__)
    threads = [threading.Thread(target=imp) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"outcomes": outcomes, "fsspec": "fsspec" in sys.modules,
                      "settled": "fsspec.implementations.http" in sys.modules}))
    """
)


def test_setup_worker_settles_the_http_import():
    r = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["fsspec"] and got["settled"]
    assert len(got["outcomes"]) == 16 and len(set(got["outcomes"])) == 1
    assert got["outcomes"][0] in ("ok", "ModuleNotFoundError")


def test_runtime_env_names_the_hook_and_keeps_the_rest():
    from analytics.ray_hook import HOOK, runtime_env

    assert runtime_env() == {"worker_process_setup_hook": HOOK}
    env = runtime_env({"env_vars": {"A": "1"}})
    assert env == {"env_vars": {"A": "1"}, "worker_process_setup_hook": HOOK}
