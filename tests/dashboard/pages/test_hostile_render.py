"""Hostile strings in source names, document ids, titles and link parameters are shown as
text on every page: never as Markdown (bold, images that make the browser fetch a URL) or
HTML."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.ingest import ingest
from analytics.workspace import Workspace
from dashboard.components.text import md
from tests.dashboard.conftest import APP

PAGES = sorted(p.stem for p in (Path(APP).parent / "app_pages").glob("*.py"))

BOLD = "**bold**"
IMAGE = "![x](http://127.0.0.1:9/x.png)"
HTML = "<img src=x onerror=alert(1)>"
HOSTILE = f"{BOLD} {IMAGE} {HTML}"

#: elements whose text Streamlit renders as Markdown, and the attribute holding it
MARKDOWN_ELEMENTS = {
    "markdown": "value", "caption": "value", "error": "value", "warning": "value",
    "info": "value", "success": "value", "title": "value", "header": "value",
    "subheader": "value", "metric": "label", "exception": "value",
}  # fmt: skip
WIDGETS = ("button", "selectbox", "multiselect", "text_input", "text_area", "number_input",
           "slider", "toggle", "checkbox", "radio", "tabs", "expander")  # fmt: skip


@pytest.fixture(scope="module")
def hostile_ws(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile_render")
    rows = [
        {"id": f"{HOSTILE} {i}", "text": f"document {i} {HOSTILE} words " * 5,
         "title": HOSTILE, "url": f"http://127.0.0.1:9/{i}", "date": "2001-01-01"}
        for i in range(6)
    ]  # fmt: skip
    src = d / "h.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ws = Workspace(d / "ws")
    ingest(ws, [str(src)], source=HOSTILE, id_field="id", title_field="title")
    return ws


def rendered_markdown(at: AppTest) -> list[tuple[str, str]]:
    out = []
    for kind, attr in MARKDOWN_ELEMENTS.items():
        for e in getattr(at, kind, []):
            out.append((kind, str(getattr(e, attr, "") or "")))
    for kind in WIDGETS:
        for e in getattr(at, kind, []):
            out.append((f"{kind} label", str(getattr(e, "label", "") or "")))
    return out


def assert_nothing_rendered(at: AppTest, where: str) -> None:
    for kind, text in rendered_markdown(at):
        for bad in (BOLD, IMAGE, HTML, "](http://127.0.0.1"):
            assert bad not in text, f"{where}: {kind} renders {bad!r} as Markdown: {text!r}"


def open_page(ws, page, monkeypatch, **query) -> AppTest:
    monkeypatch.setenv("MIXSCOPE_WORKSPACE", str(ws.path))
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    return at


def test_md_escapes_every_markdown_construct():
    for bad in (BOLD, IMAGE, HTML, "[l](javascript:x)", "`code`", ":material/home:", "# h"):
        out = md(bad)
        assert out.replace("\\", "") == bad
        assert re.search(r"(?<!\\)[*!\[\]<>`:#()]", out) is None, out  # all escaped


@pytest.mark.parametrize("page", PAGES)
def test_every_page_shows_hostile_values_as_text(hostile_ws, page, monkeypatch):
    doc = f"{HOSTILE} 0"
    at = open_page(hostile_ws, page, monkeypatch, src=HOSTILE, doc=doc, like=doc, sq=HOSTILE)
    assert not at.exception, [e.value for e in at.exception]
    assert_nothing_rendered(at, page)


def test_explore_shows_the_document_and_its_id_literally(hostile_ws, monkeypatch):
    at = open_page(hostile_ws, "explore", monkeypatch, doc=f"{HOSTILE} 3")
    assert not at.exception
    assert any(HOSTILE in c.value for c in at.code)  # the text itself, in a code block
    assert any(f"{HOSTILE} 3" == t.value for t in at.text)  # the id, as plain text
    assert_nothing_rendered(at, "explore")


def test_a_missing_hostile_doc_id_in_the_link_is_escaped(hostile_ws, monkeypatch):
    at = open_page(hostile_ws, "explore", monkeypatch, doc=f"{IMAGE} nope")
    assert not at.exception
    assert any("No document" in w.value for w in at.warning)
    assert_nothing_rendered(at, "explore")
