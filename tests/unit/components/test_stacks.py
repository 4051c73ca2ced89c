"""The whole program under the mock engine with each stack file's own config: registered inputs.

Each stack is run once per module (a run takes about a second); tests read the recorded
resources. Every AWS fact of issue 2 that lives in these layers is asserted on inputs.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest
from _stackfiles import run_stack
from commerce_db_components.config import ConfigError

from commerce_db.mock_engine import ProgramRun, RegisteredResource, SecretValue

INSTANCE = "aws:rds/instance:Instance"
PARAMS = "aws:rds/parameterGroup:ParameterGroup"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"


@pytest.fixture(scope="module")
def prod() -> ProgramRun:
    return run_stack("prod")


@pytest.fixture(scope="module")
def staging() -> ProgramRun:
    return run_stack("staging")


@pytest.fixture(scope="module")
def aurora() -> ProgramRun:
    """staging switched to the Aurora variant (the PoC), one region's cluster."""
    from _stackfiles import stack_config

    pg = {**stack_config("staging")["commerce-db:postgres"], "engineMode": "aurora", "crossRegionReplicas": 0}
    return run_stack("staging", {"commerce-db:postgres": pg})


def by_urn(run: ProgramRun) -> dict[str, RegisteredResource]:
    return {r.urn: r for r in run.resources}


def primary_instance(run: ProgramRun) -> RegisteredResource:
    return next(r for r in run.of_type(INSTANCE) if r.name.endswith("-pg-1"))


def replicas(run: ProgramRun, *, cross_region: bool) -> list[RegisteredResource]:
    return [
        r
        for r in run.of_type(INSTANCE)
        if "replicateSourceDb" in r.inputs
        and (r.parent_type == "commerce:db:CrossRegionReplicas") == cross_region
    ]


def state(run: ProgramRun, name: str) -> dict[str, Any]:
    return dict(run.by_name(name).state)


def plain(value: Any) -> Any:
    return value.reveal() if isinstance(value, SecretValue) else value


# ---------------------------------------------------------------- both stacks build


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_stack_file_builds_every_layer(stack: str, request: pytest.FixtureRequest) -> None:
    run: ProgramRun = request.getfixturevalue(stack)
    types = {r.type for r in run.resources}
    for token in (
        "commerce:db:RegionStack", "commerce:db:Network", "commerce:db:RegionKeys",
        "commerce:db:PostgresCluster", "commerce:db:CrossRegionReplicas", "commerce:db:BackupPlan",
        "commerce:db:ProxyLayer",
        "commerce:db:CacheLayer", "commerce:db:ObservabilityLayer", "commerce:db:AuditTrail",
    ):  # fmt: skip
        assert token in types, token
    assert run.outputs["writerEndpoint"].endswith(
        ".proxy-abc123." + run.outputs["primaryRegion"] + ".rds.amazonaws.com"
    )


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_services_get_per_role_secrets_not_the_master(stack: str, request: pytest.FixtureRequest) -> None:
    run: ProgramRun = request.getfixturevalue(stack)
    secrets = {r.state.get("arn"): r for r in run.of_type("aws:secretsmanager/secret:Secret")}
    writer, reader = run.outputs["writerSecretArn"], run.outputs["readerSecretArn"]
    assert len({writer, reader, run.outputs["dbSecretArn"]}) == 3
    assert secrets[writer].inputs["tags"]["db-user-role"] == "writer"
    assert secrets[reader].inputs["tags"]["db-user-role"] == "reader"


def test_every_aws_resource_uses_an_explicit_regional_provider(prod: ProgramRun) -> None:
    providers = {r.urn for r in prod.of_type("pulumi:providers:aws")}
    assert {r.inputs["region"] for r in prod.of_type("pulumi:providers:aws")} == {
        "us-east-1",
        "us-west-2",
        "eu-west-1",
    }
    for r in prod.resources:
        if r.type.startswith("aws:"):
            assert r.provider and r.provider.rsplit("::", 1)[0] in providers, r.name


