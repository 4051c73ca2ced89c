"""Terraform plan JSON export: types, attribute names, block shapes, unknowns and secrets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from commerce_db.cli import main
from commerce_db.mock_engine import ProgramRun
from commerce_db.plan import plan_stack
from commerce_db.plan.tfplan import build_tfplan, exported
from commerce_db.plan.tfschema import (
    RENAMED,
    TF_TYPES,
    UnmappedTypeError,
    has_attribute,
    resource_fields,
    tf_type,
)

REPO = Path(__file__).resolve().parents[3]
SECRET_RUN = "P" * 16  # RecordingMocks makes RandomPassword.result "P" * length


def _run(stack: str, overrides: tuple[str, ...] = ()) -> ProgramRun:
    return plan_stack(stack, project_dir=REPO, overrides=list(overrides)).run


@pytest.fixture(scope="module")
def runs() -> dict[str, ProgramRun]:
    """prod, staging and the Aurora variant: together every type the program can register."""
    return {
        "prod": _run("prod"),
        "staging": _run("staging"),
        "aurora": _run("staging", ("postgres.engineMode=aurora",)),
    }


@pytest.fixture(scope="module")
def prod_doc(runs: dict[str, ProgramRun]) -> dict[str, Any]:
    return build_tfplan(runs["prod"])


def _changes(doc: dict[str, Any], typ: str) -> list[dict[str, Any]]:
    return [c for c in doc["resource_changes"] if c["type"] == typ]


def _keys(tree: Any) -> Iterator[str]:
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield k
            yield from _keys(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _keys(v)


def test_every_registered_type_has_a_terraform_type(runs: dict[str, ProgramRun]) -> None:
    registered = {r.type for run in runs.values() for r in run.resources if exported(r)}
    assert registered - set(TF_TYPES) == set()
    assert {"aws:rds/cluster:Cluster", "aws:rds/instance:Instance"} <= registered  # both engines covered
    for run in runs.values():
        doc = build_tfplan(run)
        assert doc["format_version"] == "1.2"
        assert len(doc["resource_changes"]) == sum(1 for r in run.resources if exported(r))
        assert {c["change"]["actions"][0] for c in doc["resource_changes"]} == {"create"}
        planned = doc["planned_values"]["root_module"]["resources"]
        assert [p["address"] for p in planned] == [c["address"] for c in doc["resource_changes"]]


def test_unmapped_type_is_an_error_not_a_guess() -> None:
    with pytest.raises(UnmappedTypeError, match=r"aws:foo/bar:Bar"):
        tf_type("aws:foo/bar:Bar")


def test_top_level_attributes_are_the_sdk_arguments_in_snake_case(runs: dict[str, ProgramRun]) -> None:
    """Every exported top-level name is an argument or output of the SDK resource (renames undone)."""
    for run in runs.values():
        by_address = {c["address"]: c for c in build_tfplan(run)["resource_changes"]}
        types = {c["address"]: c["type"] for c in by_address.values()}
        token_of = {tf: tok for tok, tf in TF_TYPES.items()}
        for address, change in by_address.items():
            token = token_of[types[address]]
            fields = resource_fields(token)
            back = {tf: py for py, tf in RENAMED.get(types[address], {}).items()}
            names = set(change["change"]["after"]) | set(change["change"]["after_unknown"])
            for name in names:
                py = back.get(name, name)
                assert py in fields or has_attribute(token, py) or name == "id", (address, name)


def test_nested_blocks_have_terraform_shape(prod_doc: dict[str, Any]) -> None:
    (plan,) = _changes(prod_doc, "aws_backup_plan")
    rule = plan["change"]["after"]["rule"]  # Pulumi: rules (a list)
    assert isinstance(rule, list) and rule[0]["rule_name"]
    assert rule[0]["lifecycle"] == [{"delete_after": 35}]  # MaxItems 1: an object in Pulumi
    assert isinstance(rule[0]["copy_action"][0]["lifecycle"], list)
    assert plan["change"]["after_unknown"]["rule"][0]["copy_action"][0]["destination_vault_arn"] is True
    sse = _changes(prod_doc, "aws_s3_bucket_server_side_encryption_configuration")[0]["change"]["after"]
    assert sse["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "aws:kms"
    alarms = [c["change"]["after"] for c in _changes(prod_doc, "aws_cloudwatch_metric_alarm")]
    assert any("metric_query" in a for a in alarms) and not any("metric_queries" in a for a in alarms)
    db = _changes(prod_doc, "aws_db_instance")[0]["change"]["after"]
    assert isinstance(db["tags"], dict) and db["tags"]["environment"] == "prod"  # maps stay maps
    assert all(k.islower() or "_" in k for k in _keys(db) if k not in db["tags"])


def test_references_are_unknown_and_named_in_the_configuration(prod_doc: dict[str, Any]) -> None:
    dbs = _changes(prod_doc, "aws_db_instance")
    (primary,) = [c for c in dbs if c["name"] == "use1-pg-1"]
    after, unknown = primary["change"]["after"], primary["change"]["after_unknown"]
    assert "kms_key_id" not in after and unknown["kms_key_id"] is True
    assert unknown["arn"] is True and unknown["endpoint"] is True  # assigned on create
    conf = next(
        c for c in prod_doc["configuration"]["root_module"]["resources"] if c["address"] == primary["address"]
    )
    ref = conf["expressions"]["kms_key_id"]["references"]
    assert ref[0].startswith("aws_kms_key.") and ref[0].endswith(".arn")
    assert after["storage_encrypted"] is True and after["multi_az"] is True
    assert conf["expressions"]["multi_az"] == {"constant_value": True}


def test_secrets_never_appear(runs: dict[str, ProgramRun]) -> None:
    for run in runs.values():
        doc = build_tfplan(run)
        assert SECRET_RUN not in json.dumps(doc)
    doc = build_tfplan(runs["prod"])
    groups = _changes(doc, "aws_elasticache_replication_group")
    (cache,) = [c for c in groups if "auth_token" in c["change"]["after_unknown"]]
    assert cache["change"]["after_sensitive"]["auth_token"] is True
    versions = _changes(doc, "aws_secretsmanager_secret_version")
    assert versions and all(v["change"]["after_sensitive"]["secret_string"] is True for v in versions)
    assert all("secret_string" not in v["change"]["after"] for v in versions)


def test_exported_databases_match_the_registered_ones(runs: dict[str, ProgramRun]) -> None:
    run = runs["prod"]
    registered = sorted(r.name for r in run.of_type("aws:rds/instance:Instance"))
    exported_dbs = sorted(c["name"] for c in _changes(build_tfplan(run), "aws_db_instance"))
    assert exported_dbs == registered and len(registered) == 5


def test_cli_writes_the_tfplan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "staging.json"
    assert main(["plan", "staging", "--dir", str(REPO), "--tfplan", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["format_version"] == "1.2" and doc["resource_changes"]
    assert str(out) in capsys.readouterr().out
