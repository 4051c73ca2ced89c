"""CacheLayer under the mock engine: registered inputs for every ElastiCache rule."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from _mockrun import run, single
from commerce_db_components.cache_layer import (
    AUTH_TOKEN_SPECIALS,
    CacheLayer,
    CacheLayerArgs,
    GlobalDatastoreRole,
    check_global_datastore_node_type,
    parameter_group_family,
)

from commerce_db.mock_engine import ProgramRun, SecretValue

RG = "aws:elasticache/replicationGroup:ReplicationGroup"
GRG = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"
CMK = "arn:aws:kms:us-east-1:123456789012:key/cmk-east"
WEST_CMK = "arn:aws:kms:us-west-2:123456789012:key/cmk-west"
BASE: dict[str, Any] = {"vpc_id": "vpc-1", "subnet_ids": ["subnet-a", "subnet-b"], "kms_key_arn": CMK}

# Fields a Global Datastore secondary must not send (InvalidParameterCombination otherwise).
FORBIDDEN_ON_SECONDARY = (
    "engine",
    "engineVersion",
    "parameterGroupName",
    "nodeType",
    "numNodeGroups",
    "atRestEncryptionEnabled",
    "transitEncryptionEnabled",
    "transitEncryptionMode",
    "authToken",
    "authTokenUpdateStrategy",
)


def build(**overrides: Any) -> ProgramRun:
    def program() -> None:
        layer = CacheLayer("cache", CacheLayerArgs(**{**BASE, **overrides}))
        pulumi.export("members", layer.member_cluster_ids)
        pulumi.export("secretArn", layer.auth_token_secret_arn)
        pulumi.export("port", layer.port)
        pulumi.export("primary", layer.primary_endpoint)
        pulumi.export("reader", layer.reader_endpoint)
        pulumi.export("globalId", layer.global_replication_group_id)

    return run(program)


def test_replication_group_is_encrypted_multi_az_with_auth_token() -> None:
    r = build()
    rg = single(r, RG).inputs
    assert rg["engine"] == "redis"
    assert rg["atRestEncryptionEnabled"] is True
    assert rg["kmsKeyId"] == CMK
    assert rg["transitEncryptionEnabled"] is True
    assert rg["transitEncryptionMode"] == "required"
    assert isinstance(rg["authToken"], SecretValue)
    assert rg["authTokenUpdateStrategy"] == "ROTATE"
    assert rg["multiAzEnabled"] is True
    assert rg["automaticFailoverEnabled"] is True
    assert rg["numCacheClusters"] >= 2
    assert rg["snapshotRetentionLimit"] == 7
    assert rg["snapshotWindow"] == "03:00-04:00"
    assert rg["maintenanceWindow"] == "sun:05:00-sun:06:00"
    assert rg["applyImmediately"] is False
    assert rg["nodeType"] == "cache.r7g.large"
    assert rg["port"] == 6379


def test_parameter_group_family_and_settings_are_wired() -> None:
    r = build(maxmemory_policy="allkeys-lru", extra_parameters={"timeout": "300"})
    params = single(r, "aws:elasticache/parameterGroup:ParameterGroup")
    assert params.inputs["family"] == "redis7"
    settings = {p["name"]: p["value"] for p in params.inputs["parameters"]}
    assert settings == {"maxmemory-policy": "allkeys-lru", "timeout": "300"}
    assert single(r, RG).inputs["parameterGroupName"] == params.state["name"]


@pytest.mark.parametrize(
    ("engine", "version", "family"),
    [
        ("redis", "7.1", "redis7"),
        ("valkey", "8.0", "valkey8"),
        ("valkey", "7.2", "valkey7"),
        ("redis", "6.2", "redis6.x"),
    ],
)
def test_parameter_group_family(engine: str, version: str, family: str) -> None:
    assert parameter_group_family(engine, version) == family


def test_valkey_engine_is_lowercase_and_family_matches() -> None:
    r = build(engine="valkey", engine_version="8.0")
    assert single(r, RG).inputs["engine"] == "valkey"
    assert single(r, "aws:elasticache/parameterGroup:ParameterGroup").inputs["family"] == "valkey8"


def test_transit_mode_left_to_default_before_redis_7() -> None:
    rg = single(build(engine_version="6.2"), RG).inputs
    assert rg["transitEncryptionEnabled"] is True
    assert "transitEncryptionMode" not in rg


def test_auth_token_is_random_alnum_by_default_and_limited_to_allowed_specials() -> None:
    pw = single(build(), "random:index/randomPassword:RandomPassword").inputs
    assert pw["length"] == 64
    assert pw["special"] is False
    assert set(pw["overrideSpecial"]) <= set("!&#$^<>-")

    special = single(
        build(auth_token_use_special=True, auth_token_length=128),
        "random:index/randomPassword:RandomPassword",
    ).inputs
    assert special["special"] is True
    assert special["overrideSpecial"] == AUTH_TOKEN_SPECIALS == "!&#$^<>-"
    assert special["length"] == 128


def test_auth_token_stored_in_kms_encrypted_secret_and_never_plain() -> None:
    r = build(secret_replica_regions={"us-west-2": "arn:aws:kms:us-west-2:123456789012:key/west"})
    secret = single(r, "aws:secretsmanager/secret:Secret")
    assert secret.inputs["kmsKeyId"] == CMK
    assert secret.inputs["replicas"] == [
        {"region": "us-west-2", "kmsKeyId": "arn:aws:kms:us-west-2:123456789012:key/west"}
    ]
    version = single(r, "aws:secretsmanager/secretVersion:SecretVersion")
    assert isinstance(version.inputs["secretString"], SecretValue)
    payload = json.loads(version.inputs["secretString"].reveal())
    token = single(r, RG).inputs["authToken"].reveal()
    assert payload["auth_token"] == token and len(token) == 64
    # No endpoints: the secret is replicated to regions where the primary's endpoints are wrong.
    assert payload == {"auth_token": token, "port": 6379, "tls": True}
    assert r.outputs["secretArn"] == secret.state["arn"]
    # The token appears nowhere in clear: not in any plain input, not in any output.
    for res in r.resources:
        assert token not in json.dumps(res.inputs, default=lambda v: "[secret]"), res.name
    assert token not in json.dumps(r.outputs, default=lambda v: "[secret]")


def test_security_group_only_from_named_groups_on_cache_port() -> None:
    def program() -> None:
        layer = CacheLayer("cache", CacheLayerArgs(**BASE, allowed_security_groups={"app": "sg-app"}))
        layer.allow_from("workers", "sg-workers")

    r = run(program)
    sg = single(r, "aws:ec2/securityGroup:SecurityGroup")
    assert not sg.inputs.get("ingress") and not sg.inputs.get("egress")
    rules = r.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert {x.name for x in rules} == {"cache-from-app", "cache-from-workers"}
    assert {x.inputs["referencedSecurityGroupId"] for x in rules} == {"sg-app", "sg-workers"}
    for rule in rules:
        assert rule.inputs["fromPort"] == rule.inputs["toPort"] == 6379
        assert rule.inputs["ipProtocol"] == "tcp"
        assert rule.inputs["securityGroupId"] == sg.state["id"]
        assert "cidrIpv4" not in rule.inputs and "cidrIpv6" not in rule.inputs
    everything = json.dumps([x.inputs for x in r.resources], default=str)
    assert "0.0.0.0/0" not in everything and "::/0" not in everything
    assert single(r, RG).inputs["securityGroupIds"] == [sg.state["id"]]


def test_allow_from_rejects_duplicate_and_bad_labels() -> None:
    errors: list[str] = []

    def program() -> None:
        layer = CacheLayer("cache", CacheLayerArgs(**BASE))
        layer.allow_from("app", "sg-1")
        for label in ("app", "Bad Label"):
            try:
                layer.allow_from(label, "sg-2")
            except ValueError as exc:
                errors.append(str(exc))

    run(program)
    assert len(errors) == 2
    assert "'app'" in errors[0] and "already used" in errors[0]
    assert "'Bad Label'" in errors[1]


def test_log_delivery_to_retained_encrypted_log_groups() -> None:
    r = build(log_retention_days=90)
    groups = {g.inputs["name"]: g.inputs for g in r.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert set(groups) == {"/aws/elasticache/dev/cache/slow-log", "/aws/elasticache/dev/cache/engine-log"}
    assert all(g["retentionInDays"] == 90 and g["kmsKeyId"] == CMK for g in groups.values())
    deliveries = single(r, RG).inputs["logDeliveryConfigurations"]
    assert {(d["logType"], d["destination"], d["destinationType"]) for d in deliveries} == {
        ("slow-log", "/aws/elasticache/dev/cache/slow-log", "cloudwatch-logs"),
        ("engine-log", "/aws/elasticache/dev/cache/engine-log", "cloudwatch-logs"),
    }
    assert "logDeliveryConfigurations" not in single(build(log_delivery=False), RG).inputs


def test_outputs_and_member_cluster_ids() -> None:
    r = build(num_cache_clusters=3)
    group = single(r, RG)
    assert r.outputs["members"] == [f"{group.state['id']}-00{n}" for n in (1, 2, 3)]
    assert r.outputs["port"] == 6379
    assert r.outputs["primary"].startswith("master.") and r.outputs["reader"].startswith("replica.")
    assert r.outputs["globalId"] is None
    assert r.of_type(GRG) == []


def test_children_are_parented_to_the_component() -> None:
    r = build()
    comp = single(r, "commerce:db:CacheLayer")
    assert comp.name == "cache"
    for res in r.resources:
        if res is not comp:
            assert res.parent_type == "commerce:db:CacheLayer", res.name
            assert res.name.startswith("cache-"), res.name


def test_global_datastore_primary_and_secondary() -> None:
    def program() -> None:
        west = aws.Provider("west", region="us-west-2")
        primary = CacheLayer(
            "cache",
            CacheLayerArgs(
                **BASE,
                global_datastore_role=GlobalDatastoreRole.PRIMARY,
                global_replication_group_id_suffix="commerce",
            ),
        )
        secondary = CacheLayer(
            "cache-west",
            CacheLayerArgs(
                vpc_id="vpc-west",
                subnet_ids=["w-a", "w-b"],
                kms_key_arn=WEST_CMK,
                global_datastore_role=GlobalDatastoreRole.SECONDARY,
                global_replication_group_id=primary.global_replication_group_id,
                auth_token_secret_arn="arn:aws:secretsmanager:us-west-2:123456789012:secret:token",
            ),
            opts=pulumi.ResourceOptions(provider=west),
        )
        pulumi.export("primaryGlobal", primary.global_replication_group_id)
        pulumi.export("secondaryGlobal", secondary.global_replication_group_id)
        pulumi.export("secondarySecret", secondary.auth_token_secret_arn)

    r = run(program)
    groups = {g.name: g for g in r.of_type(RG)}
    grg = single(r, GRG)
    assert grg.inputs["primaryReplicationGroupId"] == groups["cache-rg"].state["id"]
    assert grg.inputs["globalReplicationGroupIdSuffix"] == "commerce"
    assert "parameterGroupName" not in grg.inputs and "engineVersion" not in grg.inputs
    global_id = grg.state["globalReplicationGroupId"]
    assert r.outputs["primaryGlobal"] == r.outputs["secondaryGlobal"] == global_id

    sec = groups["cache-west-rg"]
    assert sec.region == "us-west-2"
    assert sec.inputs["globalReplicationGroupId"] == global_id
    # kmsKeyId is allowed on a secondary (aws-infra-facts §5) and keeps the group's identity
    # when a failover turns it into the primary (kms_key_id forces replacement).
    present = [k for k in FORBIDDEN_ON_SECONDARY if k in sec.inputs and k != "kmsKeyId"]
    assert present == [], f"secondary sets forbidden fields {present}"
    assert sec.inputs["multiAzEnabled"] is True and sec.inputs["automaticFailoverEnabled"] is True
    assert sec.inputs["numCacheClusters"] >= 2
    assert r.outputs["secondarySecret"].endswith(":secret:token")
    # Its CMK only encrypts its own log groups; node encryption comes from the global group.
    west_logs = [g for g in r.of_type("aws:cloudwatch/logGroup:LogGroup") if g.parent_name == "cache-west"]
    assert len(west_logs) == 2 and all(g.inputs["kmsKeyId"] == WEST_CMK for g in west_logs)
    # The secondary owns no parameter group, token or secret: all inherited from the global group.
    west_children = {x.type for x in r.resources if x.parent_name == "cache-west"}
    assert "aws:elasticache/parameterGroup:ParameterGroup" not in west_children
    assert "random:index/randomPassword:RandomPassword" not in west_children
    assert "aws:secretsmanager/secret:Secret" not in west_children
    # The primary stays fully encrypted.
    prim = groups["cache-rg"].inputs
    assert prim["atRestEncryptionEnabled"] is True and prim["transitEncryptionEnabled"] is True


@pytest.mark.parametrize(
    "node_type", ["cache.r7g.large", "cache.m7g.xlarge", "cache.r6gd.2xlarge", "cache.c7gn.large"]
)
def test_global_datastore_node_types_accepted(node_type: str) -> None:
    check_global_datastore_node_type(node_type)
    CacheLayerArgs(**BASE, node_type=node_type, global_datastore_role=GlobalDatastoreRole.PRIMARY)


@pytest.mark.parametrize(
    "node_type",
    [
        "cache.t4g.medium",
        "cache.t3.large",
        "cache.m5.medium",
        "cache.r6g.small",
        "cache.m6i.large",
        "r6g.large",
    ],
)
def test_global_datastore_rejects_burstable_and_small_nodes(node_type: str) -> None:
    with pytest.raises(ValueError, match=node_type.replace(".", r"\.")):
        check_global_datastore_node_type(node_type)
    with pytest.raises(ValueError, match="node_type"):
        CacheLayerArgs(**BASE, node_type=node_type, global_datastore_role=GlobalDatastoreRole.PRIMARY)


def test_burstable_node_is_fine_without_global_datastore() -> None:
    assert CacheLayerArgs(**BASE, node_type="cache.t4g.medium").node_type == "cache.t4g.medium"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"engine": "Redis"}, "engine"),
        ({"engine_version": "seven"}, "engine_version"),
        ({"num_cache_clusters": 1}, "num_cache_clusters"),
        ({"auth_token_length": 12}, "auth_token_length"),
        ({"auth_token_length": 129}, "auth_token_length"),
        ({"auth_token_update_strategy": "rotate"}, "auth_token_update_strategy"),
        ({"snapshot_retention_limit": 36}, "snapshot_retention_limit"),
        ({"snapshot_window": "5-6"}, "snapshot_window"),
        ({"snapshot_window": "05:00-05:30"}, "snapshot_window"),
        ({"maintenance_window": "sunday 5am"}, "maintenance_window"),
        ({"snapshot_window": "05:00-06:00", "maintenance_window": "sun:05:30-sun:06:30"}, "overlaps"),
        ({"snapshot_window": "23:30-00:30", "maintenance_window": "mon:00:00-mon:01:00"}, "overlaps"),
        ({"maxmemory_policy": "lru"}, "maxmemory_policy"),
        ({"log_retention_days": 10}, "log_retention_days"),
        ({"global_datastore_role": "tertiary"}, "global_datastore_role"),
        ({"kms_key_arn": None}, "kms_key_arn"),
        ({"global_replication_group_id": "x"}, "global_replication_group_id"),
        ({"global_datastore_role": "secondary", "kms_key_arn": None}, "global_replication_group_id"),
        ({"allowed_security_groups": {"App SG": "sg-1"}}, "label"),
        ({"secret_recovery_window_days": 3}, "secret_recovery_window_days"),
    ],
)
def test_invalid_args_raise_value_error_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        CacheLayerArgs(**{**BASE, **overrides})


def test_args_are_frozen_and_role_string_is_coerced() -> None:
    args = CacheLayerArgs(**BASE, global_datastore_role=GlobalDatastoreRole.PRIMARY)
    assert args.global_datastore_role is GlobalDatastoreRole.PRIMARY
    with pytest.raises(AttributeError):
        args.engine = "valkey"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("maintenance", "snapshot", "overlaps"),
    [
        ("sun:23:30-mon:00:30", "00:00-01:00", True),  # weekly window wraps into Monday
        ("sun:23:00-mon:00:00", "00:00-01:00", False),  # touching is not overlapping
        ("sun:05:00-sun:06:00", "03:00-04:00", False),
        ("wed:03:30-wed:04:30", "03:00-04:00", True),
        ("mon:00:00-mon:01:00", "23:30-00:30", True),  # daily window crosses midnight
        ("tue:01:00-tue:02:00", "23:30-00:30", False),
        ("sat:22:00-sun:02:00", "01:00-02:00", True),
    ],
)
def test_window_overlap_detection(maintenance: str, snapshot: str, overlaps: bool) -> None:
    if overlaps:
        with pytest.raises(ValueError, match="overlaps"):
            CacheLayerArgs(**BASE, maintenance_window=maintenance, snapshot_window=snapshot)
    else:
        CacheLayerArgs(**BASE, maintenance_window=maintenance, snapshot_window=snapshot)
    # With snapshots off the windows may overlap.
    CacheLayerArgs(
        **BASE, maintenance_window=maintenance, snapshot_window=snapshot, snapshot_retention_limit=0
    )


def test_auth_token_output_of_the_replication_group_is_a_pulumi_secret() -> None:
    def program() -> None:
        layer = CacheLayer("cache", CacheLayerArgs(**BASE))
        pulumi.export("token", layer.replication_group.auth_token)
        pulumi.export("secretArn", layer.auth_token_secret_arn)

    r = run(program)
    assert isinstance(r.outputs["token"], SecretValue)
    assert not isinstance(r.outputs["secretArn"], SecretValue)  # the ARN is not sensitive
