"""Issue 9: what makes the first `pulumi up` of prod and staging fail, or the second one drift.

Each test reproduces one finding of the independent review from the registered resources, their
options (protect, retain_on_delete, ignore_changes) and their dependencies (what waits for what),
so that it would have failed before the fix.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from _stackfiles import run_stack

from commerce_db.mock_engine import ProgramRun, RegisteredResource, SecretValue

INSTANCE = "aws:rds/instance:Instance"
KEY = "aws:kms/key:Key"
RG = "aws:elasticache/replicationGroup:ReplicationGroup"
ECPARAMS = "aws:elasticache/parameterGroup:ParameterGroup"
SECRET = "aws:secretsmanager/secret:Secret"


@pytest.fixture(scope="module")
def prod() -> ProgramRun:
    return run_stack("prod")


@pytest.fixture(scope="module")
def staging() -> ProgramRun:
    return run_stack("staging")


def _primary(run: ProgramRun) -> RegisteredResource:
    """The RDS primary: the instance that replicates nothing."""
    (primary,) = [r for r in run.of_type(INSTANCE) if "replicateSourceDb" not in r.inputs]
    return primary


def plain(value: Any) -> Any:
    return value.reveal() if isinstance(value, SecretValue) else value


def doc(r: RegisteredResource, key: str = "policy") -> dict[str, Any]:
    value = plain(r.inputs[key])
    return json.loads(value) if isinstance(value, str) else value


# ---------------------------------------------------------------- finding 1: CloudTrail key policy


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_kms_describe_key_is_never_conditioned_on_an_encryption_context(
    stack: str, request: pytest.FixtureRequest
) -> None:
    """DescribeKey requests carry no encryption context: such a condition never matches, and
    CreateTrail fails with InsufficientEncryptionPolicyException."""
    run: ProgramRun = request.getfixturevalue(stack)
    keys = run.of_type(KEY)
    assert keys
    for key in keys:
        for st in doc(key)["Statement"]:
            if any(a in ("kms:DescribeKey", "kms:Describe*") for a in _actions(st)):
                conditions = st.get("Condition", {})
                context_keys = [k for c in conditions.values() for k in c if "EncryptionContext" in k]
                principal = st.get("Principal", {})
                # The logs statement is AWS's documented CloudWatch Logs form; CloudTrail must not be.
                if principal.get("Service") == "cloudtrail.amazonaws.com":
                    assert not context_keys, (key.name, st)


def test_cloudtrail_can_describe_the_trail_key(prod: ProgramRun) -> None:
    primary_key = next(k for k in prod.of_type(KEY) if k.name.startswith("use1-keys"))
    statements = doc(primary_key)["Statement"]
    describe = [
        st
        for st in statements
        if st.get("Principal", {}).get("Service") == "cloudtrail.amazonaws.com"
        and "kms:DescribeKey" in _actions(st)
    ]
    assert len(describe) == 1
    assert set(describe[0].get("Condition", {}).get("StringLike", {})) == {"aws:SourceArn"}


# ---------------------------------------------------------------- finding 8: empty parameters


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_no_elasticache_parameter_with_an_empty_value(stack: str, request: pytest.FixtureRequest) -> None:
    """AWS returns an empty parameter without a value: every `up` would show a diff."""
    run: ProgramRun = request.getfixturevalue(stack)
    for group in run.of_type(ECPARAMS) + run.of_type("aws:rds/parameterGroup:ParameterGroup"):
        for p in group.inputs.get("parameters", []):
            assert p.get("value") not in ("", None), (group.name, p)


def test_cache_layer_refuses_empty_parameter_values() -> None:
    from commerce_db_components.cache_layer import CacheLayerArgs

    with pytest.raises(ValueError, match=r"extra_parameters\['notify-keyspace-events'\]"):
        CacheLayerArgs(
            vpc_id="vpc-1",
            subnet_ids=[],
            kms_key_arn="arn:k",
            extra_parameters={"notify-keyspace-events": ""},
        )


# ---------------------------------------------------------------- finding 9: protection

STATEFUL = (
    INSTANCE,
    "aws:rds/cluster:Cluster",
    "aws:rds/globalCluster:GlobalCluster",
    KEY,
    "aws:backup/vault:Vault",
    SECRET,
    RG,
    "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup",
)


def test_prod_protects_and_retains_everything_that_holds_data(prod: ProgramRun) -> None:
    stateful = [r for r in prod.resources if r.type in STATEFUL]
    buckets = [r for r in prod.of_type("aws:s3/bucket:Bucket") if r.parent_type == "commerce:db:AuditTrail"]
    assert len(stateful) >= 15 and buckets
    loose = [r.name for r in (*stateful, *buckets) if not (r.protect and r.retain_on_delete)]
    assert loose == []


def test_prod_cache_takes_a_final_snapshot_unique_per_stack(prod: ProgramRun) -> None:
    groups = {r.name: r for r in prod.of_type(RG)}
    primary = next(r for n, r in groups.items() if n.startswith("use1-"))
    assert primary.inputs["finalSnapshotIdentifier"] == "cdb-prod-use1-cache-final"
    other = run_stack("prod", stack_name="prod-eu")
    assert (
        next(r for r in other.of_type(RG) if r.name.startswith("use1-")).inputs["finalSnapshotIdentifier"]
        != primary.inputs["finalSnapshotIdentifier"]
    )
    # A Global Datastore secondary holds no data of its own to snapshot.
    assert all(
        "finalSnapshotIdentifier" not in r.inputs for n, r in groups.items() if not n.startswith("use1-")
    )


def test_staging_is_disposable(staging: ProgramRun) -> None:
    # Nothing protected; KMS keys are still retained on delete (helper "dr"'s choice: snapshots
    # encrypted with them must stay readable).
    assert not [r.name for r in staging.resources if r.protect]
    assert {r.type for r in staging.resources if r.retain_on_delete} <= {KEY}


def test_prod_refuses_unprotected_resources() -> None:
    from commerce_db_components.config import ConfigError

    with pytest.raises(ConfigError, match="protectResources"):
        run_stack("prod", {"commerce-db:protectResources": False})


# ---------------------------------------------------------------- finding 2: interface endpoints

ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"


def test_no_private_dns_endpoints_in_vpcs_the_stack_does_not_own(prod: ProgramRun) -> None:
    assert prod.of_type(ENDPOINT) == []


def test_endpoints_asked_for_in_an_existing_vpc_admit_the_applications() -> None:
    from _stackfiles import stack_config

    net = {**stack_config("prod")["commerce-db:network"], "interfaceEndpoints": True}
    run = run_stack("prod", {"commerce-db:network": net})
    assert len(run.of_type(ENDPOINT)) == 6
    for region, sgs in net["appSecurityGroupIds"].items():
        ep_sgs = {e.inputs["securityGroupIds"][0] for e in run.of_type(ENDPOINT) if e.region == region}
        (ep_sg,) = ep_sgs
        admitted = {
            r.inputs["referencedSecurityGroupId"]
            for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
            if r.inputs.get("securityGroupId") == ep_sg
        }
        assert set(sgs) <= admitted, region


# ---------------------------------------------------------------- finding 3: Global Datastore order


def test_global_datastore_secondaries_join_one_at_a_time(prod: ProgramRun) -> None:
    groups = {r.region: r for r in prod.of_type(RG)}
    first, second = groups["us-west-2"], groups["eu-west-1"]
    assert prod.waits_for(second, first)
    assert not prod.waits_for(first, second)
    global_group = prod.of_type("aws:elasticache/globalReplicationGroup:GlobalReplicationGroup")[0]
    assert prod.waits_for(first, global_group) and prod.waits_for(second, global_group)


def test_global_datastore_primary_leaves_its_parameter_group_to_aws(prod: ProgramRun) -> None:
    """Found by the independent review: AWS moves a group joining a Global Datastore to a
    "global-datastore-..." parameter group and rejects changing it on the member, so the second
    `up` would show a diff and fail."""
    members = [r for r in prod.of_type(RG) if not r.inputs.get("globalReplicationGroupId")]
    assert len(members) == 1  # the Global Datastore's primary; the secondaries name the global group
    primary = members[0]
    assert {"engineVersion", "parameterGroupName"} <= set(primary.ignore_changes or [])


# ---------------------------------------------------------------- finding 4: first rotation


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_first_rotation_waits_for_the_database_and_its_network_path(
    stack: str, request: pytest.FixtureRequest
) -> None:
    run: ProgramRun = request.getfixturevalue(stack)
    rotation = next(r for r in run.of_type("aws:secretsmanager/secretRotation:SecretRotation"))
    primary = _primary(run)
    assert run.waits_for(rotation, primary)
    version = next(
        r
        for r in run.of_type("aws:secretsmanager/secretVersion:SecretVersion")
        if r.name.endswith("-pg-master")
    )
    assert run.waits_for(rotation, version)
    # Found by the independent review: the user bootstrap signs in with the master's first
    # password, so the master's first rotation must not run while it does.
    for bootstrap in run.of_type("aws:lambda/invocation:Invocation"):
        assert run.waits_for(rotation, bootstrap) and not run.waits_for(bootstrap, rotation)
    rules = [r for r in run.resources if r.type.startswith("aws:vpc/securityGroup") and "rotation" in r.name]
    # database ingress from the Lambda, its egress to the database and to HTTPS (+ endpoints)
    assert len(rules) >= 3
    for rule in rules:
        assert run.waits_for(rotation, rule), rule.name


# ---------------------------------------------------------------- finding 5: engine version


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_engine_version_is_the_major_and_extended_support_is_stated(
    stack: str, request: pytest.FixtureRequest
) -> None:
    run: ProgramRun = request.getfixturevalue(stack)
    primary = _primary(run)
    assert primary.inputs["autoMinorVersionUpgrade"] is True
    assert primary.inputs["engineVersion"] == "16"
    assert primary.inputs["engineLifecycleSupport"] == "open-source-rds-extended-support-disabled"


def test_components_refuse_a_pinned_minor_with_auto_upgrades() -> None:
    from commerce_db_components.postgres_cluster import PostgresClusterArgs

    with pytest.raises(ValueError, match=r"engine_version '16\.6' pins a minor"):
        PostgresClusterArgs(
            region="us-east-1", vpc_id="v", subnet_ids=[], kms_key_arn="k", engine_version="16.6"
        )
    args = PostgresClusterArgs(
        region="us-east-1",
        vpc_id="v",
        subnet_ids=[],
        kms_key_arn="k",
        engine_version="16.6",
        auto_minor_version_upgrade=False,
    )
    assert args.engine_version == "16.6"


# ---------------------------------------------------------------- finding 6: regional CMKs


def test_global_datastore_secondaries_and_their_logs_use_their_regions_cmk(prod: ProgramRun) -> None:
    keys = {k.region: k for k in prod.of_type(KEY) if k.parent_type == "commerce:db:RegionKeys"}
    for group in prod.of_type(RG):
        key_arn = keys[group.region].state["arn"]
        assert group.inputs["kmsKeyId"] == key_arn, group.region
        logs = [
            r for r in prod.of_type("aws:cloudwatch/logGroup:LogGroup") if r.parent_urn == group.parent_urn
        ]
        assert len(logs) == 2 and all(lg.inputs["kmsKeyId"] == key_arn for lg in logs), group.region


# ---------------------------------------------------------------- finding 10: storage per role


def test_replicas_get_gp3_unless_configured(prod: ProgramRun) -> None:
    primary = _primary(prod)
    assert (primary.inputs["storageType"], primary.inputs["iops"]) == ("io2", 20000)
    replicas = [r for r in prod.of_type(INSTANCE) if "replicateSourceDb" in r.inputs]
    assert len(replicas) == 4
    # Slot 1 of each replica region is the writer-to-be: the writer's storage (issue 15, finding 6).
    promotable = {r.name for r in replicas if r.region != primary.region and r.name.endswith("-pg-1")}
    assert len(promotable) == 2
    for r in replicas:
        if r.name in promotable:
            assert (r.inputs["storageType"], r.inputs["iops"]) == ("io2", 20000)
            assert "storageThroughput" not in r.inputs
            continue
        # 1000 GiB inherited from the source: gp3's baseline from 400 GiB
        assert (r.inputs["storageType"], r.inputs["iops"], r.inputs["storageThroughput"]) == (
            "gp3",
            12000,
            500,
        )


def test_replica_storage_is_configurable() -> None:
    from _stackfiles import stack_config

    pg = {**stack_config("prod")["commerce-db:postgres"], "replicaStorageType": "io2", "replicaIops": 6000}
    run = run_stack("prod", {"commerce-db:postgres": pg})
    replicas = [r for r in run.of_type(INSTANCE) if "replicateSourceDb" in r.inputs]
    readers = [r for r in replicas if r.region == "us-east-1"]  # in-region; slot 1 elsewhere is the writer's
    assert {(r.inputs["storageType"], r.inputs["iops"]) for r in readers} == {("io2", 6000)}
    assert all("storageThroughput" not in r.inputs for r in replicas)


# ---------------------------------------------------------------- finding 12: the catalogue


def _prod_with(**postgres: Any) -> dict[str, Any]:
    from _stackfiles import stack_config

    return {"commerce-db:postgres": {**stack_config("prod")["commerce-db:postgres"], **postgres}}


@pytest.mark.parametrize(
    ("overrides", "key", "words"),
    [
        ({"instanceClass": "db.x9z.huge"}, "postgres.instanceClass", ["not an RDS postgres instance class"]),
        ({"instanceClass": "db.t3.micro"}, "postgres.instanceClass", ["Performance Insights"]),
        ({"instanceClass": "db.r7g.large", "iops": 50000}, "postgres.iops", ["at most 40000 IOPS"]),
        (
            {
                "instanceClass": "db.t4g.medium",
                "storageType": "gp3",
                "iops": None,
                "databaseInsightsMode": "standard",
                "performanceInsightsRetentionDays": 7,
            },
            "postgres.parameters.maxConnections",
            ["max_connections 2000", "<= 450"],
        ),
        (
            {"replicaInstanceClass": "db.r7g.2xlarg"},
            "postgres.replicaInstanceClass",
            ["did you mean db.r7g.2xlarge"],
        ),
        ({"engineVersion": "16.99", "autoMinorVersionUpgrade": False}, "postgres.engineVersion", ["16.6"]),
    ],
)
def test_configs_aws_would_reject_are_refused_naming_key_and_allowed(
    overrides: dict[str, Any], key: str, words: list[str]
) -> None:
    from commerce_db_components.config import ConfigError

    with pytest.raises(ConfigError) as info:
        run_stack("prod", _prod_with(**overrides))
    assert info.value.key == key, str(info.value)
    assert "allowed" in str(info.value)
    for w in words:
        assert w in str(info.value)


def test_node_types_are_checked_in_every_region_of_the_global_datastore() -> None:
    from _stackfiles import stack_config
    from commerce_db_components.config import ConfigError

    cache = {**stack_config("prod")["commerce-db:cache"], "nodeType": "cache.r7g.huge"}
    with pytest.raises(ConfigError) as info:
        run_stack("prod", {"commerce-db:cache": cache})
    assert info.value.key == "cache.nodeType" and "allowed" in str(info.value)


def test_components_check_the_catalogue_themselves() -> None:
    from commerce_db_components.cache_layer import CacheLayerArgs
    from commerce_db_components.postgres_cluster import CrossRegionReplicasArgs, PostgresClusterArgs

    with pytest.raises(ValueError, match=r"instance_class 'db\.x9z\.huge' is not an RDS postgres"):
        PostgresClusterArgs(
            region="us-east-1", vpc_id="v", subnet_ids=[], kms_key_arn="k", instance_class="db.x9z.huge"
        )
    with pytest.raises(ValueError, match="not an RDS postgres instance class orderable in eu-west-1"):
        CrossRegionReplicasArgs(
            region="eu-west-1", source_region="us-east-1", source_arn="a", vpc_id="v", subnet_ids=[],
            kms_key_arn="k", instance_class="db.x9z.huge",
        )  # fmt: skip
    with pytest.raises(ValueError, match=r"node_type 'cache\.r9z\.large' is not an ElastiCache node type"):
        CacheLayerArgs(vpc_id="v", subnet_ids=[], kms_key_arn="k", node_type="cache.r9z.large")


def test_catalogue_records_source_and_date() -> None:
    from commerce_db_components.catalogue import catalogue

    data = catalogue()
    assert "cfn-lint" in data["source"]["package"] and data["source"]["extracted"]
    assert "transcribed" in data["class_limits"]["source"]["instance_classes"]
    assert len(data["rds"]["postgres"]["instance_classes"]["us-east-1"]) > 200


# ---------------------------------------------------------------- finding 11


def _region_keys(run: ProgramRun) -> dict[str, str]:
    return {k.region: k.state["arn"] for k in run.of_type(KEY) if k.parent_type == "commerce:db:RegionKeys"}


def test_secret_replicas_use_each_regions_cmk(prod: ProgramRun) -> None:
    keys = _region_keys(prod)
    secrets = [s for s in prod.of_type(SECRET) if s.inputs.get("replicas")]
    assert len(secrets) == 4  # master secret, two application users, AUTH token
    for secret in secrets:
        replicas = {r["region"]: r.get("kmsKeyId") for r in secret.inputs["replicas"]}
        assert replicas == {"us-west-2": keys["us-west-2"], "eu-west-1": keys["eu-west-1"]}, secret.name


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_elasticache_events_go_to_the_regions_alarm_topic(stack: str, request: pytest.FixtureRequest) -> None:
    run: ProgramRun = request.getfixturevalue(stack)
    topics = {
        t.region: t.state["arn"] for t in run.of_type("aws:sns/topic:Topic") if t.name.endswith("-alarms")
    }
    groups = run.of_type(RG)
    assert groups
    for group in groups:
        assert group.inputs["notificationTopicArn"] == topics[group.region]


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_proxy_log_group_is_ours_and_created_first(stack: str, request: pytest.FixtureRequest) -> None:
    run: ProgramRun = request.getfixturevalue(stack)
    proxies = run.of_type("aws:rds/proxy:Proxy")
    assert proxies  # prod: one per region (replica regions' are pre-created for a failover)
    for proxy in proxies:
        log_group = next(
            lg
            for lg in run.of_type("aws:cloudwatch/logGroup:LogGroup")
            if lg.inputs["name"] == f"/aws/rds/proxy/{proxy.inputs['name']}"
        )
        assert log_group.region == proxy.region
        assert log_group.inputs["kmsKeyId"] == _region_keys(run)[proxy.region]
        assert log_group.inputs["retentionInDays"] in (365, 14)
        assert run.waits_for(proxy, log_group)


def test_trail_is_a_stated_priced_choice() -> None:
    from commerce_db.plan import plan_stack

    root = __import__("pathlib").Path(__file__).resolve().parents[3]
    prod = plan_stack("prod", project_dir=root)
    trail_lines = [line for line in prod.cost.lines if line.resource.endswith("-trail")]
    assert len(trail_lines) == 1 and (trail_lines[0].monthly or 0) > 0  # a paid additional copy
    staging = plan_stack("staging", project_dir=root)
    assert staging.run.of_type("aws:cloudtrail/trail:Trail") == []  # the organisation's trail records it
    first = plan_stack("prod", project_dir=root, overrides=["audit.trail=first"])
    assert [line.monthly for line in first.cost.lines if line.resource.endswith("-trail")] == [0.0]


# ---------------------------------------------------------------- finding 7: application users


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_applications_get_their_own_rotated_users(stack: str, request: pytest.FixtureRequest) -> None:
    run: ProgramRun = request.getfixturevalue(stack)
    secrets = {s.name: s for s in run.of_type(SECRET)}
    writer = next(s for n, s in secrets.items() if n.endswith("-pg-app-writer"))
    reader = next(s for n, s in secrets.items() if n.endswith("-pg-app-reader"))
    master = next(s for n, s in secrets.items() if n.endswith("-pg-master"))
    proxy = next(p for p in run.of_type("aws:rds/proxy:Proxy") if p.region == _primary(run).region)
    # the proxy signs applications in as their own users, never as the master
    assert {a["secretArn"] for a in proxy.inputs["auths"]} == {writer.state["arn"], reader.state["arn"]}
    versions = {v.name: v for v in run.of_type("aws:secretsmanager/secretVersion:SecretVersion")}
    for secret in (writer, reader):
        body = json.loads(plain(versions[secret.name].inputs["secretString"]))
        assert body["masterarn"] == master.state["arn"]  # what the alternating-users function needs
        assert body["username"] in ("app_writer", "app_reader")
    rotations = {r.name: r for r in run.of_type("aws:secretsmanager/secretRotation:SecretRotation")}
    multi = next(
        a
        for a in run.of_type("aws:serverlessrepository/cloudFormationStack:CloudFormationStack")
        if a.inputs["applicationId"].endswith("RotationMultiUser")
    )
    assert multi.inputs["parameters"]["masterSecretArn"] == master.state["arn"]
    bootstrap = run.of_type("aws:lambda/invocation:Invocation")[0]
    primary = _primary(run)
    assert run.waits_for(bootstrap, primary)
    for secret in (writer, reader):
        rotation = rotations[secret.name]
        # the first alternating-users rotation signs in as the user: the bootstrap created it
        assert run.waits_for(rotation, bootstrap)
    event = json.loads(bootstrap.inputs["input"])
    assert event["master_secret_arn"] == master.state["arn"]
    assert {(u["secret_arn"], u["role"]) for u in event["users"]} == {
        (writer.state["arn"], "writer"),
        (reader.state["arn"], "reader"),
    }


def test_bootstrap_lambda_reads_only_its_secrets_and_logs_to_our_group(prod: ProgramRun) -> None:
    fn = prod.of_type("aws:lambda/function:Function")[0]
    assert fn.inputs["vpcConfig"]["securityGroupIds"]
    policy = doc(
        next(
            p
            for p in prod.of_type("aws:iam/rolePolicy:RolePolicy")
            if p.name.endswith("db-bootstrap-secrets")
        )
    )
    read = next(s for s in policy["Statement"] if s["Action"] == "secretsmanager:GetSecretValue")
    assert len(read["Resource"]) == 3  # master + the two application users
    logs = next(
        lg
        for lg in prod.of_type("aws:cloudwatch/logGroup:LogGroup")
        if lg.inputs["name"] == f"/aws/lambda/{fn.inputs['name']}"
    )
    assert logs.inputs["kmsKeyId"] and prod.waits_for(fn, logs)
    # creating a VPC function needs ec2:CreateNetworkInterface on its role first
    vpc_access = next(
        a
        for a in prod.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.name.endswith("db-bootstrap-vpc")
    )
    assert prod.waits_for(fn, vpc_access)


def test_plan_prices_replica_storage_as_the_replicas_own() -> None:
    """Finding 10 in money: io2 at 20,000 IOPS on four replicas was ~$12k of ~$20.5k a month. Only
    the writer and the replica each replica region promotes in a failover (slot 1, the writer's
    storage: issue 15, finding 6) pay for provisioned IOPS; the in-region read replicas are gp3."""
    from commerce_db.plan import plan_stack

    root = __import__("pathlib").Path(__file__).resolve().parents[3]
    report = plan_stack("prod", project_dir=root)
    iops_lines = [line for line in report.cost.lines if line.category == "rds-iops"]
    primary_name = _primary(report.run).name
    assert sorted(line.resource for line in iops_lines) == sorted([primary_name, "usw2-pg-1", "euw1-pg-1"])
    replica_storage = [
        line
        for line in report.cost.lines
        if line.category == "rds-storage" and line.resource not in (primary_name, "usw2-pg-1", "euw1-pg-1")
    ]
    assert len(replica_storage) == 2 and all(line.detail.startswith("gp3") for line in replica_storage)
    assert report.cost.monthly_total < 20000


def test_force_ssl_cannot_be_turned_off_by_a_reusing_team() -> None:
    """Issue 14 item 1: PostgresParameters itself refuses to override rds.force_ssl."""
    from commerce_db_components.config import PostgresParameters

    for name in ("rds.force_ssl", "RDS.FORCE_SSL", "shared_preload_libraries"):
        with pytest.raises(ValueError, match="TLS is required"):
            PostgresParameters(extra={name: "0"})
    assert PostgresParameters(extra={"jit": "off"}).extra == {"jit": "off"}


# ---------------------------------------------------------------- physical names per stack (issue 14 item 3)

_PHYSICAL = ("name", "identifier", "finalSnapshotIdentifier", "clusterIdentifier", "globalClusterIdentifier",
             "globalReplicationGroupIdSuffix", "functionName", "dashboardName", "alarmName",
             "replicationGroupId", "trailName", "vaultName", "secretName")  # fmt: skip


def _physical_names(run: ProgramRun) -> set[tuple[str, str, str | None]]:
    out = set()
    for r in run.resources:
        if not r.custom or r.type in (
            "aws:backup/selection:Selection",
            "aws:backup/restoreTestingSelection:RestoreTestingSelection",
        ):
            # Unique per plan only (a selection's name lives inside its plan).
            continue
        keys = (*_PHYSICAL, "bucket") if r.type.startswith("aws:s3/bucket:") else _PHYSICAL
        for key in keys:
            value = r.inputs.get(key)
            if isinstance(value, str):
                out.add((r.type, value, r.region))
        params = r.inputs.get("parameters")
        if isinstance(params, dict) and isinstance(params.get("functionName"), str):
            out.add((r.type, params["functionName"], r.region))
    return out


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_two_stacks_of_one_program_share_no_physical_name(stack: str, request: pytest.FixtureRequest) -> None:
    run: ProgramRun = request.getfixturevalue(stack)
    other = run_stack(stack, stack_name=f"{stack}-second")
    assert _physical_names(run) & _physical_names(other) == set()


def test_component_defaults_are_unique_per_stack() -> None:
    from commerce_db_components.postgres_cluster import PostgresCluster, PostgresClusterArgs

    from commerce_db.mock_engine import run_program

    def program() -> None:
        PostgresCluster(
            "db", PostgresClusterArgs(region="us-east-1", vpc_id="v", subnet_ids=["a", "b"], kms_key_arn="k")
        )

    names = []
    for stack in ("blue", "green"):
        run = run_program(program, stack=stack, config={"aws:region": "us-east-1"})
        primary = next(r for r in run.of_type(INSTANCE) if "replicateSourceDb" not in r.inputs)
        names.append(primary.inputs["finalSnapshotIdentifier"])
    assert names == ["db-blue-final", "db-green-final"]


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_instances_wait_for_the_monitoring_roles_policy(stack: str, request: pytest.FixtureRequest) -> None:
    """RDS validates the enhanced-monitoring role when an instance is created with it: the
    instance must wait for the role's policy attachment, not only for the role."""
    run: ProgramRun = request.getfixturevalue(stack)
    attachments = [
        a for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if "monitoring" in a.name
    ]
    instances = [i for i in run.of_type("aws:rds/instance:Instance") if i.inputs.get("monitoringRoleArn")]
    assert attachments and instances
    for instance in instances:
        assert any(run.waits_for(instance, a) for a in attachments), instance.name


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_backup_jobs_wait_for_the_backup_roles_policies(stack: str, request: pytest.FixtureRequest) -> None:
    """AWS Backup checks its role when a selection is created: the shared _iam.service_role helper
    hands out the ARN only after every policy attachment exists (as for RDS monitoring)."""
    run: ProgramRun = request.getfixturevalue(stack)
    attachments = [
        a for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if "-backup-" in a.name
    ]
    selections = run.of_type("aws:backup/selection:Selection")
    assert len(attachments) == 2 and selections
    for selection in selections:
        assert all(run.waits_for(selection, a) for a in attachments), selection.name
