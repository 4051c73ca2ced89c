"""Construct under Pulumi's mock engine: the provider host's own construct path, wire-shaped inputs.

Inputs are given with schema names and every number as a float, as a TypeScript or Go program's
values reach the plugin; the real components must come out as their Python callers get them.
"""

from __future__ import annotations

import json

import pytest
from _wire import CMK, PLACEMENT, POSTGRES, construct, provider
from pulumi.errors import InputPropertyError
from pulumi.provider.server import ComponentInitError

INSTANCE = "aws:rds/instance:Instance"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def test_sdk_still_delivers_integers_as_floats() -> None:
    # Canary for the SDK bug the wrappers work around: map_input_properties casts int() and then
    # overwrites the result with the raw float. When this fails, the SDK is fixed.
    prov = provider()
    mapped = prov.map_inputs({**POSTGRES, "inRegionReplicas": 2.0}, prov._component_defs["PostgresCluster"])
    assert mapped["in_region_replicas"] == 2.0 and isinstance(mapped["in_region_replicas"], float)


def test_postgres_cluster_builds_the_real_component_as_its_child() -> None:
    run = construct(
        "PostgresCluster",
        {
            **POSTGRES,
            "inRegionReplicas": 2,  # a float on the wire: range() would fail without the cast
            "port": 5433,
            "storageType": "gp3",
            "parameters": {"workMemKb": 32768, "maxConnections": 400},
            "allowedSecurityGroups": {"checkout": "sg-app"},
            "readerAllowedSecurityGroups": {"checkout": "sg-app"},
            "connectGrants": [{"roleName": "checkout-service", "dbUser": "app_user"}],
            "tags": {"team": "checkout"},
        },
        name="orders",
    )
    wrapper = run.of_type("commerce:index:PostgresCluster")
    inner = run.of_type("commerce:db:PostgresCluster")
    assert [r.name for r in wrapper] == ["orders"] and [r.name for r in inner] == ["orders"]
    assert inner[0].parent_type == "commerce:index:PostgresCluster"
    instances = run.of_type(INSTANCE)
    assert sorted(r.name for r in instances) == ["orders-1", "orders-2", "orders-3"]
    assert all(r.inputs["port"] == 5433 and r.inputs["tags"]["team"] == "checkout" for r in instances)
    params = {
        p["name"]: p["value"]
        for r in run.of_type("aws:rds/parameterGroup:ParameterGroup")
        for p in r.inputs["parameters"]
    }
    assert params["work_mem"] == "32768" and params["max_connections"] == "400"  # not "32768.0"
    app_rules = [r for r in run.of_type(INGRESS) if r.inputs.get("referencedSecurityGroupId") == "sg-app"]
    assert len(app_rules) == 2 and {r.inputs["fromPort"] for r in app_rules} == {5433}
    grant = run.by_name("orders-connect-checkout-service-app-user")
    assert grant.inputs["role"] == "checkout-service"
    assert "rds-db:connect" in json.dumps(grant.inputs["policy"])
    state = run.outputs["state"]
    assert state["port"] == 5433 and len(state["readerEndpoints"]) == 2
    assert state["secretArn"].startswith("arn:aws:secretsmanager:")
    assert "writerEndpoint" in state and "readerSecurityGroupId" in state


def test_aurora_enum_picks_the_cluster_variant() -> None:
    run = construct("PostgresCluster", {**POSTGRES, "engineMode": "aurora", "auroraReaders": 2})
    assert len(run.of_type("aws:rds/cluster:Cluster")) == 1
    assert len(run.of_type("aws:rds/clusterInstance:ClusterInstance")) == 3
    assert not run.of_type(INSTANCE)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("backupRetentionDays", 40, "backup_retention_days 40 is invalid"),
        ("inRegionReplicas", 1.5, "in_region_replicas 1.5 is invalid; expected a whole number"),
        ("engineVersion", "15.4", "engine_version '15.4' is invalid"),
    ],
)
def test_bad_input_fails_construct_naming_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ComponentInitError, match=message):
        construct("PostgresCluster", {**POSTGRES, field: value})


def test_unknown_enum_value_is_refused_by_the_host() -> None:
    with pytest.raises(InputPropertyError, match="EngineMode"):
        construct("PostgresCluster", {**POSTGRES, "engineMode": "mysql"})


def test_missing_required_input_is_refused_by_the_host() -> None:
    with pytest.raises(InputPropertyError, match="kmsKeyArn"):
        construct("PostgresCluster", {"region": "eu-west-1", **PLACEMENT})


