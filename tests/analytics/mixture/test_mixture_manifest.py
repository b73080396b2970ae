"""Manifest models: round trips, validation with field paths, atomic writes, the JSON Schema."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
import yaml

from analytics.mixture import (
    SCHEMA_PATH,
    ManifestError,
    build_manifest,
    build_phase,
    manifest_json_schema,
    natural_weights,
    plan_table,
    read_manifest,
    validate_manifest,
    write_manifest,
)
from analytics.mixture.manifest import json_schema_text

SNAP = "v1:" + "0" * 64


def make_manifest():
    tokens = {"web": 6000, "books": 4000, "code": 2000}
    docs = {"web": 30, "books": 5, "code": 20}
    w = natural_weights(tokens)
    plan = plan_table(tokens, docs, w, 10_000, max_epochs=4)
    main = build_phase(
        plan,
        name="main",
        budget_tokens=10_000,
        method=w,
        locators={g: [f"/data/{g}"] for g in tokens},
    )
    plan2 = plan_table(tokens, docs, {"web": 0.2, "books": 0.5, "code": 0.3}, 3000)
    anneal = build_phase(
        plan2,
        name="anneal",
        budget_tokens=3000,
        method="manual",
        order="ascending-quality",
        order_column="quality",
    )
    return build_manifest(
        phases=[main, anneal],
        tokenizer={"name": "gpt2", "sha256": "a" * 64},
        seed=7,
        corpus_snapshot_hash=SNAP,
        created_at=dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        version="0.1.0",
    )


def test_build_manifest_fields():
    m = make_manifest()
    assert m.total_tokens == 13_000 and m.weight_basis == "tokens" and m.schema_version == "1.0"
    g = m.phases[0].groups[0]
    assert (g.id, g.tokens, g.documents, g.target_tokens) == ("web", 6000, 30, 5000)
    assert g.epochs == pytest.approx(5000 / 6000)
    assert g.method.name == "natural" and g.caps.max_epochs == 4
    assert m.phases[1].groups[1].target_tokens == 1500


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip(tmp_path, suffix):
    m = make_manifest()
    p = write_manifest(m, tmp_path / f"mix{suffix}")
    back = read_manifest(p)
    assert back == m
    text = p.read_text()
    data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    assert data["phases"][0]["groups"][2]["id"] == "code"
    assert not list(tmp_path.glob(".*tmp"))


def _bad(mutate):
    data = make_manifest().model_dump(mode="json")
    mutate(data)
    return data


@pytest.mark.parametrize(
    "mutate, path",
    [
        (
            lambda d: d["phases"][0]["groups"][0].update(weight=0.4),
            "phases[0].groups[*].weight: weights sum to",
        ),
        (
            lambda d: d["phases"][0]["groups"][1].update(weight=float("nan")),
            "phases[0].groups[1].weight",
        ),
        (lambda d: d["phases"][0]["groups"][1].update(tokens=-5), "phases[0].groups[1].tokens"),
        (
            lambda d: d["phases"][0]["groups"][1].update(epochs=math.inf),
            "phases[0].groups[1].epochs",
        ),
        (lambda d: d["phases"][0]["groups"][1].update(epochs=1001), "phases[0].groups[1].epochs"),
        (lambda d: d["phases"][0].update(budget_tokens=10**17), "phases[0].budget_tokens"),
        (lambda d: d.update(weight_basis="documents"), "weight_basis"),
        (lambda d: d.update(surprise=1), "surprise"),
        (lambda d: d["phases"][1].update(order_column=None), "phases[1].order_column"),
        (lambda d: d.update(total_tokens=5), "total_tokens"),
        (
            lambda d: d["phases"][0]["groups"][2].update(id="web"),
            "group id 'web' appears more than once",
        ),
        (
            lambda d: d["phases"][0]["groups"][0].update(epochs=2.0),
            "phases[0].groups[0].epochs: 2.0 does not match",
        ),
        (
            lambda d: d["phases"][0]["groups"][0]["caps"].update(max_epochs=0.5),
            "exceeds caps.max_epochs",
        ),
        (lambda d: d["tokenizer"].update(sha256="xyz"), "tokenizer.sha256"),
    ],
)
def test_rejects_bad_manifests_naming_the_field(mutate, path):
    with pytest.raises(ManifestError) as exc:
        validate_manifest(_bad(mutate))
    assert path in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_rejects_too_many_groups():
    def many(d):
        g = d["phases"][0]["groups"][0]
        d["phases"][0]["groups"] = [dict(g, id=f"g{i}") for i in range(10_001)]

    with pytest.raises(ManifestError, match=r"phases\[0\]\.groups: List should have at most 10000"):
        validate_manifest(_bad(many))


def test_read_reports_file_and_line(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("a: [1, 2\nb: 3\n")
    with pytest.raises(ManifestError, match=r"broken.yaml: line \d+"):
        read_manifest(p)
    j = tmp_path / "nan.json"
    data = make_manifest().model_dump(mode="json")
    data["phases"][0]["groups"][0]["weight"] = float("nan")
    j.write_text(json.dumps(data))  # json.dumps writes NaN
    with pytest.raises(
        ManifestError, match=r"(?s)nan.json is invalid.*phases\[0\]\.groups\[0\]\.weight"
    ):
        read_manifest(j)
    with pytest.raises(ManifestError, match="no such manifest"):
        read_manifest(tmp_path / "missing.yaml")
    with pytest.raises(ManifestError, match="suffix"):
        read_manifest(tmp_path / "x.txt")


def test_failed_write_leaves_previous_file_untouched(tmp_path):
    p = tmp_path / "mix.yaml"
    write_manifest(make_manifest(), p)
    before = p.read_bytes()
    with pytest.raises(ManifestError):
        write_manifest(_bad(lambda d: d["phases"][0]["groups"][0].update(weight=0.9)), p)
    assert p.read_bytes() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["mix.yaml"]


def test_committed_schema_matches_model():
    assert SCHEMA_PATH.read_text() == json_schema_text(), (
        "analytics/mixture/manifest.schema.json is stale: regenerate it with "
        "analytics.mixture.write_json_schema()"
    )


def test_schema_validates_with_jsonschema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema == manifest_json_schema()
    good = make_manifest().model_dump(mode="json")
    jsonschema.validate(good, schema)
    bad = make_manifest().model_dump(mode="json")
    bad["phases"][0]["groups"][0]["tokens"] = -1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    bad2 = make_manifest().model_dump(mode="json")
    bad2["phases"][0]["order"] = "random"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad2, schema)
