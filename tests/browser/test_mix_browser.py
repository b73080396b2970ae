"""The Mixtures page in a real browser, opened from a shared `mix=NAME@VERSION` link."""

from __future__ import annotations

import math
import shutil

import pytest

from analytics.filters import DocFilter
from analytics.mixture import builder as mb
from analytics.mixture import save_mixture, weight_diversity
from analytics.workspace import Workspace
from tests.browser.conftest import no_exception, serve, shoot, wait_count, wait_ready

pytestmark = pytest.mark.browser
SOURCES = ("licenses", "austen", "fortunes-en", "python-code", "bible-kjv")


@pytest.fixture(scope="module")
def mix_server(demo_workspace, tmp_path_factory):
    """A copy of the demo workspace holding one saved two-phase mixture, served."""
    d = tmp_path_factory.mktemp("mixws") / "ws"
    shutil.copytree(demo_workspace.path, d)
    ws = Workspace(d)
    flt = DocFilter(source=SOURCES)
    tokens = dict(
        mb.group_table(ws.cursor(), flt, group_by="source")[["group", "tokens"]].values.tolist()
    )
    main = mb.PhaseSpec("main", 3_000_000, mb.token_strategy_weights(
        "temperature", tokens, params={"temperature": 3.0}))  # fmt: skip
    anneal = mb.PhaseSpec("anneal", 200_000, mb.token_strategy_weights("uniform", tokens))
    m = mb.create_manifest(ws.cursor(), flt, group_by="source", phases=[main, anneal], seed=3)
    with ws.write(job="test mixture") as con:
        save_mixture(con, "shared-mix", m, note="browser test")
    server = serve(ws.path)
    url = next(server)
    try:
        yield url, m
    finally:
        next(server, None)  # stops the server


def test_mixture_opens_from_a_shared_link(mix_server, page):
    url, m = mix_server
    page.set_viewport_size({"width": 1400, "height": 3400})  # the whole page in the screenshot
    page.goto(f"{url}/mixtures?mix=shared-mix%401")
    wait_ready(page)
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    page.wait_for_timeout(1500)
    no_exception(page)
    # the first tab (main phase): temperature restored, 2 charts, headline numbers
    assert wait_count(page, ".js-plotly-plot", 2) >= 2
    metrics = page.locator('[data-testid="stMetric"]').all_inner_texts()
    text = " ".join(metrics)
    assert "3.00M" in text  # the main phase's budget
    weights = {g.id: g.weight for g in m.phases[0].groups}
    eff = math.exp(weight_diversity(weights)["entropy"])
    assert f"{eff:.1f}" in text  # effective number of groups of the saved weights
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert "licenses" in body and "epochs" in body  # the repetition warning names the group
    assert "Mixing over" in body and "licenses" in body
    assert "shared-mix@1" in body  # opened, with its share link
    shoot(page, "mixtures")