def test_regions_of_layers(prod: ProgramRun) -> None:
    assert primary_instance(prod).region == "us-east-1"
    assert {r.region for r in replicas(prod, cross_region=True)} == {"us-west-2", "eu-west-1"}
    assert {r.region for r in prod.of_type("aws:elasticache/replicationGroup:ReplicationGroup")} == {
        "us-east-1", "us-west-2", "eu-west-1"
    }  # fmt: skip


# ---------------------------------------------------------------- primary instance


def test_prod_primary_instance_inputs(prod: ProgramRun) -> None:
    db = primary_instance(prod)
    i = db.inputs
    key_arn = state(prod, "use1-keys-cmk")["arn"]
    assert i["engine"] == "postgres" and i["engineVersion"].split(".")[0] in ("16", "17")
    assert i["instanceClass"].startswith(("db.r6g.", "db.r7g."))
    assert i["multiAz"] is True
    assert i["storageEncrypted"] is True and i["kmsKeyId"] == key_arn
    assert i["storageType"] == "io2" and i["iops"] == 20000 and i["allocatedStorage"] == 1000
    assert i["maxAllocatedStorage"] == 4000
    assert i["performanceInsightsEnabled"] is True and i["performanceInsightsKmsKeyId"] == key_arn
    assert i["performanceInsightsRetentionPeriod"] == 465 and i["databaseInsightsMode"] == "advanced"
    assert i["monitoringInterval"] == 15
    assert i["monitoringRoleArn"] == state(prod, "shared-rds-monitoring")["arn"]
    assert sorted(i["enabledCloudwatchLogsExports"]) == ["postgresql", "upgrade"]
    assert i["iamDatabaseAuthenticationEnabled"] is True
    assert i["backupRetentionPeriod"] == 35 and i["backupWindow"] and i["maintenanceWindow"]
    assert i["autoMinorVersionUpgrade"] is True
    assert (
        i["deletionProtection"] is True and i["skipFinalSnapshot"] is False and i["finalSnapshotIdentifier"]
    )
    assert i["publiclyAccessible"] is False and i["copyTagsToSnapshot"] is True
    assert i["parameterGroupName"] == state(prod, "use1-pg-params")["name"]


def test_monitoring_role_trusts_rds_monitoring_and_has_managed_policy(prod: ProgramRun) -> None:
    role = prod.by_name("shared-rds-monitoring")  # stack-wide: a failover needs no IAM change
    assert role.type == "aws:iam/role:Role"
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"]["Service"] == "monitoring.rds.amazonaws.com"
    attach = next(
        r for r in prod.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if r.name == role.name
    )
    assert attach.inputs["policyArn"].endswith("service-role/AmazonRDSEnhancedMonitoringRole")


def test_staging_primary_is_unprotected_gp3(staging: ProgramRun) -> None:
    i = primary_instance(staging).inputs
    assert i["deletionProtection"] is False and i["skipFinalSnapshot"] is True
    assert "finalSnapshotIdentifier" not in i
    assert i["storageType"] == "gp3" and "iops" not in i  # < 400 GiB: AWS fixes 3000 IOPS
    assert i["multiAz"] is False and i["backupRetentionPeriod"] == 7
    assert i["publiclyAccessible"] is False and i["storageEncrypted"] is True


def test_master_password_is_a_secret_and_not_managed(prod: ProgramRun) -> None:
    i = primary_instance(prod).inputs
    assert isinstance(i["password"], SecretValue)
    assert not i.get("manageMasterUserPassword")
    pw = next(
        r
        for r in prod.of_type("random:index/randomPassword:RandomPassword")
        if r.name == "use1-pg-master-password"
    )
    assert not set(pw.inputs["overrideSpecial"]) & set('/"@ ')
    assert pw.inputs["length"] >= 16


