"""Every page in a real browser: charts and key numbers render, no exception box."""

from __future__ import annotations

import pytest

from analytics import overview
from tests.browser.conftest import no_exception, shoot, wait_count, wait_metric, wait_ready

pytestmark = pytest.mark.browser


def test_overview(server, page, demo_workspace):
    page.goto(f"{server}/")
    wait_ready(page)
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    no_exception(page)
    tot = overview.totals(demo_workspace.cursor())
    wait_metric(page, f"{int(tot['documents']):,}")
    assert wait_count(page, ".js-plotly-plot", 3) >= 3
    no_exception(page)
    shoot(page, "overview")


def test_explore(server, page, demo_workspace):
    src = overview.facet_values(demo_workspace.cursor(), "source")[0]
    page.goto(f"{server}/explore?src={src}")
    wait_ready(page)
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    no_exception(page)
    from analytics.filters import DocFilter

    want = overview.totals(demo_workspace.cursor(), DocFilter(source=(src,)))
    wait_metric(page, f"{int(want['documents']):,}")
    # the document table is drawn after the totals (its query runs later in the script)
    assert wait_count(page, '[data-testid="stDataFrame"]', 1) >= 1
    no_exception(page)
    shoot(page, "explore")


def test_sql(server, page):
    page.goto(
        f"{server}/sql?sql=SELECT%20source%2C%20count(*)%20AS%20n%20FROM%20documents%20GROUP%20BY%201"
    )
    wait_ready(page)
    page.wait_for_selector('[data-testid="stDataFrame"]', timeout=60_000)
    no_exception(page)
    assert page.get_by_text("Download CSV").count() == 1
    shoot(page, "sql")
