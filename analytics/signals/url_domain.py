"""URL host, registered domain and public suffix ("top-level domain").

Uses tldextract with the Public Suffix List snapshot bundled in the package (no network:
`suffix_list_urls=()`, no cache directory). `https://a.b.example.co.uk/x` gives host
`a.b.example.co.uk`, domain `example.co.uk`, tld `co.uk`. A URL without a scheme is read as
`http://...`. IP addresses and single-label hosts (localhost) get domain = host and a null
tld. No URL, or one without a usable host, gives nulls. Work is done once per distinct host.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

import pyarrow as pa

from analytics.signals.base import Column, Signal, lazy_import, require_columns
from analytics.signals.registry import register

_HOST_OK = re.compile(r"^[\w.-]+$")


@lru_cache(maxsize=2)
def _extractor(private: bool):
    tld = lazy_import("tldextract", "tldextract", "the url_domain signal")
    return tld.TLDExtract(suffix_list_urls=(), cache_dir=None, include_psl_private_domains=private)


def host_of(url: str | None) -> str | None:
    """Lower-cased host of `url`, or None when there is none."""
    if not url or not url.strip():
        return None
    url = url.strip()
    if "://" not in url:
        url = "http://" + url.lstrip("/")
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host or not _HOST_OK.match(host):
        return None
    return host.strip(".").lower() or None


@register
class UrlDomain(Signal):
    name = "url_domain"
    description = "URL host, registered domain and public suffix (tldextract, offline)"
    params_doc = {
        "include_private_suffixes": (False, "treat PSL private suffixes (blogspot.com) as TLDs"),
    }
    columns = (
        Column("url_host", "VARCHAR", "host name, lower case"),
        Column("url_domain", "VARCHAR", "registered domain (e.g. example.co.uk)"),
        Column("url_tld", "VARCHAR", "public suffix (e.g. co.uk)"),
    )

    def compute(self, batch: pa.Table) -> pa.Table:
        require_columns(batch)
        n = batch.num_rows
        urls = batch.column("url").to_pylist() if "url" in batch.column_names else [None] * n
        ex = _extractor(bool(self.params["include_private_suffixes"]))
        cache: dict[str, tuple[str | None, str | None]] = {}
        hosts, domains, tlds = [], [], []
        for url in urls:
            host = host_of(url)
            hosts.append(host)
            if host is None:
                domains.append(None)
                tlds.append(None)
                continue
            if host not in cache:
                r = ex(host)
                if r.suffix and r.domain:
                    cache[host] = (f"{r.domain}.{r.suffix}", r.suffix)
                elif r.suffix:  # the host is itself a public suffix
                    cache[host] = (host, r.suffix)
                else:  # IP address, localhost, unknown TLD
                    cache[host] = (host, None)
            dom, tld = cache[host]
            domains.append(dom)
            tlds.append(tld)
        return self._result(batch, {"url_host": hosts, "url_domain": domains, "url_tld": tlds})
