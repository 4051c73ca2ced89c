"""Issue 14 item 9, from a reusing team's side: region from the provider, neutral defaults,
duplicate labels refused, a dict accepted for the Args and anything else named."""

from __future__ import annotations

import json
from typing import Any

import pytest
from commerce_db_components import (
    CacheLayer,
    ObservabilityLayer,
    ObservabilityLayerArgs,
    PostgresCluster,
    PostgresClusterArgs,
    ProxyLayer,
    ProxyLayerArgs,
)
from commerce_db_components.validation import ArgumentError

from commerce_db.mock_engine import ProgramRun, run_program

WIRING: dict[str, Any] = {"vpc_id": "vpc-1", "subnet_ids": ["subnet-a", "subnet-b"], "kms_key_arn": "arn:k"}


def _run(program: Any, region: str = "eu-west-1") -> ProgramRun:
    return run_program(program, stack="reuse", config={"aws:region": region})


def test_region_comes_from_the_provider_when_not_given() -> None:
    def program() -> None:
        db = PostgresCluster("db", PostgresClusterArgs(**WIRING))
        db.grant_connect("app-role", "app_user")
        proxy = ProxyLayer("proxy", ProxyLayerArgs(target=db, vpc_id="vpc-1", subnet_ids=["a", "b"]))
        proxy.grant_connect("app-role", "app_user")
        ObservabilityLayer(
            "obs",
            ObservabilityLayerArgs(kms_key_arn="arn:k", db_instances={"primary": db.primary_identifier}),
        )

    run = _run(program, region="eu-west-1")
    rotation = next(
        r for r in run.of_type("aws:serverlessrepository/cloudFormationStack:CloudFormationStack")
    )
    assert rotation.inputs["parameters"]["endpoint"] == "https://secretsmanager.eu-west-1.amazonaws.com"
    policies = {r.name: json.loads(r.inputs["policy"]) for r in run.of_type("aws:iam/rolePolicy:RolePolicy")}
    connect = policies["db-connect-app-role-app-user"]["Statement"][0]["Resource"]
    assert all(arn.startswith("arn:aws:rds-db:eu-west-1:") for arn in connect)
    assert policies["proxy-connect-app-role-app-user"]["Statement"][0]["Resource"][0].startswith(
        "arn:aws:rds-db:eu-west-1:"
    )
    via = policies["proxy-role-secret"]["Statement"][1]["Condition"]["StringEquals"]["kms:ViaService"]
    assert via == "secretsmanager.eu-west-1.amazonaws.com"
    dashboard = next(iter(run.of_type("aws:cloudwatch/dashboard:Dashboard")))
    regions = {
        w["properties"].get("region") for w in json.loads(dashboard.inputs["dashboardBody"])["widgets"]
    }
    assert regions - {None} == {"eu-west-1"}


def test_defaults_carry_no_branding() -> None:
    """No product name in what a reusing team gets by default: no database named after us, a
    neutral master user; the secret names the engine's own database."""
    args = PostgresClusterArgs(**WIRING)
    assert args.db_name is None and args.master_username == "dbadmin"

    run = _run(lambda: PostgresCluster("db", PostgresClusterArgs(**WIRING)))
    primary = next(r for r in run.of_type("aws:rds/instance:Instance") if "replicateSourceDb" not in r.inputs)
    assert "dbName" not in primary.inputs and primary.inputs["username"] == "dbadmin"


def test_master_username_follows_rds_length_limit() -> None:
    with pytest.raises(
        ArgumentError, match="master_username 'a_very_long_admin_name' is invalid; allowed: 1-16"
    ):
        PostgresClusterArgs(**WIRING, master_username="a_very_long_admin_name")


