"""Saved mixtures in the workspace (table ``mixtures``, see :mod:`.schema`): save, list, load, diff.

Saving never overwrites: each save of a name adds version n + 1.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Any

import pandas as pd

from .errors import MixtureError
from .manifest import Manifest, manifest_to_dict, validate_manifest
from .schema import SAVED_BY, SCHEMA

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,127}$")


_REF = re.compile(r"^(?P<name>.+?)(?:@(?P<version>[0-9]+))?$")


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME@VERSION`` (the one parser of mixture references)."""
    m = _REF.match((ref or "").strip())
    if not m or not m.group("name"):
        raise MixtureError(f"mixture: {ref!r} is not NAME or NAME@VERSION")
    return m.group("name"), (int(m.group("version")) if m.group("version") else None)


def ensure_schema(con: Any) -> None:
    """Create the mixture tables if missing (for tests and stand-alone use)."""
    for ddl in SCHEMA + SAVED_BY:
        con.execute(ddl)


def save_mixture(
    con: Any,
    name: str,
    manifest: Manifest,
    *,
    note: str | None = None,
    saved_by: str | None = None,
) -> int:
    """Store ``manifest`` under ``name`` as a new version (saved by ``saved_by``, a user name
    or e-mail, if known); returns the version number."""
    if not _NAME.match(name or ""):
        raise MixtureError(f"name: {name!r} must be 1-128 letters, digits, space, '_', '.', '-'")
    m = validate_manifest(manifest)
    (latest,) = con.execute(
        "SELECT coalesce(max(version), 0) FROM mixtures WHERE name = ?", [name]
    ).fetchone()
    version = int(latest) + 1
    con.execute(
        "INSERT INTO mixtures (name, version, created_at, note, manifest, saved_by) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            name,
            version,
            _dt.datetime.now(_dt.UTC),
            note,
            json.dumps(manifest_to_dict(m)),
            (saved_by or "").strip()[:256] or None,
        ],
    )
    return version


def _saved_by(con: Any) -> str:
    """The saved_by column, or NULL on a workspace its migration (7) has not reached yet (it
    runs at the first write; reading must not need it)."""
    cols = [d[0] for d in con.execute("SELECT * FROM mixtures LIMIT 0").description]
    return "saved_by" if "saved_by" in cols else "CAST(NULL AS VARCHAR) AS saved_by"


def list_mixtures(con: Any) -> pd.DataFrame:
    """One row per saved version: name, version, created_at, saved_by, note, phases,
    total_tokens."""
    return con.execute(
        f"""
        SELECT name, version, created_at, {_saved_by(con)}, note,
               json_array_length(manifest -> '$.phases') AS phases,
               CAST(manifest ->> '$.total_tokens' AS BIGINT) AS total_tokens
        FROM mixtures ORDER BY name, version
        """
    ).df()


def version_info(con: Any, name: str, version: int | None = None) -> dict[str, Any]:
    """version, created_at, saved_by and note of a saved version (latest unless given)."""
    row = con.execute(
        f"SELECT version, CAST(created_at AS VARCHAR), {_saved_by(con)}, note FROM mixtures "
        "WHERE name = ? "
        "AND (? IS NULL OR version = ?) ORDER BY version DESC LIMIT 1",
        [name, version, version],
    ).fetchone()
    if row is None:
        raise MixtureError(
            f"name: no saved mixture {name!r}"
            + (f" version {version}" if version is not None else "")
        )
    return dict(zip(("version", "created_at", "saved_by", "note"), row, strict=True))


def load_mixture(con: Any, name: str, version: int | None = None) -> Manifest:
    """The manifest saved as ``name`` (latest version unless given)."""
    if version is None:
        row = con.execute(
            "SELECT manifest FROM mixtures WHERE name = ? ORDER BY version DESC LIMIT 1", [name]
        ).fetchone()
    else:
        row = con.execute(
            "SELECT manifest FROM mixtures WHERE name = ? AND version = ?", [name, int(version)]
        ).fetchone()
    if row is None:
        raise MixtureError(
            f"name: no saved mixture {name!r}"
            + (f" version {version}" if version is not None else "")
        )
    return validate_manifest(json.loads(row[0]), source=f"mixture {name!r}")


def diff_manifests(a: Manifest, b: Manifest) -> pd.DataFrame:
    """Per (phase, group): weight, target tokens and epochs in ``a`` and ``b`` and their change.

    ``status`` is ``added``, ``removed``, ``changed`` or ``same``.
    """

    def rows(m: Manifest) -> dict[tuple[str, str], dict[str, float]]:
        return {
            (p.name, g.id): {
                "weight": g.weight,
                "target_tokens": g.target_tokens,
                "epochs": g.epochs,
            }
            for p in m.phases
            for g in p.groups
        }

    ra, rb = rows(a), rows(b)
    out = []
    for key in list(ra) + [k for k in rb if k not in ra]:
        x, y = ra.get(key), rb.get(key)
        rec: dict[str, Any] = {"phase": key[0], "group": key[1]}
        for f in ("weight", "target_tokens", "epochs"):
            rec[f"{f}_a"] = None if x is None else x[f]
            rec[f"{f}_b"] = None if y is None else y[f]
        rec["weight_change"] = (y["weight"] if y else 0.0) - (x["weight"] if x else 0.0)
        rec["status"] = (
            "added" if x is None else "removed" if y is None else ("same" if x == y else "changed")
        )
        out.append(rec)
    return pd.DataFrame(out)
