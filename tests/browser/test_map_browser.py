"""Map and Search in a real browser: the WebGL scatter draws its points, a box selection
becomes a filter in the URL, a query lists its nearest documents."""

from __future__ import annotations

import io
import shutil
from urllib.parse import parse_qs, urlparse

import pytest

from analytics.filters import DocFilter
from analytics.workspace import Workspace
from tests.browser.conftest import no_exception, serve, shoot, wait_count, wait_ready
from tests.workspaces.maps import PER_SOURCE, map_path

pytestmark = pytest.mark.browser
N_DOCS = 17 * PER_SOURCE + 17


@pytest.fixture(scope="module")
def map_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("map_browser") / "ws"
    shutil.copytree(map_path(tmp_path_factory), d)
    server = serve(d)
    url = next(server)
    try:
        yield url, Workspace.open(d)
    finally:
        next(server, None)


def points_drawn(page) -> int:
    """Points in the scatter's traces as Plotly holds them in the page."""
    return page.evaluate(
        """() => {
            const gd = document.querySelector('.js-plotly-plot');
            return (gd && gd._fullData || []).reduce((n, t) => n + (t.x ? t.x.length : 0), 0);
        }"""
    )


def points_settle(page, n: int, timeout: int = 60_000) -> int:
    """Wait (up to `timeout` ms) until the scatter holds `n` points; the count at the end.

    A rerun redraws the plot some time after the page looks ready, more so on a busy machine.
    """
    try:
        page.wait_for_function(
            """(n) => {
                const gd = document.querySelector('.js-plotly-plot');
                return (gd && gd._fullData || []).reduce(
                    (k, t) => k + (t.x ? t.x.length : 0), 0) === n;
            }""",
            arg=n,
            timeout=timeout,
        )
    except Exception:  # the assertion on the returned count says what was drawn instead
        pass
    return points_drawn(page)


def coloured_pixels(page, locator) -> int:
    """Pixels of the element's screenshot that are clearly not background (white/grey)."""
    from PIL import Image

    img = Image.open(io.BytesIO(locator.screenshot())).convert("RGB")
    px = img.getdata()
    return sum(1 for r, g, b in px if max(r, g, b) - min(r, g, b) > 60)


def test_map_draws_points_and_a_box_becomes_a_filter(map_server, page):
    url, ws = map_server
    page.set_viewport_size({"width": 1400, "height": 1800})
    page.goto(f"{url}/map")
    wait_ready(page)
    page.wait_for_selector(".js-plotly-plot .gl-container canvas", timeout=60_000)
    no_exception(page)
    assert page.get_by_text(f"all {N_DOCS:,} documents").count() >= 1
    assert points_settle(page, N_DOCS) == N_DOCS
    plot = page.locator(".js-plotly-plot").first
    assert coloured_pixels(page, plot) > 2_000  # the WebGL points really are on the canvas
    shoot(page, "map")

    # box-select the middle of the plot with the modebar's Box Select tool
    plot.hover()
    page.locator('.modebar-btn[data-val="select"]').first.click()
    box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + box["width"] * 0.3, y0 + box["height"] * 0.3, steps=12)
    page.mouse.move(x0 + box["width"] * 0.6, y0 + box["height"] * 0.6, steps=12)
    page.mouse.up()
    page.get_by_text("documents selected").first.wait_for(timeout=60_000)
    wait_ready(page)
    no_exception(page)
    label = page.get_by_text("documents selected").first.inner_text()
    n_selected = int(label.split()[0].replace(",", ""))
    assert 0 < n_selected < N_DOCS
    page.get_by_role("button", name="Use selection as filter").click()
    page.wait_for_function("() => location.search.includes('c=selection.')", timeout=60_000)
    wait_ready(page)
    no_exception(page)
    c = parse_qs(urlparse(page.url).query)["c"][0]
    flt = DocFilter.from_params({"c": c})
    where, params = flt.where()
    n = ws.cursor().execute(f"SELECT count(*) FROM documents WHERE {where}", params).fetchall()
    assert n[0][0] == n_selected
    assert points_settle(page, n_selected) == n_selected  # the map shows only the selection
    shoot(page, "map_selection")


def test_search_lists_nearest_documents(map_server, page):
    url, ws = map_server
    doc_id, text = (
        ws.cursor()
        .execute(
            "SELECT doc_id, text FROM documents "
            "JOIN document_text USING (doc_id) WHERE source = 'bible-kjv' ORDER BY doc_id LIMIT 1"
        )
        .fetchall()[0]
    )
    page.set_viewport_size({"width": 1400, "height": 1400})
    page.goto(f"{url}/search?sq=" + "+".join(text.split()[:40]))
    wait_ready(page)
    page.get_by_text("nearest documents").first.wait_for(timeout=60_000)
    no_exception(page)
    assert wait_count(page, '[data-testid="stDataFrame"]', 1) >= 1
    page.wait_for_timeout(1000)
    shoot(page, "search")
    page.goto(f"{url}/search?doc={doc_id}")
    wait_ready(page)
    page.get_by_role("button", name="More like this").click()
    page.get_by_text(f"Documents most like {doc_id}").first.wait_for(timeout=60_000)
    wait_ready(page)
    no_exception(page)
    shoot(page, "search_more_like")
