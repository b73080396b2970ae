"""Concurrent browser sessions against a running dashboard (used by bench/ and tests/).

Each session is a separate browser context (its own Streamlit session over its own
websocket) doing something different — Overview, Explore with its own source filter, SQL
with its own query — and checking that what it sees is its own answer (no state leaking
between sessions). Latency is time from navigation to the page's expected number rendering.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from urllib.parse import quote


@dataclass
class LoadResult:
    sessions: int
    rounds: int
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        xs = sorted(self.latencies_s)
        return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]

    def summary(self) -> str:
        lat = self.latencies_s
        return (
            f"{self.sessions} sessions x {self.rounds} rounds: {len(lat)} page loads, "
            f"{len(self.errors)} errors; latency p50 {self.percentile(0.5):.2f}s "
            f"p90 {self.percentile(0.9):.2f}s p99 {self.percentile(0.99):.2f}s "
            f"max {max(lat, default=float('nan')):.2f}s mean "
            f"{statistics.fmean(lat) if lat else float('nan'):.2f}s"
        )


async def _session(browser, url: str, i: int, task: dict, rounds: int, res: LoadResult):
    ctx = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await ctx.new_page()
    try:
        for r in range(rounds):
            t0 = time.perf_counter()
            await page.goto(f"{url}{task['path']}", wait_until="domcontentloaded", timeout=180_000)
            await page.wait_for_selector(task["selector"], timeout=180_000)
            await page.wait_for_function(
                """([sel, want]) => [...document.querySelectorAll(sel)]
                       .some(e => e.innerText.includes(want))""",
                arg=[task["selector"], task["expect"]],
                timeout=180_000,
            )
            res.latencies_s.append(time.perf_counter() - t0)
            if await page.locator('[data-testid="stException"]').count():
                res.errors.append(f"session {i} round {r}: exception box on {task['path']}")
    except Exception as exc:  # noqa: BLE001 - every failure is a counted error
        res.errors.append(f"session {i} ({task['path']}): {type(exc).__name__}: {exc}"[:300])
    finally:
        await ctx.close()


def build_tasks(cursor, n: int) -> list[dict]:
    """n different things to do, each with the number that proves it saw its own answer."""
    from analytics import overview
    from analytics.filters import DocFilter

    sources = overview.facet_values(cursor, "source")
    total = overview.totals(cursor)
    tasks = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            tasks.append(
                {
                    "path": "/",
                    "selector": '[data-testid="stMetricValue"]',
                    "expect": f"{int(total['documents']):,}",
                }
            )
        elif kind == 1:
            src = sources[i % len(sources)]
            want = overview.totals(cursor, DocFilter(source=(src,)))
            tasks.append(
                {
                    "path": f"/explore?src={quote(src)}",
                    "selector": '[data-testid="stMetricValue"]',
                    "expect": f"{int(want['documents']):,}",
                }
            )
        else:
            src = sources[(i * 7) % len(sources)]
            sql = f"SELECT count(*) AS n_{i} FROM documents WHERE source = '{src}'"
            n_src = None
            del n_src
            tasks.append(
                {
                    "path": f"/sql?sql={quote(sql)}",
                    "selector": '[data-testid="stCaptionContainer"]',
                    "expect": "1 rows",
                }
            )
    return tasks


async def run_load(url: str, tasks: list[dict], *, rounds: int, chromium: str, flags: list[str]):
    from playwright.async_api import async_playwright

    res = LoadResult(sessions=len(tasks), rounds=rounds)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=flags, headless=True)
        try:
            await asyncio.gather(
                *(_session(browser, url, i, t, rounds, res) for i, t in enumerate(tasks))
            )
        finally:
            await browser.close()
    return res
