"""``plan STACK --diff OLD.json``: per-resource changes, replacement of stateful resources gated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commerce_db.cli import main
from commerce_db.plan.replacements import FORCE_NEW
from commerce_db.plan.tfschema import TF_TYPES, has_attribute, resource_fields

REPO = Path(__file__).resolve().parents[3]
SECRET_RUN = "P" * 16


@pytest.fixture(scope="module")
def old_staging(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("diff") / "old.json"
    code = _plan(["plan", "staging", "--json"], out=path)
    assert code == 0
    return path


def _plan(argv: list[str], out: Path | None = None) -> int:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main([*argv, "--dir", str(REPO)])
    if out is not None:
        out.write_text(buf.getvalue())
    _plan.last = buf.getvalue()  # type: ignore[attr-defined]
    return code


def test_json_plan_records_every_resource_with_masked_inputs(old_staging: Path) -> None:
    doc = json.loads(old_staging.read_text())
    assert doc["schema_version"] == 2
    types = {r["type"] for r in doc["resources"]}
    assert "aws:rds/instance:Instance" in types and all(
        r["urn"].startswith("urn:pulumi:") for r in doc["resources"]
    )
    assert SECRET_RUN not in old_staging.read_text()


def test_no_change(old_staging: Path) -> None:
    assert _plan(["plan", "staging", "--diff", str(old_staging)]) == 0
    assert "0 to create, 0 to update, 0 to replace, 0 to delete" in _plan.last  # type: ignore[attr-defined]


def test_db_name_replaces_the_primary_and_fails_without_allow_replace(
    old_staging: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["plan", "staging", "--diff", str(old_staging), "-c", "postgres.dbName=shop2"]
    assert _plan(argv) == 4
    out = _plan.last  # type: ignore[attr-defined]
    assert "-/+ aws:rds/instance:Instance use2-pg-1" in out
    assert "dbName (forces replacement)" in out and "DESTRUCTIVE" in out
    assert "use2-pg-1 (replace)" in capsys.readouterr().err
    assert _plan([*argv, "--allow-replace"]) == 0


def test_in_place_change_is_an_update(old_staging: Path) -> None:
    argv = ["plan", "staging", "--diff", str(old_staging), "-c", "postgres.instanceClass=db.r6g.large"]
    assert _plan(argv) == 0
    out = _plan.last  # type: ignore[attr-defined]
    assert "  ~ aws:rds/instance:Instance use2-pg-1 (us-east-2): instanceClass" in out
    assert "forces replacement" not in out


def test_deleting_a_stateful_resource_is_destructive(old_staging: Path) -> None:
    argv = ["plan", "staging", "--diff", str(old_staging), "-c", "cache.enabled=false", "--json"]
    assert _plan(argv) == 4
    changes = json.loads(_plan.last)["changes"]  # type: ignore[attr-defined]
    deleted = {c["type"] for c in changes if c["action"] == "delete" and c["destructive"]}
    assert "aws:elasticache/replicationGroup:ReplicationGroup" in deleted
    assert "aws:secretsmanager/secret:Secret" in deleted


def test_unusable_old_file_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "old.json"
    bad.write_text('{"stack": "staging"}')
    assert _plan(["plan", "staging", "--diff", str(bad)]) == 2
    assert "no 'resources' list" in capsys.readouterr().err
    assert _plan(["plan", "staging", "--diff", str(tmp_path / "missing.json")]) == 2


def test_force_new_table_names_real_attributes() -> None:
    """Every ForceNew attribute in the table is an argument or output of the pulumi-aws resource."""
    token_of = {tf: tok for tok, tf in TF_TYPES.items()}
    for tf_type, attrs in FORCE_NEW.items():
        token = token_of[tf_type]
        fields = resource_fields(token)
        assert fields, tf_type
        for attr in attrs:
            assert attr in fields or has_attribute(token, attr), (tf_type, attr)


def test_aliased_resources_are_the_same_resource(old_staging: Path) -> None:
    """A failover's role switch renames component types; their aliases keep the URNs (issue 15):
    ``--diff`` matches through them as the engine does, instead of a delete plus a create."""
    argv = ["plan", "staging", "--diff", str(old_staging), "-c", "primaryRegion=us-west-2",
            "-c", 'replicaRegions=["us-east-2"]', "-c", "homeRegion=us-east-2", "-c", "drRegion=us-east-2",
            "--allow-replace"]  # fmt: skip
    assert _plan(argv) == 0
    out = _plan.last.splitlines()  # type: ignore[attr-defined]
    promoted = [line for line in out if " aws:rds/instance:Instance usw2-pg-1 " in line]
    assert len(promoted) == 1 and promoted[0].startswith("  ~") and "matched by alias" in promoted[0]
    assert "CrossRegionReplicas$aws:rds/instance:Instance::usw2-pg-1" in promoted[0]
    # the demoted writer is rebuilt as a replica: replace_on_changes asks for it explicitly
    (demoted,) = [line for line in out if " aws:rds/instance:Instance use2-pg-1 " in line]
    assert demoted.startswith("-/+") and "replicateSourceDb (forces replacement)" in demoted
    assert not any(line.startswith(("  -", "  +")) and "-pg-sg " in line for line in out)


def test_alias_matching_rules() -> None:
    from commerce_db.plan.diff import ResourceSnapshot, diff, mock_form

    engine = (
        "urn:pulumi:s::p::commerce:db:RegionStack$commerce:db:PostgresCluster$aws:rds/instance:Instance::x-1"
    )
    assert mock_form(engine) == "urn:pulumi:s::p::commerce:db:PostgresCluster$aws:rds/instance:Instance::x-1"
    old_urn = "urn:pulumi:s::p::commerce:db:Old$aws:rds/instance:Instance::x-1"
    new_urn = "urn:pulumi:s::p::commerce:db:New$aws:rds/instance:Instance::x-1"
    t = "aws:rds/instance:Instance"
    old = [ResourceSnapshot(old_urn, t, "x-1", "r", {"instanceClass": "a"})]
    renamed = ResourceSnapshot(new_urn, t, "x-1", "r", {"instanceClass": "a"}, aliases=(old_urn,))
    (change,) = diff(old, [renamed])
    assert (change.action, change.was, change.changed) == ("update", old_urn, ())
    # an old URN still claimed by a resource of the new plan is not taken over through an alias
    both = [ResourceSnapshot(old_urn, t, "x-1", "r", {"instanceClass": "a"}), renamed]
    assert sorted(c.action for c in diff(old, both)) == ["create"]
    # without the alias it is a delete plus a create (what --diff reported before)
    plain = ResourceSnapshot(new_urn, t, "x-1", "r", {"instanceClass": "a"})
    assert sorted(c.action for c in diff(old, [plain])) == ["create", "delete"]
    # replace_on_changes recorded in the plan asks for a replacement
    explicit = ResourceSnapshot(
        old_urn, t, "x-1", "r", {"instanceClass": "b"}, replace_on_changes=("instanceClass",)
    )
    (change,) = diff(old, [explicit])
    assert change.action == "replace" and change.replaced_by == ("instanceClass",)
