"""Uploads: traversal names neutralised, oversize refused, nothing half-written."""

from __future__ import annotations

import io

import pytest

from analytics.errors import MixscopeError
from analytics.uploads import safe_upload_name, save_upload


@pytest.mark.parametrize(
    "name, want",
    [
        ("../../etc/passwd.jsonl", "passwd.jsonl"),
        ("..\\..\\windows\\x.csv", "x.csv"),
        ("/abs/path/data.parquet", "data.parquet"),
        ("we ird;$(rm -rf).jsonl", "we_ird_rm_-rf_.jsonl"),
        (".hidden.jsonl", "hidden.jsonl"),
    ],
)
def test_names_are_neutralised(name, want):
    assert safe_upload_name(name) == want


@pytest.mark.parametrize("name", ["..", "", "/", "notes.txt", "run.sh", "x.exe"])
def test_unusable_names_refused(name):
    with pytest.raises(MixscopeError):
        safe_upload_name(name)


def test_saved_inside_uploads_and_oversize_refused(tmp_path):
    dest = save_upload(tmp_path, "../../evil.jsonl", io.BytesIO(b'{"text": "x"}\n'))
    assert dest.read_bytes() == b'{"text": "x"}\n'
    assert (tmp_path / "uploads").resolve() in dest.resolve().parents
    with pytest.raises(MixscopeError, match="larger than the limit"):
        save_upload(tmp_path, "big.jsonl", io.BytesIO(b"x" * 5000), max_bytes=1000)
    leftovers = [p for p in (tmp_path / "uploads").rglob("*") if p.is_file()]
    assert leftovers == [dest]
