"""Config variants of the program: single region, layers switched off, rotation and auth options."""

from __future__ import annotations

import json
from typing import Any

import pulumi_aws as aws
import pytest
from _stackfiles import run_stack, stack_config

from commerce_db.mock_engine import ProgramRun, run_program

EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def section(name: str, **values: Any) -> dict[str, Any]:
    """A staging section with ``values`` merged in, keyed fully qualified."""
    key = f"commerce-db:{name}"
    return {key: {**stack_config("staging").get(key, {}), **values}}


@pytest.fixture(scope="module")
def lean() -> ProgramRun:
    """One region, no proxy, no cache, no audit, app SG given: the smallest useful stack."""
    return run_stack(
        "staging",
        {
            "commerce-db:replicaRegions": [],
            **section("proxy", enabled=False),
            **section("cache", enabled=False),
            **section("audit", enabled=False),
            **section("network", appSecurityGroupIds={"us-east-2": ["sg-0app"]}),
        },
    )


def test_single_region_stack(lean: ProgramRun) -> None:
    assert {r.region for r in lean.resources if r.type.startswith("aws:")} == {"us-east-2", "us-west-2"}
    # us-west-2 holds only the DR backup vault, its key (and alias) and the vault lock
    west = {r.type for r in lean.resources if r.region == "us-west-2" and r.type.startswith("aws:")}
    assert west <= {"aws:kms/key:Key", "aws:kms/alias:Alias", "aws:backup/vault:Vault",
                    "aws:backup/vaultLockConfiguration:VaultLockConfiguration"}  # fmt: skip
    assert {"aws:kms/key:Key", "aws:backup/vault:Vault"} <= west
    assert lean.outputs["replicaRegions"] == [] and len(lean.outputs["readerEndpoints"]) == 1


def test_without_proxy_apps_reach_the_writer_directly(lean: ProgramRun) -> None:
    assert lean.of_type("aws:rds/proxy:Proxy") == []
    primary = lean.by_name("use2-pg-1")
    assert lean.outputs["writerEndpoint"] == primary.state["address"]
    writer_sg = lean.by_name("use2-pg-sg").state["id"]
    sources = {
        r.inputs["referencedSecurityGroupId"]
        for r in lean.of_type(INGRESS)
        if r.inputs["securityGroupId"] == writer_sg
    }
    assert "sg-0app" in sources


def test_layers_switched_off(lean: ProgramRun) -> None:
    assert lean.of_type("aws:elasticache/replicationGroup:ReplicationGroup") == []
    assert lean.of_type("aws:cloudtrail/trail:Trail") == []
    assert lean.outputs["redisPrimaryEndpoint"] is None
    assert lean.outputs["alarmTopicArn"]  # observability stays


def test_rotation_without_endpoints_has_https_egress_only() -> None:
    run = run_stack("staging", section("network", interfaceEndpoints=False))
    assert run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") == []
    rotation_sg = run.by_name("use2-pg-rotation-sg").state["id"]
    rules = [r.inputs for r in run.of_type(EGRESS) if r.inputs["securityGroupId"] == rotation_sg]
    assert {(r["fromPort"], r.get("cidrIpv4")) for r in rules} == {(5432, None), (443, "0.0.0.0/0")}
    assert not [r for r in run.of_type(INGRESS) if r.inputs["securityGroupId"] == rotation_sg]


def test_given_rotation_lambda_is_used_as_is() -> None:
    arn = "arn:aws:lambda:us-east-2:123456789012:function:pg-rotation"
    run = run_stack("staging", section("postgres", rotationLambdaArn=arn))
    (rotation,) = [
        r
        for r in run.of_type("aws:secretsmanager/secretRotation:SecretRotation")
        if r.name == "use2-pg-master"
    ]
    assert rotation.inputs["rotationLambdaArn"] == arn
    (app,) = run.of_type("aws:serverlessrepository/cloudFormationStack:CloudFormationStack")
    assert app.inputs["applicationId"].endswith("SecretsManagerRDSPostgreSQLRotationMultiUser")


def test_proxy_iam_auth_and_grant_connect() -> None:
    from commerce_db_components.postgres_cluster import PostgresCluster, PostgresClusterArgs
    from commerce_db_components.proxy_layer import ProxyLayer, ProxyLayerArgs

    def program() -> None:
        db = PostgresCluster(
            "db",
            PostgresClusterArgs(
                region="us-east-1", vpc_id="vpc-1", subnet_ids=["subnet-1", "subnet-2"], kms_key_arn="arn:k",
                rotation_lambda_arn="arn:aws:lambda:us-east-1:1:function:rot", in_region_replicas=0,
            ),
        )  # fmt: skip
        proxy = ProxyLayer(
            "px",
            ProxyLayerArgs(
                region="us-east-1", target=db, vpc_id="vpc-1", subnet_ids=["subnet-1", "subnet-2"],
                iam_auth="REQUIRED", allowed_security_groups={"web": "sg-web"},
            ),
        )  # fmt: skip
        proxy.grant_connect(aws.iam.Role("app", assume_role_policy="{}"), "app_user")

    run = run_program(program)
    (proxy,) = run.of_type("aws:rds/proxy:Proxy")
    assert proxy.inputs["auths"][0]["iamAuth"] == "REQUIRED"
    policy = json.loads(run.by_name("px-connect-app-app-user").inputs["policy"])
    assert policy["Statement"][0]["Resource"] == [
        f"arn:aws:rds-db:us-east-1:123456789012:dbuser:prx-{proxy.name}/app_user"
    ]
    assert run.by_name("px-from-web").inputs["referencedSecurityGroupId"] == "sg-web"
    # the proxy's only egress goes to the database security group
    (egress,) = [e for e in run.of_type(EGRESS) if e.name.startswith("px-")]
    assert egress.inputs["referencedSecurityGroupId"] == run.by_name("db-sg").state["id"]


def test_end_to_end_iam_proxy_may_connect_to_the_database() -> None:
    run = run_stack("staging", section("proxy", defaultAuthScheme="IAM_AUTH"))
    proxy = next(p for p in run.of_type("aws:rds/proxy:Proxy") if p.region == "us-east-2")  # the writer's
    assert proxy.inputs["defaultAuthScheme"] == "IAM_AUTH"
    policy = json.loads(run.by_name("use2-proxy-role-db-connect").inputs["policy"])
    resources = policy["Statement"][0]["Resource"]
    primary_id = run.by_name("use2-pg-1").state["resourceId"]
    assert f"arn:aws:rds-db:us-east-2:123456789012:dbuser:{primary_id}/*" in resources
