"""Headline numbers."""

from __future__ import annotations

import streamlit as st


def human(n: float) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:,.0f}"


def totals_row(tot: dict) -> None:
    cols = st.columns(6)
    cols[0].metric("Documents", f"{int(tot['documents']):,}")
    cols[1].metric("Tokens", human(float(tot["tokens"])), help=f"{int(tot['tokens']):,} tokens")
    cols[2].metric("Bytes", human(float(tot["bytes"])) + "B", help=f"{int(tot['bytes']):,} bytes")
    cols[3].metric("Sources", int(tot["sources"]))
    cols[4].metric("Domains", int(tot["domains"]))
    cols[5].metric("Languages", int(tot["languages"]))
