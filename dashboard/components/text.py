"""User-supplied strings on a page: always shown as text, never as Markdown or HTML.

Streamlit renders Markdown in st.markdown / st.caption / st.write / st.error & co., in widget
and metric labels, and in tab and radio labels. Any string that comes from the corpus, a link
or a user (source names, document ids, titles, link parameters, mixture and group names,
error messages that quote them) goes through this module:

* `md(value)` escapes every Markdown character (and drops control characters), for a value
  placed inside a Markdown-rendering call: `st.caption(f"source {md(name)}")`;
* `show_text(value)` displays a value on its own as plain text (st.text: no Markdown at all);
* `show_error / show_warning / show_info / show_success` are the alert boxes with the whole
  message escaped (messages often quote the user's input).
"""

from __future__ import annotations

import re

import streamlit as st

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&=\"'])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def md(value: object) -> str:
    """`value` as a string safe inside Markdown: every special character backslash-escaped,
    newlines folded to spaces, control characters dropped."""
    s = _CONTROL.sub("", " ".join(str(value).splitlines()))
    return _MARKDOWN.sub(r"\\\1", s)


def show_text(value: object, *, container=None) -> None:
    """Display `value` as plain text (never Markdown or HTML)."""
    (container or st).text(_CONTROL.sub("", str(value)))


def show_error(message: object, *, container=None) -> None:
    (container or st).error(md(message))


def show_warning(message: object, *, container=None) -> None:
    (container or st).warning(md(message))


def show_info(message: object, *, container=None) -> None:
    (container or st).info(md(message))


def show_success(message: object, *, container=None) -> None:
    (container or st).success(md(message))