def test_duplicate_labels_are_refused_like_the_cache_does() -> None:
    errors: list[str] = []

    def program() -> None:
        db = PostgresCluster("db", PostgresClusterArgs(**WIRING))
        db.allow_from("app", "sg-1")
        db.allow_readers_from("app", "sg-1")  # another group: the same label is fine there
        for call in (db.allow_from, db.allow_readers_from):
            try:
                call("app", "sg-2")
            except ArgumentError as exc:
                errors.append(str(exc))
        proxy = ProxyLayer("proxy", ProxyLayerArgs(target=db, vpc_id="vpc-1", subnet_ids=["a", "b"]))
        proxy.allow_from("app", "sg-1")
        try:
            proxy.allow_from("app", "sg-3")
        except ArgumentError as exc:
            errors.append(str(exc))
        try:
            db.allow_from("App_1", "sg-4")
        except ArgumentError as exc:
            errors.append(str(exc))

    run = _run(program)
    assert len(errors) == 4, errors
    assert all("label 'app' is invalid; already used on" in e for e in errors[:3]), errors
    assert "lowercase" in errors[3]
    rules = [r.name for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")]
    assert rules.count("db-from-app") == 1 and rules.count("proxy-from-app") == 1


def test_a_dict_of_the_fields_is_accepted_and_validated_like_the_args() -> None:
    run = _run(lambda: PostgresCluster("db", {**WIRING, "in_region_replicas": 0}))  # type: ignore[arg-type]
    assert len(run.of_type("aws:rds/instance:Instance")) == 1
    with pytest.raises(ArgumentError, match="storage_type 'gp2'"):
        _run(lambda: PostgresCluster("db", {**WIRING, "storage_type": "gp2"}))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("component", "args", "words"),
    [
        (PostgresCluster, "db.r7g.large", ["args is a str", "expected PostgresClusterArgs"]),
        (PostgresCluster, {**WIRING, "instance_klass": "x"}, ["instance_klass", "PostgresClusterArgs"]),
        (CacheLayer, None, ["args is a NoneType", "expected CacheLayerArgs"]),
        (ObservabilityLayer, ["us-east-1"], ["args is a list", "expected ObservabilityLayerArgs"]),
    ],
)
def test_anything_else_is_a_type_error_naming_the_args_class(
    component: Any, args: Any, words: list[str]
) -> None:
    caught: list[TypeError] = []

    def program() -> None:
        try:
            component("x", args)
        except TypeError as exc:
            caught.append(exc)

    run = _run(program)
    assert caught and run.resources == ()
    for word in words:
        assert word in str(caught[0]), str(caught[0])


@pytest.mark.parametrize("mode", ["rds", "aurora"])
def test_one_argument_creates_the_log_groups_before_the_databases(mode: str) -> None:
    """Issue 14 item 5 (CDK's cloudwatchLogsRetention): no RdsLogGroups/identifier wiring by hand."""
    run = _run(
        lambda: PostgresCluster(
            "db",
            PostgresClusterArgs(
                **WIRING, engine_mode=mode, cloudwatch_logs_retention_days=30, identifier_prefix="orders"
            ),
        )
    )
    groups = run.of_type("aws:cloudwatch/logGroup:LogGroup")
    expected = (
        {"/aws/rds/cluster/orders-cluster/postgresql"}
        if mode == "aurora"
        else {f"/aws/rds/instance/orders-{n}/{e}" for n in (1, 2) for e in ("postgresql", "upgrade")}
    )
    assert {g.inputs["name"] for g in groups if g.inputs["name"].startswith("/aws/rds/")} == expected
    dbs = run.of_type("aws:rds/cluster:Cluster" if mode == "aurora" else "aws:rds/instance:Instance")
    for db in dbs:
        for group in groups:
            if group.inputs["name"].startswith("/aws/rds/"):
                assert group.inputs["retentionInDays"] == 30 and group.inputs["kmsKeyId"] == "arn:k"
                assert run.waits_for(db, group)
    with pytest.raises(ArgumentError, match="cloudwatch_logs_retention_days 10 is invalid"):
        PostgresClusterArgs(**WIRING, cloudwatch_logs_retention_days=10)