def test_master_secret_is_kms_encrypted_json_with_rotation(prod: ProgramRun) -> None:
    secret = prod.by_name("use1-pg-master")
    secrets = [r for r in prod.resources if r.name == "use1-pg-master"]
    sm = next(r for r in secrets if r.type == "aws:secretsmanager/secret:Secret")
    version = next(r for r in secrets if r.type == "aws:secretsmanager/secretVersion:SecretVersion")
    rotation = next(r for r in secrets if r.type == "aws:secretsmanager/secretRotation:SecretRotation")
    assert secret is not None
    assert sm.inputs["kmsKeyId"] == state(prod, "use1-keys-cmk")["arn"]
    assert {r["region"] for r in sm.inputs["replicas"]} == {"us-west-2", "eu-west-1"}
    assert isinstance(version.inputs["secretString"], SecretValue)
    body = json.loads(version.inputs["secretString"].reveal())
    assert set(body) == {"engine", "host", "port", "username", "password", "dbname"}
    assert body["engine"] == "postgres" and body["host"] == state(prod, "use1-pg-1")["address"]
    assert rotation.inputs["rotationRules"]["automaticallyAfterDays"] == 30
    lambda_stack = prod.by_name("use1-pg-rotation")
    assert lambda_stack.inputs["applicationId"].endswith("SecretsManagerRDSPostgreSQLRotationSingleUser")
    assert lambda_stack.inputs["parameters"]["functionName"] == "cdb-prod-use1-pg-rotation"
    assert lambda_stack.inputs["parameters"]["endpoint"] == "https://secretsmanager.us-east-1.amazonaws.com"
    assert lambda_stack.inputs["parameters"]["kmsKeyArn"] == state(prod, "use1-keys-cmk")["arn"]
    assert rotation.inputs["rotationLambdaArn"] == lambda_stack.state["outputs"]["RotationLambdaARN"]


def test_no_secret_values_in_exports(prod: ProgramRun) -> None:
    text = json.dumps(prod.outputs, default=str)
    assert "PPPPPPPP" not in text  # the mock password/token value


# ---------------------------------------------------------------- parameter group


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_parameter_group_family_and_tuning(stack: str, request: pytest.FixtureRequest) -> None:
    run: ProgramRun = request.getfixturevalue(stack)
    for group in run.of_type(PARAMS):
        assert group.inputs["family"] == "postgres16"
        assert "name" not in group.inputs  # auto-named: replaced groups are created before deletion
        params = {p["name"]: p for p in group.inputs["parameters"]}
        assert params["rds.force_ssl"]["value"] == "1"
        assert params["shared_preload_libraries"]["value"] == "pg_stat_statements"
        assert params["shared_preload_libraries"]["applyMethod"] == "pending-reboot"
        assert params["wal_buffers"]["applyMethod"] == "pending-reboot"
        assert {"log_min_duration_statement", "work_mem", "wal_buffers"} <= set(params)
    assert len(run.of_type(PARAMS)) == len({r.region for r in run.of_type(INSTANCE)})  # one group per region


def test_prod_parameters_come_from_config(prod: ProgramRun) -> None:
    params = {p["name"]: p for p in prod.by_name("use1-pg-params").inputs["parameters"]}
    assert params["max_connections"] == {
        "name": "max_connections",
        "value": "2000",
        "applyMethod": "pending-reboot",
    }
    assert params["work_mem"]["value"] == "32768" and params["log_min_duration_statement"]["value"] == "250"


# ---------------------------------------------------------------- security groups


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_no_ingress_from_cidrs(stack: str, request: pytest.FixtureRequest) -> None:
    run: ProgramRun = request.getfixturevalue(stack)
    for sg in run.of_type(SG):
        assert not sg.inputs.get("ingress"), sg.name
    for rule in run.of_type(INGRESS):
        assert "cidrIpv4" not in rule.inputs and "cidrIpv6" not in rule.inputs, rule.name
        assert rule.inputs["referencedSecurityGroupId"], rule.name


