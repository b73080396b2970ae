"""The Geometry page in a real browser: charts render, the stored numbers are shown."""

from __future__ import annotations

import pytest

from analytics.workspace import Workspace
from tests.browser.conftest import no_exception, serve, shoot, wait_ready
from tests.workspaces.geometry import geometry_path

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def geometry_server(tmp_path_factory):
    yield from serve(geometry_path(tmp_path_factory))


def plots(page, n=1):
    page.wait_for_function(
        f"() => document.querySelectorAll('.js-plotly-plot').length >= {n}", timeout=60_000
    )


def test_geometry_page(geometry_server, page, tmp_path_factory):
    ws = Workspace.open(geometry_path(tmp_path_factory))
    alpha = (
        ws.cursor()
        .execute(
            """SELECT value FROM geometry_metrics WHERE run = 'tiny' AND step = 8 AND layer = 2
               AND "group" = 'all' AND metric = 'alpha_req'"""
        )
        .fetchall()[0][0]
    )
    page.set_viewport_size({"width": 1400, "height": 2200})
    page.goto(f"{geometry_server}/geometry?run=tiny&metric=rankme/covariance")
    wait_ready(page)
    plots(page, 2)  # lines + heatmap
    no_exception(page)
    assert page.get_by_text("checkpoint-8 · layer 2 · group all").count() == 1
    assert page.get_by_text("Phases (analytics.geometry.phases)").count() == 1
    page.get_by_text("Settings: probe of 64 documents").wait_for(timeout=30_000)
    shoot(page, "geometry")
    page.get_by_role("tab", name="Eigenspectrum").click()
    # the caption refits alpha on the stored spectrum: it must equal the stored alpha-ReQ
    page.get_by_text(f"alpha-ReQ = {alpha:.3f}").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    no_exception(page)
    shoot(page, "geometry_spectrum")
    page.get_by_role("tab", name="Weights").click()
    page.get_by_text("Intruder dimensions").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    no_exception(page)
    shoot(page, "geometry_weights")


def test_geometry_page_pretrained_model(geometry_server, page):
    page.set_viewport_size({"width": 1400, "height": 1600})
    page.goto(f"{geometry_server}/geometry?run=minilm&metric=rankme/singular")
    wait_ready(page)
    plots(page, 2)
    no_exception(page)
    assert page.get_by_text("the views are per layer").count() == 1
    page.get_by_role("tab", name="CKA").click()
    page.get_by_role("radio", name="layers within a checkpoint").click(force=True)
    page.get_by_text("CKA between layers of").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    no_exception(page)
    shoot(page, "geometry_minilm_cka")
