"""The package schema: snapshot, shape, `commerce-db components schema`, drift against the Args."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _wire import PKG
from commerce_db_components import multilang
from commerce_db_components.multilang import cache, observability, postgres, proxy

from commerce_db.cli import main

SNAPSHOT = Path(__file__).with_name("schema.snapshot.json")
REGENERATE = (
    "commerce-db components schema --version 0.0.0 --output tests/unit/multilang/schema.snapshot.json"
)
REQUIRED = ("PostgresCluster", "ProxyLayer", "CacheLayer", "ObservabilityLayer")


def test_schema_matches_the_reviewed_snapshot() -> None:
    # A schema change is an API change for every generated SDK: review the diff, then regenerate.
    assert multilang.schema("0.0.0") == json.loads(SNAPSHOT.read_text()), f"schema changed; run: {REGENERATE}"


def test_schema_serves_every_component_under_index() -> None:
    schema = multilang.schema("1.2.3")
    assert schema["name"] == PKG and schema["version"] == "1.2.3"
    tokens = set(schema["resources"])
    assert {f"{PKG}:index:{c}" for c in (*REQUIRED, "Database")} == tokens
    assert all(r["isComponent"] for r in schema["resources"].values())
    pg = schema["resources"][f"{PKG}:index:PostgresCluster"]
    assert set(pg["requiredInputs"]) == {"vpcId", "subnetIds", "kmsKeyArn"}  # region: the provider's
    assert pg["inputProperties"]["inRegionReplicas"] == {
        "description": "Read replicas in this region (rds mode). Default: 1.",
        "type": "integer",
        "plain": True,
    }
    assert pg["inputProperties"]["engineMode"]["$ref"] == f"#/types/{PKG}:index:EngineMode"
    assert [v["value"] for v in schema["types"][f"{PKG}:index:EngineMode"]["enum"]] == ["rds", "aurora"]
    # capability methods are inputs; list[Output] component attributes are one array output
    assert "connectGrants" in pg["inputProperties"]
    cache_props = schema["resources"][f"{PKG}:index:CacheLayer"]["properties"]
    assert cache_props["memberClusterIds"]["type"] == "array"
    assert cache_props["memberClusterIds"]["items"]["type"] == "string"
    assert "memberClusterIds" in schema["resources"][f"{PKG}:index:CacheLayer"]["required"]
    thresholds = schema["types"][f"{PKG}:index:AlarmThresholds"]["properties"]
    assert (
        thresholds["periodSeconds"]["type"] == "integer" and thresholds["rdsCpuPercent"]["type"] == "number"
    )
    assert thresholds["rdsCpuPercent"]["description"].startswith("RDS CPUUtilization above this")


def test_cli_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["components", "schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    for component in REQUIRED:
        assert f"{PKG}:index:{component}" in printed["resources"]
    assert printed["version"] == multilang.package_version()


def test_cli_writes_the_schema_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    assert main(["components", "schema", "--version", "0.0.0", "--output", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(SNAPSHOT.read_text())


_ARGS_OF = {
    postgres.PostgresClusterInputs: ("PostgresClusterArgs", postgres._PostgresClusterArgs),
    postgres.PostgresParameters: ("PostgresParameters", postgres._PostgresParameters),
    proxy.ProxyLayerInputs: ("ProxyLayerArgs", proxy._ProxyLayerArgs),
    proxy.ProxySettings: ("ProxyLayerArgs", proxy._ProxyLayerArgs),
    cache.CacheLayerInputs: ("CacheLayerArgs", cache._CacheLayerArgs),
    cache.CacheSettings: ("CacheLayerArgs", cache._CacheLayerArgs),
    observability.ObservabilityLayerInputs: ("ObservabilityLayerArgs", observability._ObservabilityLayerArgs),
    observability.ObservabilitySettings: ("ObservabilityLayerArgs", observability._ObservabilityLayerArgs),
    observability.AlarmThresholds: ("AlarmThresholds", observability._AlarmThresholds),
}
# Wrapper inputs that are not Args fields on purpose: capability methods and the proxy's target.
_WRAPPER_ONLY = {"allowed_security_groups", "reader_allowed_security_groups", "connect_grants"} | {
    f"target_{f}"
    for f in ("identifier", "security_group_id", "secret_arn", "kms_key_arn", "engine_mode", "port",
              "resource_ids", "reader_endpoints")
}  # fmt: skip


@pytest.mark.parametrize("typed", list(_ARGS_OF), ids=lambda t: t.__name__)
def test_every_wrapper_field_is_a_field_of_the_python_args(typed: type) -> None:
    # Fields pass to the frozen Args by name: a renamed Args field must fail here, not at construct.
    name, args_cls = _ARGS_OF[typed]
    args_fields = {f.name for f in dataclasses.fields(args_cls)}
    missing = set(typed.__annotations__) - args_fields - _WRAPPER_ONLY
    assert not missing, f"{typed.__name__} fields not in {name}: {sorted(missing)}"


# The type token pattern of Pulumi's package metaschema (pkg/codegen/schema/pulumi.json, "token").
_TOKEN = re.compile(r"^[a-zA-Z][-a-zA-Z0-9_]*:([^0-9][a-zA-Z0-9._/-]*)?:[^0-9][a-zA-Z0-9._/-]*$")


def _type_specs(spec: dict[str, Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield where, spec
    if "items" in spec:
        yield from _type_specs(spec["items"], f"{where}[]")
    if isinstance(spec.get("additionalProperties"), dict):
        yield from _type_specs(spec["additionalProperties"], f"{where}{{}}")


def test_schema_is_well_formed_for_codegen() -> None:
    # What SDK generation needs beyond the snapshot: valid tokens, every $ref defined, every
    # property one of the metaschema's type shapes, enums typed, required names existing.
    schema = multilang.schema("0.0.0")
    types = schema["types"]
    assert all(_TOKEN.match(t) for t in (*types, *schema["resources"]))
    objects = {f"resources/{k}": v for k, v in schema["resources"].items()}
    objects.update({f"types/{k}": v for k, v in types.items() if v["type"] == "object"})
    for name, obj in objects.items():
        for group in ("inputProperties", "properties"):
            props = obj.get(group, {})
            for req in obj.get("requiredInputs" if group == "inputProperties" else "required", []):
                assert req in props, f"{name}: required {req} is not a property"
            for pname, prop in props.items():
                for where, spec in _type_specs(prop, f"{name}.{pname}"):
                    if "$ref" in spec:
                        assert spec["$ref"].startswith("#/types/"), where
                        assert spec["$ref"][len("#/types/") :] in types, f"{where}: dangling {spec['$ref']}"
                    else:
                        assert spec.get("type") in ("string", "integer", "number", "boolean", "array",
                                                    "object"), where  # fmt: skip
                        assert spec["type"] != "array" or "items" in spec, where
    for token, spec in types.items():
        if spec["type"] != "object":
            assert spec["type"] == "string" and spec["enum"], token
            assert all(isinstance(v["value"], str) and v.get("description") for v in spec["enum"]), token