def test_writer_admits_only_proxy_and_rotation(prod: ProgramRun) -> None:
    db_sg = state(prod, "use1-pg-sg")["id"]
    sources = {
        r.inputs["referencedSecurityGroupId"]
        for r in prod.of_type(INGRESS)
        if r.inputs["securityGroupId"] == db_sg
    }
    assert sources == {state(prod, "use1-proxy-sg")["id"], state(prod, "use1-pg-rotation-sg")["id"]}
    proxy_sources = {
        r.inputs["referencedSecurityGroupId"]
        for r in prod.of_type(INGRESS)
        if r.inputs["securityGroupId"] == state(prod, "use1-proxy-sg")["id"]
    }
    assert proxy_sources == {"sg-0a1b2c3d4e5f64101"}  # the app SG from config


def test_replicas_admit_app_security_groups(prod: ProgramRun) -> None:
    # A replica region's replicas also admit its standby proxy (the writer's path once promoted).
    for region_sg, allowed in (
        ("use1-pg-readers-sg", {"sg-0a1b2c3d4e5f64101"}),
        ("usw2-pg-sg", {"sg-0a1b2c3d4e5f64201", state(prod, "usw2-proxy-sg")["id"]}),
    ):
        sg_id = state(prod, region_sg)["id"]
        assert {
            r.inputs["referencedSecurityGroupId"]
            for r in prod.of_type(INGRESS)
            if r.inputs["securityGroupId"] == sg_id
        } == allowed


# ---------------------------------------------------------------- replicas


def test_in_region_replicas(prod: ProgramRun) -> None:
    local = replicas(prod, cross_region=False)
    assert len(local) == 2
    primary_id = state(prod, "use1-pg-1")["identifier"]
    for r in local:
        assert r.inputs["replicateSourceDb"] == primary_id
        for forbidden in (
            "password",
            "username",
            "dbName",
            "engine",
            "allocatedStorage",
            "manageMasterUserPassword",
        ):
            assert forbidden not in r.inputs, forbidden
        assert r.inputs["publiclyAccessible"] is False and r.inputs["skipFinalSnapshot"] is True
        assert r.inputs["instanceClass"].startswith(("db.r6g.", "db.r7g."))


def test_cross_region_replicas_use_arn_and_destination_resources(prod: ProgramRun) -> None:
    primary_arn = state(prod, "use1-pg-1")["arn"]
    assert primary_arn.startswith("arn:aws:rds:us-east-1:")
    urns = by_urn(prod)
    xr = replicas(prod, cross_region=True)
    assert len(xr) == 2
    for r in xr:
        code = r.name.split("-")[0]
        assert r.inputs["replicateSourceDb"] == primary_arn
        assert r.inputs["kmsKeyId"] == state(prod, f"{code}-keys-cmk")["arn"]
        assert f":{r.region}:" in r.inputs["kmsKeyId"]
        group = prod.by_name(f"{code}-pg-params")
        assert r.inputs["parameterGroupName"] == group.state["name"] and group.region == r.region
        sg = prod.by_name(f"{code}-pg-sg")
        assert r.inputs["vpcSecurityGroupIds"] == [sg.state["id"]] and sg.region == r.region
        subnets = prod.by_name(f"{code}-pg-subnets")
        assert r.inputs["dbSubnetGroupName"] == subnets.state["name"] and subnets.region == r.region
        for forbidden in ("password", "username", "engine", "allocatedStorage"):
            assert forbidden not in r.inputs
        assert urns[r.parent_urn or ""].parent_name == code  # lives under the replica region's stack


# ---------------------------------------------------------------- proxy