@pytest.mark.parametrize(
    "stacks",
    [
        ("blue", "green"),
        # Both valid Pulumi stack names that sanitising used to merge (findings round 1).
        ("team.dev", "team_dev"),
        # Differing only past the restore-testing plan name's cut (findings round 1).
        ("payments-ledger-eu-west-1-production-blue", "payments-ledger-eu-west-1-production-green"),
    ],
)
def test_two_stacks_of_a_reusing_program_with_defaults_share_no_physical_name(
    stacks: tuple[str, str],
) -> None:
    """Issue 14 item 3: every physical name a component sets by default includes the stack (or is
    left to Pulumi's auto-naming): identifiers, snapshots, log groups, Lambda functions, the
    dashboard, composite alarms, the trail, restore-testing plans, the Global Datastore suffix."""
    from commerce_db_components import AuditTrail, AuditTrailArgs, BackupPlan, BackupPlanArgs, CacheLayerArgs
    from commerce_db_components.cache_layer import GlobalDatastoreRole
    from test_first_up import _physical_names

    def program() -> None:
        db = PostgresCluster("db", PostgresClusterArgs(**WIRING, cloudwatch_logs_retention_days=30))
        proxy = ProxyLayer("proxy", ProxyLayerArgs(target=db, vpc_id="vpc-1", subnet_ids=["a", "b"]))
        cache = CacheLayer(
            "cache",
            CacheLayerArgs(
                **WIRING, global_datastore_role=GlobalDatastoreRole.PRIMARY, final_snapshot_identifier=None
            ),
        )
        ObservabilityLayer(
            "obs",
            ObservabilityLayerArgs(
                kms_key_arn="arn:k",
                db_instances={"primary": db.primary_identifier},
                proxies={"writer": proxy.proxy_name},
                cache_clusters={f"node-{i}": c for i, c in enumerate(cache.member_cluster_ids)},
            ),
        )
        AuditTrail("audit", AuditTrailArgs(region="eu-west-1", kms_key_arn="arn:k"))
        backup = BackupPlan("backup", BackupPlanArgs(region="eu-west-1", kms_key_arn="arn:k"))
        backup.add_plan(resource_arns=[db.primary_arn], role_arn="arn:role")
        backup.add_restore_testing(resource_arns=[db.primary_arn], role_arn="arn:role")

    blue, green = (run_program(program, stack=s, config={"aws:region": "eu-west-1"}) for s in stacks)
    names = _physical_names(blue)
    assert len(names) >= 15, names  # the check below must have something to compare
    types = {t for t, _, _ in names}
    for expected in ("aws:cloudwatch/dashboard:Dashboard", "aws:cloudwatch/compositeAlarm:CompositeAlarm",
                     "aws:backup/restoreTestingPlan:RestoreTestingPlan", "aws:cloudtrail/trail:Trail",
                     "aws:cloudwatch/logGroup:LogGroup", "aws:rds/instance:Instance",
                     "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"):  # fmt: skip
        assert expected in types, expected
    assert names & _physical_names(green) == set()


