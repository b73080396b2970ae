"""Document text carrying HTML, JavaScript or Markdown is shown as text, never rendered."""

from __future__ import annotations

import json

import pytest

from analytics.ingest import ingest
from analytics.workspace import Workspace
from tests.browser.conftest import serve

pytestmark = pytest.mark.browser

HOSTILE = (
    "<script>window.__pwned = 1</script>\n"
    '<img src="x" onerror="window.__pwned = 2">\n'
    "**not bold** [a link](javascript:window.__pwned=3) <b>not bold either</b>"
)


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    src = d / "hostile.jsonl"
    src.write_text(json.dumps({"id": "evil<1>", "text": HOSTILE, "title": "<i>t</i>"}) + "\n")
    ws = Workspace(d / "ws")
    ingest(ws, [str(src)], source="<b>src</b>")
    yield from serve(ws.path)


def test_hostile_document_is_displayed_literally(hostile_server, page):
    page.goto(f"{hostile_server}/explore?doc=evil%3C1%3E")
    block = page.locator('[data-testid="stCode"]', has_text="window.__pwned = 1")
    block.wait_for(timeout=60_000)
    page.wait_for_timeout(1500)
    assert page.evaluate("() => window.__pwned") is None
    code = block.inner_text()
    assert "<script>window.__pwned = 1</script>" in code and "**not bold**" in code
    assert page.locator("b:text('not bold either')").count() == 0
    assert page.locator('[data-testid="stException"]').count() == 0
