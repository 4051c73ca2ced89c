"""Small components and pure helpers: naming, network, keys, backup Args rules."""

from __future__ import annotations

import json

import pytest
from commerce_db_components.backup import BackupPlanArgs
from commerce_db_components.keys import RegionKeysArgs, key_policy
from commerce_db_components.network import Network, NetworkArgs
from commerce_db_components.region_stack import identifier_prefix, region_code

from commerce_db.mock_engine import run_program


@pytest.mark.parametrize(
    ("region", "code"),
    [("us-east-1", "use1"), ("eu-west-1", "euw1"), ("ap-southeast-2", "apse2"), ("eu-central-2", "euc2")],
)
def test_region_codes(region: str, code: str) -> None:
    assert region_code(region) == code


def test_identifier_prefix_is_a_valid_db_identifier_start() -> None:
    assert identifier_prefix("prod", "us-east-1") == "cdb-prod-use1"
    # A stack name that sanitising changes keeps a hash of itself, so Feature_X.2 and feature-x-2
    # (both valid stack names) never share identifiers.
    assert identifier_prefix("Feature_X.2", "eu-west-1") == "cdb-feature-x-2-a5a475-euw1"
    assert identifier_prefix("feature-x-2", "eu-west-1") == "cdb-feature-x-2-euw1"


def test_backup_args_rules() -> None:
    with pytest.raises(ValueError, match="retention_days 40"):
        BackupPlanArgs(region="us-east-1", kms_key_arn="k", retention_days=40)
    with pytest.raises(ValueError, match="lock_changeable_for_days 2"):
        BackupPlanArgs(region="us-east-1", kms_key_arn="k", lock=True, lock_changeable_for_days=2)
    with pytest.raises(ValueError, match="force-destroyed"):
        BackupPlanArgs(region="us-east-1", kms_key_arn="k", lock=True, force_destroy=True)


def test_network_args_rules() -> None:
    with pytest.raises(ValueError, match="existing_subnet_ids"):
        NetworkArgs(region="us-east-1", existing_vpc_id="vpc-1", existing_subnet_ids=["subnet-1"])
    with pytest.raises(ValueError, match="az_count"):
        NetworkArgs(region="us-east-1", az_count=1)
    with pytest.raises(ValueError, match="too small"):
        NetworkArgs(region="us-east-1", cidr_block="10.0.0.0/22", az_count=3)


def test_keys_args_and_policy() -> None:
    with pytest.raises(ValueError, match="deletion_window_days"):
        RegionKeysArgs(region="us-east-1", alias="x", deletion_window_days=3)
    policy = key_policy("111122223333", "eu-west-1")
    logs = next(s for s in policy["Statement"] if s["Sid"] == "CloudWatchLogsEncryptsOwnLogGroups")
    assert logs["Principal"]["Service"] == "logs.eu-west-1.amazonaws.com"
    assert (
        logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
        == "arn:aws:logs:eu-west-1:111122223333:*"
    )


def test_created_network_is_private_with_endpoint_access() -> None:
    def program() -> None:
        net = Network(
            "n",
            NetworkArgs(region="eu-west-1", cidr_block="10.50.0.0/16", az_count=3, interface_endpoints=True),
        )
        net.allow_endpoint_access("rotation", "sg-rot")

    run = run_program(program, config={"aws:region": "eu-west-1"})
    # Subnets register from an apply on the AZ lookup, in no fixed order: compare them by name.
    subnets = sorted(run.of_type("aws:ec2/subnet:Subnet"), key=lambda r: r.name)
    assert [(s.inputs["cidrBlock"], s.inputs["availabilityZone"]) for s in subnets] == [
        ("10.50.0.0/20", "eu-west-1a"), ("10.50.16.0/20", "eu-west-1b"), ("10.50.32.0/20", "eu-west-1c")
    ]  # fmt: skip
    (table,) = run.of_type("aws:ec2/routeTable:RouteTable")
    assert not table.inputs.get("routes")  # local route only: nothing leaves the VPC
    rule = run.by_name("n-endpoints-from-rotation")
    assert (rule.inputs["fromPort"], rule.inputs["referencedSecurityGroupId"]) == (443, "sg-rot")
    endpoints = run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert {e.inputs["serviceName"] for e in endpoints} == {
        "com.amazonaws.eu-west-1.secretsmanager", "com.amazonaws.eu-west-1.kms"
    }  # fmt: skip
    assert all(e.inputs["privateDnsEnabled"] is True for e in endpoints)
    assert json.dumps([r.inputs for r in run.resources]).count("0.0.0.0/0") == 0