@pytest.mark.parametrize("mode", ["rds", "aurora"])
def test_bring_your_own_groups_and_role_create_none_of_ours(mode: str) -> None:
    """Issue 14 item 6: existing parameter group, subnet group, security groups and monitoring role."""
    byo = {
        "parameter_group_name": "team-pg16",
        "parameter_group_enforces_tls": True,
        "db_subnet_group_name": "team-subnets",
        "security_group_ids": ["sg-team-db", "sg-team-extra"],
        "monitoring_role_arn": "arn:aws:iam::123456789012:role/team-monitoring",
    }

    def program() -> None:
        db = PostgresCluster("db", PostgresClusterArgs(**WIRING, engine_mode=mode, **byo))
        db.allow_from("app", "sg-app")
        assert db.allow_readers_from("app", "sg-app") is None  # replicas share the team's groups

    run = _run(program)
    for token in ("aws:rds/parameterGroup:ParameterGroup",
                  "aws:rds/clusterParameterGroup:ClusterParameterGroup",
                  "aws:rds/subnetGroup:SubnetGroup", "aws:iam/role:Role"):  # fmt: skip
        assert [
            r.name for r in run.of_type(token) if r.name.startswith("db-") and "bootstrap" not in r.name
        ] == []
    groups = [r.name for r in run.of_type("aws:ec2/securityGroup:SecurityGroup")]
    assert "db-sg" not in groups and "db-readers-sg" not in groups
    if mode == "aurora":
        cluster = run.of_type("aws:rds/cluster:Cluster")[0]
        assert cluster.inputs["dbClusterParameterGroupName"] == "team-pg16"
        assert cluster.inputs["dbSubnetGroupName"] == "team-subnets"
        assert cluster.inputs["vpcSecurityGroupIds"] == ["sg-team-db", "sg-team-extra"]
        dbs = run.of_type("aws:rds/clusterInstance:ClusterInstance")
    else:
        dbs = run.of_type("aws:rds/instance:Instance")
        assert {d.inputs["parameterGroupName"] for d in dbs} == {"team-pg16"}
        assert {tuple(d.inputs["vpcSecurityGroupIds"]) for d in dbs} == {("sg-team-db", "sg-team-extra")}
    assert {d.inputs["monitoringRoleArn"] for d in dbs} == {byo["monitoring_role_arn"]}
    rules = {r.name: r for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")}
    assert rules["db-from-app"].inputs["securityGroupId"] == "sg-team-db"
    assert rules["db-from-rotation"].inputs["securityGroupId"] == "sg-team-db"


def test_bring_your_own_alarm_topics() -> None:
    ops, pager = "arn:aws:sns:eu-west-1:123456789012:central-ops", "arn:aws:sns:eu-west-1:123456789012:pager"

    def program() -> None:
        ObservabilityLayer(
            "obs",
            ObservabilityLayerArgs(
                kms_key_arn="arn:k",
                alarm_topic_arn=ops,
                page_topic_arn=pager,
                db_instances={"primary": "db-1"},
            ),
        )

    run = _run(program)
    assert run.of_type("aws:sns/topic:Topic") == [] and run.of_type("aws:sns/topicPolicy:TopicPolicy") == []
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarms and {a for al in alarms for a in al.inputs["alarmActions"]} == {ops, pager}
    assert run.of_type("aws:rds/eventSubscription:EventSubscription")[0].inputs["snsTopic"] == ops
    from commerce_db_components import AlarmSubscription

    with pytest.raises(
        ArgumentError, match="subscriptions \\['email'\\] is invalid; allowed: \\(\\) with your own"
    ):
        ObservabilityLayerArgs(
            kms_key_arn="arn:k",
            alarm_topic_arn=ops,
            subscriptions=[AlarmSubscription(protocol="email", endpoint="a@b.c")],
        )


def _layer(run: ProgramRun, name: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(type, name without the layer's name) -> inputs, with the layer's name normalised."""
    out = {}
    for r in run.resources:
        if r.custom and r.parent_type == "commerce:db:ObservabilityLayer" and r.name.startswith(f"{name}-"):
            text = json.dumps(r.inputs, sort_keys=True).replace(f"{name}-", "LAYER-")
            out[(r.type, r.name[len(name) + 1 :])] = json.loads(text)
    return out


@pytest.mark.parametrize("mode", ["rds", "aurora"])
def test_watching_components_equals_the_hand_built_maps(mode: str) -> None:
    """Issue 14 item 7: ObservabilityLayerArgs(watch=[db, proxy, cache]) builds exactly what the
    label maps the stacks hand-build (same labels, alarms, events, dashboard)."""
    from commerce_db_components import CacheLayerArgs

    def program() -> None:
        db = PostgresCluster("db", PostgresClusterArgs(**WIRING, engine_mode=mode, in_region_replicas=2))
        proxy = ProxyLayer("proxy", ProxyLayerArgs(target=db, vpc_id="vpc-1", subnet_ids=["a", "b"]))
        cache = CacheLayer("cache", CacheLayerArgs(**WIRING))
        aurora = mode == "aurora"
        maps: dict[str, Any] = {
            "db_instances": {"writer": db.instances[0].identifier}
            | {f"reader-{i + 1}": r.identifier for i, r in enumerate(db.replicas)}
            if aurora
            else {"primary": db.primary_identifier},
            "db_replicas": {}
            if aurora
            else {f"replica-{i + 1}": r.identifier for i, r in enumerate(db.replicas)},
            "db_clusters": {"cluster": db.primary_identifier} if aurora else {},
            "proxies": {"writer": proxy.proxy_name},
            "cache_clusters": {f"node-{i + 1}": c for i, c in enumerate(cache.member_cluster_ids)},
        }
        ObservabilityLayer("maps", ObservabilityLayerArgs(kms_key_arn="arn:k", dashboard_name="d", **maps))
        ObservabilityLayer(
            "watched",
            ObservabilityLayerArgs(kms_key_arn="arn:k", dashboard_name="d", watch=[db, proxy, cache]),
        )

    run = _run(program)
    by_maps, by_watch = _layer(run, "maps"), _layer(run, "watched")
    assert len(by_maps) > 20 and by_maps.keys() == by_watch.keys()
    for key, inputs in by_maps.items():
        assert by_watch[key] == inputs, key


def test_watch_refuses_what_it_cannot_watch_and_label_clashes() -> None:
    def program() -> None:
        db = PostgresCluster("db", PostgresClusterArgs(**WIRING))
        other = PostgresCluster("db2", PostgresClusterArgs(**WIRING))
        with pytest.raises(
            ArgumentError, match="watch 'primary' is invalid; two components give db_instances"
        ):
            ObservabilityLayerArgs(kms_key_arn="arn:k", watch=[db, other])
        with pytest.raises(ArgumentError, match="two sources give db_instances label 'primary'"):
            ObservabilityLayerArgs(kms_key_arn="arn:k", watch=[db], db_instances={"primary": "x"})
        with pytest.raises(TypeError, match="watch entry is a str; expected PostgresCluster"):
            ObservabilityLayerArgs(kms_key_arn="arn:k", watch=["db-1"])

    _run(program)


def test_proxy_target_must_be_the_database_component() -> None:
    with pytest.raises(TypeError, match="target is a dict; expected the PostgresCluster to front"):
        ProxyLayerArgs(target={"primary_identifier": "db-1"}, vpc_id="vpc-1", subnet_ids=["a", "b"])  # type: ignore[arg-type]


def test_region_follows_an_explicit_provider() -> None:
    """The provider the component runs under decides, not aws:region (a multi-region program)."""
    import pulumi
    import pulumi_aws as aws

    def program() -> None:
        sydney = aws.Provider("sydney", region="ap-southeast-2")
        db = PostgresCluster(
            "db", PostgresClusterArgs(**WIRING), opts=pulumi.ResourceOptions(providers={"aws": sydney})
        )
        db.grant_connect("app-role", "app_user")

    run = _run(program, region="eu-west-1")
    rotation = next(iter(run.of_type("aws:serverlessrepository/cloudFormationStack:CloudFormationStack")))
    assert rotation.inputs["parameters"]["endpoint"] == "https://secretsmanager.ap-southeast-2.amazonaws.com"
    policy = next(
        r for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if r.name == "db-connect-app-role-app-user"
    )
    assert json.loads(policy.inputs["policy"])["Statement"][0]["Resource"][0].startswith(
        "arn:aws:rds-db:ap-southeast-2:"
    )


def test_cache_bring_your_own_groups() -> None:
    from commerce_db_components import CacheLayerArgs

    def program() -> None:
        cache = CacheLayer(
            "cache",
            CacheLayerArgs(
                **WIRING,
                subnet_group_name="team-cache-subnets",
                security_group_ids=["sg-team-cache"],
                parameter_group_name="team-redis7",
            ),
        )
        cache.allow_from("app", "sg-app")

    run = _run(program)
    for token in ("aws:elasticache/subnetGroup:SubnetGroup", "aws:elasticache/parameterGroup:ParameterGroup",
                  "aws:ec2/securityGroup:SecurityGroup"):  # fmt: skip
        assert run.of_type(token) == [], token
    group = run.of_type("aws:elasticache/replicationGroup:ReplicationGroup")[0]
    assert group.inputs["subnetGroupName"] == "team-cache-subnets"
    assert group.inputs["securityGroupIds"] == ["sg-team-cache"]
    assert group.inputs["parameterGroupName"] == "team-redis7"
    rule = run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")[0]
    assert rule.inputs["securityGroupId"] == "sg-team-cache"


def test_watched_args_survive_dataclasses_replace() -> None:
    """replace() re-runs __post_init__: the components' labels are not a clash with themselves."""
    import dataclasses

    def program() -> None:
        db = PostgresCluster("db", PostgresClusterArgs(**WIRING))
        args = ObservabilityLayerArgs(kms_key_arn="arn:k", watch=[db])
        again = dataclasses.replace(args, create_dashboard=False)
        assert again.db_instances == args.db_instances and list(again.db_replicas) == ["replica-1"]

    _run(program)


def test_nested_args_accept_a_dict_or_name_the_class() -> None:
    args = PostgresClusterArgs(**WIRING, parameters={"work_mem_kb": 8192})  # type: ignore[arg-type]
    assert args.parameters.work_mem_kb == 8192
    with pytest.raises(ValueError, match="TLS is required"):
        PostgresClusterArgs(**WIRING, parameters={"extra": {"rds.force_ssl": "0"}})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="parameters is a list; expected PostgresParameters"):
        PostgresClusterArgs(**WIRING, parameters=[])  # type: ignore[arg-type]
    obs = ObservabilityLayerArgs(kms_key_arn="arn:k", thresholds={"rds_cpu_percent": 70})  # type: ignore[arg-type]
    assert obs.thresholds.rds_cpu_percent == 70
    with pytest.raises(TypeError, match=r"thresholds: .*cpu_percnt.*AlarmThresholds"):
        ObservabilityLayerArgs(kms_key_arn="arn:k", thresholds={"cpu_percnt": 70})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (" rds.force_ssl", "0"),  # whitespace around a name no longer slips past the check
        ("RDS.Force_SSL ", "0"),
        ("ssl", "off"),
        ("ssl", "0"),
        ("ssl_min_protocol_version", "TLSv1"),
        ("ssl_min_protocol_version", "TLSv1.1"),
    ],
)
def test_extra_parameters_cannot_weaken_tls(name: str, value: str) -> None:
    """Findings round 1: rds.force_ssl is immovable whatever the spelling, ssl stays on and the
    minimum protocol at least TLS 1.2; nothing is registered."""
    from commerce_db_components.config import PostgresParameters

    with pytest.raises(ValueError, match=rf"extra\[{name!r}\] = {value!r} is invalid"):
        PostgresParameters(extra={name: value})
    ran = []
    with pytest.raises(ValueError, match="is invalid"):
        PostgresClusterArgs(**WIRING, parameters={"extra": {name: value}})
        ran.append(True)
    assert ran == []