def test_proxy_layer_targets_a_database_given_by_its_outputs() -> None:
    run = construct(
        "ProxyLayer",
        {
            "region": "eu-west-1",
            **PLACEMENT,
            "targetIdentifier": "orders-primary",
            "targetSecurityGroupId": "sg-db",
            "targetSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:orders",
            "targetKmsKeyArn": CMK,
            "targetPort": 5433,
            "maxConnectionsPercent": 80,
            "allowedSecurityGroups": {"checkout": "sg-app"},
        },
        name="orders-proxy",
    )
    assert run.of_type("commerce:db:ProxyLayer")[0].parent_type == "commerce:index:ProxyLayer"
    target = run.of_type("aws:rds/proxyTarget:ProxyTarget")[0]
    assert target.inputs["dbInstanceIdentifier"] == "orders-primary"
    group = run.of_type("aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup")[0]
    assert group.inputs["connectionPoolConfig"]["maxConnectionsPercent"] == 80
    policy = json.dumps(run.of_type("aws:iam/rolePolicy:RolePolicy")[0].inputs["policy"])
    assert "secret:orders" in policy and "team-cmk" in policy
    into_db = [r for r in run.of_type(INGRESS) if r.inputs["securityGroupId"] == "sg-db"]
    assert len(into_db) == 1 and into_db[0].inputs["fromPort"] == 5433  # the DB admits the proxy
    assert any(r.inputs.get("referencedSecurityGroupId") == "sg-app" for r in run.of_type(INGRESS))
    state = run.outputs["state"]
    assert state["writerEndpoint"].endswith(".rds.amazonaws.com") and state["port"] == 5432


def test_cache_layer_counts_nodes_from_a_float_and_lists_them() -> None:
    run = construct(
        "CacheLayer",
        {**PLACEMENT, "kmsKeyArn": CMK, "numCacheClusters": 3, "engine": "valkey", "engineVersion": "8.0"},
        name="sessions",
    )
    group = run.of_type("aws:elasticache/replicationGroup:ReplicationGroup")[0]
    assert group.inputs["engine"] == "valkey" and group.inputs["numCacheClusters"] == 3
    # list[Output[str]] on the component becomes one Output[list[str]] on the wrapper
    members = run.outputs["state"]["memberClusterIds"]
    assert [m.rsplit("-", 1)[1] for m in members] == ["001", "002", "003"]


def test_observability_layer_thresholds_and_subscriptions() -> None:
    run = construct(
        "ObservabilityLayer",
        {
            "region": "eu-west-1",
            "kmsKeyArn": CMK,
            "subscriptions": [{"protocol": "sqs", "endpoint": "arn:aws:sqs:eu-west-1:123456789012:ops"}],
            "thresholds": {"periodSeconds": 300, "rdsCpuPercent": 70},
            "dbInstances": {"primary": "orders-primary"},
            "createDashboard": False,
        },
        name="orders-obs",
    )
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    cpu = [a for a in alarms if a.inputs.get("metricName") == "CPUUtilization"]
    assert cpu and cpu[0].inputs["threshold"] == 70 and cpu[0].inputs["period"] == 300
    sub = run.of_type("aws:sns/topicSubscription:TopicSubscription")[0]
    assert sub.inputs["protocol"] == "sqs"
    state = run.outputs["state"]
    composites = run.of_type("aws:cloudwatch/compositeAlarm:CompositeAlarm")
    physical = [a.name for a in alarms] + [c.inputs["alarmName"] for c in composites]
    assert sorted(state["alarmNames"]) == sorted(physical)
    assert state["dashboardName"] is None  # disabled: the output resolves to null


def test_bad_threshold_names_the_field() -> None:
    with pytest.raises(ComponentInitError, match="period_seconds 45 is invalid"):
        construct(
            "ObservabilityLayer",
            {"region": "eu-west-1", "kmsKeyArn": CMK, "thresholds": {"periodSeconds": 45}},
        )