def test_proxy_inputs(prod: ProgramRun) -> None:
    proxy = next(p for p in prod.of_type("aws:rds/proxy:Proxy") if p.region == "us-east-1")
    i = proxy.inputs
    assert i["engineFamily"] == "POSTGRESQL" and i["requireTls"] is True
    # applications sign in as their own users, never as the master
    app_secrets = {state(prod, f"use1-pg-{u}")["arn"] for u in ("app-writer", "app-reader")}
    assert {a["secretArn"] for a in i["auths"]} == app_secrets
    for auth in i["auths"]:
        assert auth["authScheme"] == "SECRETS" and auth["iamAuth"] in ("REQUIRED", "DISABLED")
        assert auth["clientPasswordAuthType"] == "POSTGRES_SCRAM_SHA_256"
    assert i["vpcSecurityGroupIds"] == [state(prod, "use1-proxy-sg")["id"]]
    pool = prod.by_name("use1-proxy-default").inputs["connectionPoolConfig"]
    assert pool["maxConnectionsPercent"] == 90 and pool["maxIdleConnectionsPercent"] == 40
    assert pool["connectionBorrowTimeout"] == 30
    assert "sessionPinningFilters" not in pool and "initQuery" not in pool


def test_proxy_role_is_limited_to_the_secret(prod: ProgramRun) -> None:
    trust = json.loads(prod.by_name("use1-proxy-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"]["Service"] == "rds.amazonaws.com"
    for code, region in (("use1", "us-east-1"), ("usw2", "us-west-2"), ("euw1", "eu-west-1")):
        policy = json.loads(prod.by_name(f"{code}-proxy-role-secret").inputs["policy"])
        by_action = {s["Action"]: s for s in policy["Statement"]}
        assert set(by_action) == {"secretsmanager:GetSecretValue", "kms:Decrypt"}
        # Secret *names* of this stack in this region, so the policy is the same in every role
        # (a failover changes nothing in IAM); decryption is limited to the region's CMK.
        patterns = by_action["secretsmanager:GetSecretValue"]["Resource"]
        prefix = f"arn:aws:secretsmanager:{region}:123456789012:secret:"
        assert patterns == sorted([prefix + "cdb-prod-*-master-*", prefix + "*-pg-*"])
        proxy = next(p for p in prod.of_type("aws:rds/proxy:Proxy") if p.region == region)
        listed = [a["secretArn"] for a in proxy.inputs["auths"]]
        assert len(listed) == 2 and all(any(fnmatch.fnmatchcase(a, p) for p in patterns) for a in listed)
        assert not any(fnmatch.fnmatchcase(prefix + "cdb-staging-use1-master-AbCdEf", p) for p in patterns)
        kms = by_action["kms:Decrypt"]
        assert kms["Resource"] == state(prod, f"{code}-keys-cmk")["arn"]
        assert kms["Condition"] == {
            "StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}
        }


def test_proxy_targets_the_primary_and_has_no_read_only_endpoint_for_rds(prod: ProgramRun) -> None:
    (target,) = prod.of_type("aws:rds/proxyTarget:ProxyTarget")
    assert target.inputs["dbInstanceIdentifier"] == state(prod, "use1-pg-1")["identifier"]
    assert "dbClusterIdentifier" not in target.inputs
    assert prod.of_type("aws:rds/proxyEndpoint:ProxyEndpoint") == []
    # readers are the replica endpoints, in-region first, then cross-region
    readers = prod.outputs["readerEndpoints"]
    assert [e.split(".")[2] for e in readers] == ["us-east-1", "us-east-1", "us-west-2", "eu-west-1"]


# ---------------------------------------------------------------- Aurora variant


def test_aurora_cluster_and_read_only_proxy_endpoint(aurora: ProgramRun) -> None:
    (cluster,) = aurora.of_type("aws:rds/cluster:Cluster")
    c = cluster.inputs
    assert c["engine"] == "aurora-postgresql" and c["storageEncrypted"] is True and c["kmsKeyId"]
    assert c["iamDatabaseAuthenticationEnabled"] is True and isinstance(c["masterPassword"], SecretValue)
    assert c["serverlessv2ScalingConfiguration"] == {"minCapacity": 0.5, "maxCapacity": 16}
    assert c["enabledCloudwatchLogsExports"] == ["postgresql"]
    (group,) = aurora.of_type("aws:rds/clusterParameterGroup:ClusterParameterGroup")
    assert group.inputs["family"] == "aurora-postgresql16"
    assert c["dbClusterParameterGroupName"] == group.state["name"]
    members = aurora.of_type("aws:rds/clusterInstance:ClusterInstance")
    assert len(members) == 2 and all(m.inputs["instanceClass"] == "db.serverless" for m in members)
    assert all(m.inputs["publiclyAccessible"] is False for m in members)
    (target,) = aurora.of_type("aws:rds/proxyTarget:ProxyTarget")
    assert target.inputs["dbClusterIdentifier"] == cluster.state["id"]
    (ro,) = aurora.of_type("aws:rds/proxyEndpoint:ProxyEndpoint")
    assert ro.inputs["targetRole"] == "READ_ONLY"
    assert aurora.outputs["readerEndpoints"][0] == ro.state["endpoint"]
    (selection,) = aurora.of_type("aws:backup/selection:Selection")
    assert selection.inputs["resources"] == [cluster.state["arn"]]


@pytest.fixture(scope="module")
def aurora_global() -> ProgramRun:
    """staging on Aurora with its replica region: an Aurora Global Database."""
    from _stackfiles import stack_config

    pg = {**stack_config("staging")["commerce-db:postgres"], "engineMode": "aurora"}
    return run_stack("staging", {"commerce-db:postgres": pg})


def test_aurora_global_database_secondary(aurora_global: ProgramRun) -> None:
    (global_cluster,) = aurora_global.of_type("aws:rds/globalCluster:GlobalCluster")
    assert global_cluster.inputs["storageEncrypted"] is True and global_cluster.region == "us-east-2"
    assert global_cluster.inputs["engine"] == "aurora-postgresql"
    clusters = {c.region: c for c in aurora_global.of_type("aws:rds/cluster:Cluster")}
    assert set(clusters) == {"us-east-2", "us-west-2"}
    gid = global_cluster.state["id"]
    assert clusters["us-east-2"].inputs["globalClusterIdentifier"] == gid
    secondary = clusters["us-west-2"].inputs
    assert secondary["globalClusterIdentifier"] == gid
    assert secondary["kmsKeyId"] == state(aurora_global, "usw2-keys-cmk")["arn"]
    assert secondary["storageEncrypted"] is True
    for forbidden in ("masterUsername", "masterPassword", "databaseName", "manageMasterUserPassword"):
        assert forbidden not in secondary, forbidden
    group = aurora_global.by_name("usw2-pg-params")
    assert group.region == "us-west-2" and secondary["dbClusterParameterGroupName"] == group.state["name"]
    assert group.inputs["family"] == "aurora-postgresql16"
    sg = aurora_global.by_name("usw2-pg-sg")
    assert secondary["vpcSecurityGroupIds"] == [sg.state["id"]] and sg.region == "us-west-2"
    readers = [
        i for i in aurora_global.of_type("aws:rds/clusterInstance:ClusterInstance") if i.region == "us-west-2"
    ]
    assert len(readers) == 1 and readers[0].inputs["publiclyAccessible"] is False
    assert aurora_global.outputs["readerEndpointsByRegion"]["us-west-2"] == [
        clusters["us-west-2"].state["readerEndpoint"]
    ]
    # a READ_ONLY proxy endpoint per region: the secondary's proxy is pre-created for a failover,
    # with the secondary cluster as its target already (AWS supports proxies on any member)
    ros = {r.region: r for r in aurora_global.of_type("aws:rds/proxyEndpoint:ProxyEndpoint")}
    assert set(ros) == {"us-east-2", "us-west-2"}
    assert all(r.inputs["targetRole"] == "READ_ONLY" for r in ros.values())
    target = aurora_global.by_name("usw2-proxy-target").inputs
    assert target["dbClusterIdentifier"] == clusters["us-west-2"].state["id"]


def test_aurora_global_passes_policy_rules(aurora_global: ProgramRun) -> None:
    from commerce_db.policy_rules import PolicyContext, evaluate

    findings = evaluate(aurora_global.resources, PolicyContext(stack="staging", environment="staging"))
    assert findings == [], [f"{f.policy}: {f.resource}: {f.message}" for f in findings]


def test_read_only_endpoint_refused_for_rds_target() -> None:
    from commerce_db_components.postgres_cluster import PostgresCluster, PostgresClusterArgs
    from commerce_db_components.proxy_layer import ProxyLayerArgs

    from commerce_db.mock_engine import run_program

    def program() -> None:
        db = PostgresCluster(
            "db",
            PostgresClusterArgs(
                region="us-east-1", vpc_id="vpc-1", subnet_ids=["subnet-1", "subnet-2"], kms_key_arn="arn:k",
                rotation_lambda_arn="arn:aws:lambda:us-east-1:1:function:rot",
            ),
        )  # fmt: skip
        ProxyLayerArgs(region="us-east-1", target=db, vpc_id="vpc-1", subnet_ids=[], read_only_endpoint=True)

    with pytest.raises(ValueError, match="READ_ONLY proxy endpoints only for Aurora"):
        run_program(program)


# ---------------------------------------------------------------- backups


def test_backup_plan_retention_and_dr_copy(prod: ProgramRun) -> None:
    (plan,) = prod.of_type("aws:backup/plan:Plan")
    (rule,) = plan.inputs["rules"]
    assert rule["lifecycle"]["deleteAfter"] == 35 and rule["enableContinuousBackup"] is True
    # The DR vault belongs to the DR region's own stack (a failover never deletes it), with its CMK.
    dr_vault = prod.by_name("usw2-backup-vault")
    assert dr_vault.region == "us-west-2" and dr_vault.inputs["name"] == "cdb-prod-usw2"
    dr_key = prod.by_name("usw2-keys-cmk")
    assert dr_key.region == "us-west-2" and dr_key.inputs["enableKeyRotation"] is True
    assert dr_vault.inputs["kmsKeyArn"] == dr_key.state["arn"]
    (copy,) = rule["copyActions"]
    assert copy["destinationVaultArn"] == dr_vault.state["arn"]
    assert copy["lifecycle"]["deleteAfter"] == 35
    source_vault = prod.by_name("use1-backup-vault")
    assert (
        source_vault.region == "us-east-1"
        and source_vault.inputs["kmsKeyArn"] == state(prod, "use1-keys-cmk")["arn"]
    )
    assert rule["targetVaultName"] == source_vault.state["name"]


def test_backup_selection_of_primary_with_service_role(prod: ProgramRun) -> None:
    (selection,) = prod.of_type("aws:backup/selection:Selection")
    assert selection.inputs["resources"] == [state(prod, "use1-pg-1")["arn"]]
    assert selection.inputs["iamRoleArn"] == state(prod, "shared-backup")["arn"]
    policies = {
        r.inputs["policyArn"] for r in prod.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith("shared-backup-")
    }  # fmt: skip
    assert "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup" in policies


def test_staging_backup_is_short(staging: ProgramRun) -> None:
    (plan,) = staging.of_type("aws:backup/plan:Plan")
    assert plan.inputs["rules"][0]["lifecycle"]["deleteAfter"] == 7


# ---------------------------------------------------------------- keys and network


def test_one_rotating_cmk_per_region_with_alias(prod: ProgramRun) -> None:
    keys = [k for k in prod.of_type("aws:kms/key:Key") if k.name.endswith("-keys-cmk")]
    assert {k.region for k in keys} == {"us-east-1", "us-west-2", "eu-west-1"}
    assert all(k.inputs["enableKeyRotation"] is True for k in keys)
    policy = json.loads(keys[0].inputs["policy"])
    by_sid = {st["Sid"]: st for st in policy["Statement"]}
    assert by_sid["AccountAdministersThroughIam"]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert by_sid["CloudWatchLogsEncryptsOwnLogGroups"]["Principal"]["Service"].startswith("logs.")
    publishers = set(by_sid["PublishersToEncryptedSnsTopic"]["Principal"]["Service"])
    assert {"cloudwatch.amazonaws.com", "events.rds.amazonaws.com", "events.amazonaws.com"} <= publishers
    assert by_sid["CloudTrailWritesLogFiles"]["Principal"]["Service"] == "cloudtrail.amazonaws.com"
    aliases = prod.of_type("aws:kms/alias:Alias")
    assert {a.inputs["name"] for a in aliases} == {"alias/commerce-db-prod"} and len(aliases) == 3


def test_staging_creates_private_vpcs(staging: ProgramRun) -> None:
    vpcs = staging.of_type("aws:ec2/vpc:Vpc")
    assert {v.region for v in vpcs} == {"us-east-2", "us-west-2"}
    assert len({v.inputs["cidrBlock"] for v in vpcs}) == 2  # no overlap between regions
    subnets = [s for s in staging.of_type("aws:ec2/subnet:Subnet") if s.region == "us-east-2"]
    assert len(subnets) == 2 and len({s.inputs["availabilityZone"] for s in subnets}) == 2
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    assert staging.of_type("aws:ec2/internetGateway:InternetGateway") == []
    assert staging.of_type("aws:ec2/natGateway:NatGateway") == []
    endpoints = {e.inputs["serviceName"] for e in staging.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert "com.amazonaws.us-east-2.secretsmanager" in endpoints


def test_prod_uses_existing_vpcs(prod: ProgramRun) -> None:
    assert prod.of_type("aws:ec2/vpc:Vpc") == []
    (subnets,) = [s for s in prod.of_type("aws:rds/subnetGroup:SubnetGroup") if s.region == "us-east-1"]
    assert subnets.inputs["subnetIds"][0].startswith("subnet-0a1b2c3d4e5f611")


# ---------------------------------------------------------------- cache wiring


def test_global_datastore_in_prod_only(prod: ProgramRun, staging: ProgramRun) -> None:
    (global_group,) = prod.of_type("aws:elasticache/globalReplicationGroup:GlobalReplicationGroup")
    secondaries = [
        g
        for g in prod.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
        if "globalReplicationGroupId" in g.inputs
    ]
    assert {g.region for g in secondaries} == {"us-west-2", "eu-west-1"}
    assert all(
        g.inputs["globalReplicationGroupId"] == global_group.state["globalReplicationGroupId"]
        for g in secondaries
    )
    assert staging.of_type("aws:elasticache/globalReplicationGroup:GlobalReplicationGroup") == []


# ---------------------------------------------------------------- errors from run()


def test_invalid_config_raises_config_error_from_run() -> None:
    with pytest.raises(ConfigError) as info:
        run_stack("staging", {"commerce-db:backup": {"retentionDays": 40}})
    assert info.value.key == "backup.retentionDays"


def test_unknown_key_raises_before_any_resource() -> None:
    with pytest.raises(ConfigError, match="commerce-db:postgress"):
        run_stack("staging", {"commerce-db:postgress": {"engineVersion": "16.6"}})


@pytest.mark.parametrize("stack", ["prod", "staging", "aurora"])
def test_shared_policy_rules_pass(stack: str, request: pytest.FixtureRequest) -> None:
    from commerce_db.policy_rules import PolicyContext, evaluate

    run: ProgramRun = request.getfixturevalue(stack)
    env = "prod" if stack == "prod" else "staging"
    findings = evaluate(run.resources, PolicyContext(stack=env, environment=env))
    assert findings == [], [f"{f.policy}: {f.resource}: {f.message}" for f in findings]