@pytest.mark.parametrize(
    ("name", "value"), [("ssl", "on"), ("ssl", "1"), ("ssl_min_protocol_version", "TLSv1.3")]
)
def test_extra_parameters_keeping_tls_are_accepted(name: str, value: str) -> None:
    from commerce_db_components.config import PostgresParameters

    assert PostgresParameters(extra={name: value}).extra == {name: value}


@pytest.mark.parametrize("mode", ["rds", "aurora"])
def test_own_parameter_group_needs_the_tls_acknowledgement(mode: str) -> None:
    """Findings round 1: a bring-your-own parameter group used to drop rds.force_ssl=1 silently."""
    with pytest.raises(
        ValueError, match=r"parameter_group_name .*parameter_group_enforces_tls=True.*rds\.force_ssl=1"
    ):
        PostgresClusterArgs(**WIRING, engine_mode=mode, parameter_group_name="team-pg16-nossl")
    args = PostgresClusterArgs(
        **WIRING, engine_mode=mode, parameter_group_name="team-pg16", parameter_group_enforces_tls=True
    )
    assert args.parameter_group_name == "team-pg16"


@pytest.mark.parametrize("mode", ["rds", "aurora"])
def test_default_final_snapshot_identifier_is_valid_for_any_stack_name(mode: str) -> None:
    """Findings round 1: stack ``dev_1`` gave ``db-dev_1-final``, which AWS refuses (underscore)."""
    from commerce_db_components.postgres_cluster import check_snapshot_identifier

    def program() -> None:
        PostgresCluster("db", PostgresClusterArgs(**WIRING, engine_mode=mode, deletion_protection=True))

    token = "aws:rds/cluster:Cluster" if mode == "aurora" else "aws:rds/instance:Instance"
    finals = {}
    for stack in ("dev_1", "dev-1", "prod"):
        run = run_program(program, stack=stack, config={"aws:region": "eu-west-1"})
        ids = [r.inputs.get("finalSnapshotIdentifier") for r in run.of_type(token)]
        finals[stack] = next(i for i in ids if i)
    assert finals["prod"] == "db-prod-final"  # ordinary stack names keep their names
    assert finals["dev-1"] == "db-dev-1-final"
    assert finals["dev_1"] not in (finals["dev-1"],) and "_" not in finals["dev_1"]
    check_snapshot_identifier("final_snapshot_identifier", finals["dev_1"])


def test_stack_scoped_names_keep_ordinary_stacks_and_tag_the_rest() -> None:
    from commerce_db_components.validation import scoped_name, stack_hash

    assert scoped_name("obs", "prod") == "obs-prod"
    assert scoped_name("obs", "staging", alphabet="a-z0-9-", max_length=40, lower=True) == "obs-staging"
    dotted, underscored = scoped_name("obs", "team.dev"), scoped_name("obs", "team_dev")
    assert dotted == f"obs-team-dev-{stack_hash('team.dev')}" and dotted != underscored
    long_a = scoped_name("backup", "x" * 40 + "a", alphabet="A-Za-z0-9_", sep="_", max_length=37)
    long_b = scoped_name("backup", "x" * 40 + "b", alphabet="A-Za-z0-9_", sep="_", max_length=37)
    assert len(long_a) == 37 and long_a != long_b
    assert "--" not in scoped_name("c", "a..b", alphabet="a-z0-9-")