def test_database_wires_proxy_cache_and_alarms_to_the_cluster() -> None:
    run = construct(
        "Database",
        {
            "postgres": {**POSTGRES, "inRegionReplicas": 1, "tags": {"team": "checkout"}},
            "proxy": {"maxConnectionsPercent": 75},
            "cache": {"numCacheClusters": 2},
            "observability": {"createDashboard": False},
            "appSecurityGroups": {"checkout": "sg-app"},
        },
        name="orders",
    )
    children = {r.type: r for r in run.resources if r.parent_type == "commerce:index:Database"}
    assert {"commerce:db:PostgresCluster", "commerce:db:ProxyLayer", "commerce:db:CacheLayer",
            "commerce:db:ObservabilityLayer"} <= set(children)  # fmt: skip
    target = run.of_type("aws:rds/proxyTarget:ProxyTarget")[0]
    assert target.inputs["dbInstanceIdentifier"] == "orders-1"
    # the app is admitted where it connects: proxy, replicas, cache -- not the writer directly
    app_rules = [r for r in run.of_type(INGRESS) if r.inputs.get("referencedSecurityGroupId") == "sg-app"]
    assert sorted(r.name for r in app_rules) == [
        "orders-cache-from-checkout",
        "orders-proxy-from-checkout",
        "orders-readers-from-checkout",
    ]
    alarms = run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    # Single-metric alarms carry dimensions; metric-math ones (cache groups) carry them per query.
    queries = [q for a in alarms for q in a.inputs.get("metricQueries", [])]
    dims = [a.inputs.get("dimensions", {}) for a in alarms] + [
        q["metric"]["dimensions"] for q in queries if q.get("metric")
    ]
    assert any("ProxyName" in d for d in dims) and any("CacheClusterId" in d for d in dims)
    assert any(d.get("DBInstanceIdentifier") == "orders-2" for d in dims)
    cache_group = run.of_type("aws:elasticache/replicationGroup:ReplicationGroup")[0]
    assert cache_group.inputs["kmsKeyId"] == CMK and cache_group.inputs["tags"]["team"] == "checkout"
    state = run.outputs["state"]
    assert ".proxy-" in state["writerEndpoint"] and state["alarmTopicArn"].startswith("arn:aws:sns:")
    assert state["redisPort"] == 6379 and state["port"] == 5432


def test_database_without_layers_admits_apps_to_the_writer() -> None:
    run = construct("Database", {"postgres": POSTGRES, "appSecurityGroups": {"checkout": "sg-app"}}, "solo")
    assert not run.of_type("commerce:db:ProxyLayer") and not run.of_type("commerce:db:CacheLayer")
    app_rules = [r for r in run.of_type(INGRESS) if r.inputs.get("referencedSecurityGroupId") == "sg-app"]
    assert len(app_rules) == 2  # writer and readers
    state = run.outputs["state"]
    assert "proxyName" not in state and "redisPrimaryEndpoint" not in state


def test_database_on_aurora_watches_writer_reader_and_cluster() -> None:
    run = construct(
        "Database",
        {
            "postgres": {**POSTGRES, "engineMode": "aurora", "auroraReaders": 1},
            "proxy": {"readOnlyEndpoint": True},
            "observability": {"createDashboard": False},
        },
        name="au",
    )
    target = run.of_type("aws:rds/proxyTarget:ProxyTarget")[0]
    assert "dbClusterIdentifier" in target.inputs and "dbInstanceIdentifier" not in target.inputs
    watched = {
        a.inputs["dimensions"]["DBInstanceIdentifier"]
        for a in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if "DBInstanceIdentifier" in (a.inputs.get("dimensions") or {})
    }
    assert watched == {"au-1", "au-2"}  # slots: Aurora moves the writer role between them
    sources = {e.inputs["sourceType"] for e in run.of_type("aws:rds/eventSubscription:EventSubscription")}
    assert sources == {"db-instance", "db-cluster"}
    # readers go through the READ_ONLY proxy endpoint (the mock names its endpoint after it)
    assert run.outputs["state"]["readerEndpoints"] == ["au-proxy-ro.proxy-abc123.eu-west-1.rds.amazonaws.com"]


def test_postgres_cluster_without_region_and_with_log_groups_and_own_groups() -> None:
    """Issue 14 items 5, 6, 9 across languages: region from the provider, the one log-group
    argument (an integer sent as a float), an existing subnet group and security group."""
    inputs = {k: v for k, v in POSTGRES.items() if k != "region"}
    run = construct(
        "PostgresCluster",
        {
            **inputs,
            "cloudwatchLogsRetentionDays": 30,
            "dbSubnetGroupName": "team-db",
            "securityGroupIds": ["sg-t"],
        },
        name="orders",
    )
    groups = [
        g for g in run.of_type("aws:cloudwatch/logGroup:LogGroup") if g.inputs["name"].startswith("/aws/rds/")
    ]
    assert groups and {g.inputs["retentionInDays"] for g in groups} == {30}
    assert run.of_type("aws:rds/subnetGroup:SubnetGroup") == []
    rotation = run.of_type("aws:serverlessrepository/cloudFormationStack:CloudFormationStack")[0]
    assert rotation.inputs["parameters"]["endpoint"] == "https://secretsmanager.eu-west-1.amazonaws.com"
