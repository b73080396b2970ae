"""Signals, Concepts, Contamination and Explore's signal filters in a real browser."""

from __future__ import annotations

import json
import shutil

import pytest

from analytics.filters import DocFilter
from analytics.ingest import ingest
from analytics.workspace import Workspace
from tests.browser.conftest import no_exception, serve, shoot, wait_count, wait_ready
from tests.workspaces.signals import signals_path

pytestmark = pytest.mark.browser

HOSTILE = (
    "Breaking news <script>window.__pwned = 1</script> <b>bold claim</b> the committee "
    "agreed today that every single visitor to the old museum must sign the guest book "
    "before entering the main gallery on the second floor of the building"
)
COPIED = "every single visitor to the old museum must sign the guest book before entering"


@pytest.fixture(scope="module")
def signals_server(tmp_path_factory):
    """The small signals workspace plus one document carrying HTML (for the highlight)."""
    d = tmp_path_factory.mktemp("signals_browser")
    shutil.copytree(signals_path(tmp_path_factory), d / "ws")
    src = d / "hostile.jsonl"
    src.write_text(json.dumps({"id": "news<1>", "text": HOSTILE}) + "\n")
    ws = Workspace(d / "ws")
    ingest(ws, [str(src)], source="hostile-news")
    yield from serve(ws.path)


def tall(page):
    page.set_viewport_size({"width": 1400, "height": 1600})


def shoot_at(page, locator, name):
    """Scroll the element into view (Streamlit scrolls inside its own container), then shoot."""
    locator.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    shoot(page, name)


def plots(page, n=1):
    page.wait_for_function(
        f"() => document.querySelectorAll('.js-plotly-plot').length >= {n}", timeout=60_000
    )


def test_signals_page(signals_server, page):
    tall(page)
    page.goto(f"{signals_server}/signals")
    wait_ready(page)
    plots(page, 2)  # impact + duplicate rates
    no_exception(page)
    assert page.get_by_text("Share of tokens removed per source").count() == 1
    shoot_at(page, page.locator(".js-plotly-plot").first, "signals_impact")
    page.get_by_role("tab", name="Quality vs toxicity").click()
    page.get_by_text("Sample of").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    no_exception(page)
    shoot_at(page, page.get_by_text("Sample of").first, "signals_scatter")
    page.get_by_role("tab", name="Data age").click()
    page.get_by_text("Tokens dated before / after").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    shoot_at(page, page.get_by_text("Evaluation cutoff date").first, "signals_age")


def test_explore_signal_sliders_from_url(signals_server, page, tmp_path_factory):
    c = "signal.c4_quality.c4_pass.eq.true"
    tall(page)
    page.goto(f"{signals_server}/explore?c={c}")
    wait_ready(page)
    plots(page)
    no_exception(page)
    ws = Workspace.open(signals_path(tmp_path_factory))
    flt = DocFilter.from_params({"c": c})
    where, params = flt.where()
    want = ws.cursor().execute(f"SELECT count(*) FROM documents WHERE {where}", params).fetchall()
    values = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    assert f"{want[0][0]:,}" in values
    assert page.get_by_text("C4 rules: passing only").count() == 1
    assert wait_count(page, '[data-testid="stSlider"]', 3) >= 3
    shoot(page, "explore_signals")


def test_concepts_page(signals_server, page):
    tall(page)
    page.goto(f"{signals_server}/concepts")
    wait_ready(page)
    page.get_by_label("Concepts, one per line").fill("python\nfunction\nthe\nzzqxv")
    page.get_by_role("button", name="Count concepts").click()
    page.get_by_text("Counts for 4 concepts").wait_for(timeout=60_000)
    page.get_by_text("Accuracy table: paste it or name its columns").click()
    page.get_by_label("CSV with a header row").fill(
        "concept,accuracy\npython,0.5\nfunction,0.6\nthe,0.9"
    )
    page.keyboard.press("Control+Enter")
    page.get_by_text("R²").first.wait_for(timeout=60_000)
    plots(page, 2)  # rank-frequency + fit
    wait_ready(page)
    no_exception(page)
    shoot_at(page, page.get_by_text("Counts for 4 concepts"), "concepts")


def test_contamination_page_highlights_without_rendering(signals_server, page):
    tall(page)
    page.goto(f"{signals_server}/contamination")
    wait_ready(page)
    page.get_by_label("…or paste evaluation texts, one per line").fill(COPIED + " today")
    page.get_by_role("button", name="Scan now").click()
    page.get_by_text("Flagged documents").first.wait_for(timeout=60_000)
    wait_ready(page)
    plots(page)
    no_exception(page)
    values = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    assert values[:2] == ["1", "0"] and values[3] == "1"
    page.get_by_text("Whole document (plain text)").click()
    block = page.locator('[data-testid="stCode"]', has_text="window.__pwned = 1")
    block.wait_for(timeout=30_000)
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("b:text('bold claim')").count() == 0
    shoot_at(page, page.get_by_text("Inspect a flagged document"), "contamination")
