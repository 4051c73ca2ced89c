"""PostgresCluster on its own: capability methods, credentials variants, Args rules."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pytest
from commerce_db_components.config import PostgresParameters
from commerce_db_components.postgres_cluster import (
    CrossRegionReplicasArgs,
    PostgresCluster,
    PostgresClusterArgs,
    parameter_family,
    planned_identifiers,
    rds_connect_policy,
    tuned_parameters,
)

from commerce_db.mock_engine import ProgramRun, run_program

BASE = {
    "region": "us-east-1",
    "vpc_id": "vpc-1",
    "subnet_ids": ["subnet-1", "subnet-2"],
    "kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/k",
}


def build(**overrides: object) -> ProgramRun:
    def program() -> None:
        db = PostgresCluster("db", PostgresClusterArgs(**{**BASE, **overrides}))  # type: ignore[arg-type]
        app = aws.iam.Role("app", assume_role_policy="{}")
        db.grant_connect(app, "app_user")
        db.allow_from("batch", "sg-batch")
        pulumi.export("secret", db.secret_arn)

    return run_program(program, config={"aws:region": "us-east-1"})


def test_grant_connect_produces_rds_db_connect_policy() -> None:
    run = build(identifier_prefix="cdb-t-use1", in_region_replicas=1)
    (policy,) = [p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p.name.startswith("db-connect-")]
    assert policy.name == "db-connect-app-app-user"
    assert policy.inputs["role"] == run.by_name("app").state["name"]
    doc = json.loads(policy.inputs["policy"])
    (stmt,) = doc["Statement"]
    assert stmt["Action"] == "rds-db:connect"
    assert stmt["Resource"] == [
        "arn:aws:rds-db:us-east-1:123456789012:dbuser:db-DB-1/app_user",
        "arn:aws:rds-db:us-east-1:123456789012:dbuser:db-DB-2/app_user",
    ]


def test_grant_connect_needs_iam_auth() -> None:
    def program() -> None:
        db = PostgresCluster("db", PostgresClusterArgs(**BASE, iam_auth=False))  # type: ignore[arg-type]
        db.grant_connect("some-role", "u")

    with pytest.raises(ValueError, match="iam_auth"):
        run_program(program)


def test_rds_connect_policy_shape() -> None:
    doc = rds_connect_policy("eu-west-1", "111122223333", ["db-ABC"], "reader")
    assert doc["Statement"][0]["Resource"] == ["arn:aws:rds-db:eu-west-1:111122223333:dbuser:db-ABC/reader"]


def test_allow_from_references_a_security_group_only() -> None:
    run = build()
    rule = run.by_name("db-from-batch")
    assert rule.inputs["referencedSecurityGroupId"] == "sg-batch"
    assert rule.inputs["fromPort"] == rule.inputs["toPort"] == 5432
    assert rule.inputs["securityGroupId"] == run.by_name("db-sg").state["id"]


def test_fixed_identifiers_are_planned() -> None:
    run = build(identifier_prefix="cdb-t-use1", in_region_replicas=2)
    ids = {r.inputs["identifier"] for r in run.of_type("aws:rds/instance:Instance")}
    assert ids == set(planned_identifiers("cdb-t-use1", replicas=2).values())
    assert planned_identifiers("x", engine_mode="aurora", aurora_readers=1) == {
        "cluster": "x-cluster", "db-1": "x-1", "db-2": "x-2"
    }  # fmt: skip


def test_rotation_lambda_arn_from_config_skips_the_sar_app() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:rotate-pg"
    run = build(rotation_lambda_arn=arn)
    (rotation,) = [
        r for r in run.of_type("aws:secretsmanager/secretRotation:SecretRotation") if r.name == "db-master"
    ]
    assert rotation.inputs["rotationLambdaArn"] == arn
    # only the application users' alternating-users function is deployed
    (app,) = run.of_type("aws:serverlessrepository/cloudFormationStack:CloudFormationStack")
    assert app.inputs["applicationId"].endswith("SecretsManagerRDSPostgreSQLRotationMultiUser")


def test_managed_password_variant_without_replicas() -> None:
    run = build(manage_master_user_password=True, in_region_replicas=0)
    (db,) = run.of_type("aws:rds/instance:Instance")
    assert db.inputs["manageMasterUserPassword"] is True
    assert db.inputs["masterUserSecretKmsKeyId"] == BASE["kms_key_arn"]
    assert "password" not in db.inputs
    assert run.of_type("random:index/randomPassword:RandomPassword") == []
    assert run.of_type("aws:secretsmanager/secret:Secret") == []


def test_managed_password_with_replicas_is_refused() -> None:
    with pytest.raises(ValueError, match="AWS refuses read replicas"):
        PostgresClusterArgs(**BASE, manage_master_user_password=True, in_region_replicas=1)  # type: ignore[arg-type]


def test_parameter_family_and_static_parameters() -> None:
    assert parameter_family("rds", "17.2") == "postgres17"
    assert parameter_family("aurora", "16.4") == "aurora-postgresql16"
    with pytest.raises(ValueError):
        parameter_family("rds", "15.7")
    params = tuned_parameters(PostgresParameters(max_connections=500, extra={"autovacuum_naptime": "15"}))
    assert params["max_connections"] == ("500", "pending-reboot")
    assert params["rds.force_ssl"] == ("1", "immediate")
    assert params["work_mem"][1] == "immediate"
    assert params["autovacuum_naptime"] == ("15", "pending-reboot")
    assert "wal_buffers" in params and "wal_buffers" not in tuned_parameters(
        PostgresParameters(), aurora=True
    )


def test_cross_region_replicas_args_rules() -> None:
    common = {
        "source_arn": "arn:aws:rds:us-east-1:1:db:x", "vpc_id": "vpc-1", "subnet_ids": ["a", "b"],
        "kms_key_arn": "arn:aws:kms:us-west-2:1:key/k",
    }  # fmt: skip
    with pytest.raises(ValueError, match="source_region"):
        CrossRegionReplicasArgs(region="us-east-1", source_region="us-east-1", **common)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="count"):
        CrossRegionReplicasArgs(region="us-west-2", source_region="us-east-1", count=0, **common)  # type: ignore[arg-type]


def test_promotable_slot_is_checked_like_a_writer() -> None:
    """Slot 1's own class and storage (the writer's, in a replica region) are validated with its
    own field names: a bad value names promotable_*, not the replicas' fields."""
    common = {
        "region": "us-west-2", "source_region": "us-east-1", "source_arn": "arn:aws:rds:us-east-1:1:db:a",
        "vpc_id": "vpc-1", "subnet_ids": ["s-1", "s-2"], "kms_key_arn": "arn:aws:kms:us-west-2:1:key/k",
        "allocated_storage_gib": 1000,
    }  # fmt: skip
    writer = {"promotable_instance_class": "db.r7g.2xlarge", "promotable_storage_type": "io2"}
    ok = CrossRegionReplicasArgs(**common, **writer, promotable_iops=20000)  # type: ignore[arg-type]
    assert ok.promotable_iops == 20000
    with pytest.raises(ValueError, match=r"^promotable_iops None is invalid; io2 needs provisioned IOPS"):
        CrossRegionReplicasArgs(**common, **writer)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^promotable_instance_class"):
        CrossRegionReplicasArgs(**common, promotable_instance_class="r7g.2xlarge")  # type: ignore[arg-type]
