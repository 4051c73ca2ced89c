"""ObservabilityLayer and RdsLogGroups under the mock engine: alarms, topic, events, dashboard, logs."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from _mockrun import run, single
from commerce_db_components import _alarms
from commerce_db_components.observability_layer import (
    AlarmSubscription,
    AlarmThresholds,
    ObservabilityLayer,
    ObservabilityLayerArgs,
)
from commerce_db_components.rds_log_groups import RdsLogGroups, RdsLogGroupsArgs, rds_log_group_name

from commerce_db.mock_engine import ProgramRun

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
CMK = "arn:aws:kms:us-east-1:123456789012:key/cmk"
BUCKET = "arn:aws:s3:::audit-bucket"
BUCKET_KEY = "arn:aws:kms:us-east-1:123456789012:key/audit"
FULL: dict[str, Any] = {
    "region": "us-east-1",
    "kms_key_arn": CMK,
    "subscriptions": [
        AlarmSubscription(protocol="email", endpoint="oncall@example.com"),
        AlarmSubscription(protocol="https", endpoint="https://hooks.example.com/alarm"),
    ],
    "db_instances": {"primary": "prod-db"},
    "db_replicas": {"replica-1": "prod-db-r1", "replica-2": "prod-db-r2"},
    "proxies": {"writer": "prod-proxy"},
    "cache_clusters": {"node-1": "prod-cache-001", "node-2": "prod-cache-002"},
}

RDS_METRICS = {
    "CPUUtilization",
    "FreeableMemory",
    "FreeStorageSpace",
    "DatabaseConnections",
    "ReadLatency",
    "WriteLatency",
}
WRITER_METRICS = {"MaximumUsedTransactionIDs", "OldestReplicationSlotLag"}
PROXY_METRICS = {
    "ClientConnections",
    "DatabaseConnections",
    "DatabaseConnectionsCurrentlySessionPinned",
    "MaxDatabaseConnectionsAllowed",
    "AvailabilityPercentage",
}
CACHE_WRITER_REGION = {
    "EngineCPUUtilization",
    "CurrConnections",
    "DatabaseMemoryUsagePercentage",
    "Evictions",
    "ReplicationLag",
}
CACHE_METRICS = CACHE_WRITER_REGION | {"GlobalDatastoreReplicationLag"}
COMPOSITE = "aws:cloudwatch/compositeAlarm:CompositeAlarm"


def build(**overrides: Any) -> ProgramRun:
    def program() -> None:
        layer = ObservabilityLayer("obs", ObservabilityLayerArgs(**{**FULL, **overrides}))
        pulumi.export("topic", layer.topic_arn)
        pulumi.export("alarms", layer.alarm_names)
        pulumi.export("dashboard", layer.dashboard_name)
        pulumi.export("firehose", layer.firehose_stream_arn)

    return run(program)


def simple_alarms(r: ProgramRun) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(namespace, metric, primary dimension value) -> alarm inputs, for single-metric alarms."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for a in r.of_type(ALARM):
        if "metricName" in a.inputs:
            dims = a.inputs["dimensions"]
            key_dim = next(
                v for k, v in dims.items() if k in ("DBInstanceIdentifier", "ProxyName", "CacheClusterId")
            )
            key = (a.inputs["namespace"], a.inputs["metricName"], key_dim)
            if a.inputs["metricName"] == "MaximumUsedTransactionIDs":
                continue  # a ticket and a page on the same metric (checked on their own)
            assert key not in out, f"duplicate alarm {key}"
            out[key] = dict(a.inputs)
    return out


def _topics(r: ProgramRun) -> tuple[Any, Any]:
    by_name = {t.name: t for t in r.of_type("aws:sns/topic:Topic")}
    return by_name["obs-alarms"], by_name["obs-page"]


def test_two_kms_encrypted_topics_tickets_and_pages_with_service_policy() -> None:
    r = build(
        page_subscriptions=[AlarmSubscription(protocol="https", endpoint="https://pager.example.com/x")]
    )
    ticket, page = _topics(r)
    assert ticket.inputs["kmsMasterKeyId"] == page.inputs["kmsMasterKeyId"] == CMK
    subs = {
        (s.inputs["topic"], s.inputs["protocol"], s.inputs["endpoint"])
        for s in r.of_type("aws:sns/topicSubscription:TopicSubscription")
    }
    t, p = ticket.state["arn"], page.state["arn"]
    assert subs == {
        (t, "email", "oncall@example.com"),
        (t, "https", "https://hooks.example.com/alarm"),
        (p, "https", "https://pager.example.com/x"),
    }
    for topic_policy in r.of_type("aws:sns/topicPolicy:TopicPolicy"):
        policy = json.loads(topic_policy.inputs["policy"])
        publishers = {
            st["Principal"]["Service"]: st
            for st in policy["Statement"]
            if st["Effect"] == "Allow" and "Service" in st.get("Principal", {})
        }
        assert set(publishers) == {
            "cloudwatch.amazonaws.com",
            "events.rds.amazonaws.com",
            "backup.amazonaws.com",
            "events.amazonaws.com",
        }
        for service, st in publishers.items():
            assert st["Action"] == "SNS:Publish" and st["Resource"] == topic_policy.inputs["arn"]
            if service == "events.amazonaws.com":  # EventBridge rules of this account only
                assert st["Condition"] == {
                    "ArnLike": {"aws:SourceArn": "arn:aws:events:*:123456789012:rule/*"}
                }
            else:
                assert st["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    assert r.outputs["topic"] == t


def _metrics_of(inputs: dict[str, Any]) -> set[str]:
    if "metricName" in inputs:
        return {inputs["metricName"]}
    return {q["metric"]["metricName"] for q in inputs.get("metricQueries", []) if q.get("metric")}


def test_every_alarm_is_a_page_or_a_ticket_on_its_topic() -> None:
    r = build()
    ticket, page = (t.state["arn"] for t in _topics(r))
    pages, tickets = [], []
    for alarm in [*r.of_type(ALARM), *r.of_type(COMPOSITE)]:
        severity = alarm.inputs["tags"]["severity"]
        assert f"Severity: {severity}" in alarm.inputs["alarmDescription"], alarm.name
        if severity == "page":  # the pager resolves itself: ALARM and OK
            assert alarm.inputs["alarmActions"] == alarm.inputs["okActions"] == [page], alarm.name
            pages.append(alarm.name)
        else:  # a ticket queue wants the ALARM only
            assert severity == "ticket" and alarm.inputs["alarmActions"] == [ticket], alarm.name
            assert not alarm.inputs.get("okActions"), alarm.name
            tickets.append(alarm.name)
    assert set(pages) == {
        "obs-rds-primary-xid-wraparound",
        "obs-rds-primary-replication-behind-rpo",
        "obs-rds-primary-storage-running-out",
        "obs-proxy-writer-writer-unavailable",
    }
    assert len(tickets) > 3 * len(pages)
    for alarm in r.of_type(ALARM):
        assert alarm.inputs["treatMissingData"] in ("missing", "notBreaching"), alarm.name
        assert "Missing data treated as" in alarm.inputs["alarmDescription"], alarm.name
    assert len(r.outputs["alarms"]) == len(r.of_type(ALARM)) + len(r.of_type(COMPOSITE))


def test_alarmed_metrics_per_resource() -> None:
    r = build()
    alarms = simple_alarms(r)
    for db in ("prod-db", "prod-db-r1", "prod-db-r2"):
        for metric in RDS_METRICS:
            assert alarms[("AWS/RDS", metric, db)]["dimensions"] == {"DBInstanceIdentifier": db}
    writer = {(a.inputs.get("metricName"), a.inputs.get("dimensions", {}).get("DBInstanceIdentifier"))
              for a in r.of_type(ALARM)}  # fmt: skip
    for metric in WRITER_METRICS:
        assert (metric, "prod-db") in writer and (metric, "prod-db-r1") not in writer
    xid = [a for a in r.of_type(ALARM) if a.inputs.get("metricName") == "MaximumUsedTransactionIDs"]
    assert sorted((a.inputs["tags"]["severity"], a.inputs["threshold"]) for a in xid) == [
        ("page", 1e9),
        ("ticket", 5e8),
    ]
    for db in ("prod-db-r1", "prod-db-r2"):
        lag = alarms[("AWS/RDS", "ReplicaLag", db)]
        # A promoted replica stops publishing ReplicaLag: mid-failover silence must not page.
        assert lag["treatMissingData"] == "notBreaching" and lag["threshold"] >= 300
    assert ("AWS/RDS", "ReplicaLag", "prod-db") not in alarms  # the writer has no ReplicaLag
    for metric in PROXY_METRICS:
        a = alarms[("AWS/RDS", metric, "prod-proxy")]
        if metric == "AvailabilityPercentage":
            assert a["dimensions"] == {
                "ProxyName": "prod-proxy",
                "TargetGroup": "default",
                "TargetRole": "READ_WRITE",
            }
    # Cache: one alarm per metric over the group, not one per node.
    cache = [
        a for a in r.of_type(ALARM) if a.name.startswith("obs-cache-") and a.name != "obs-cache-hit-rate"
    ]
    assert {m for a in cache for m in _metrics_of(a.inputs)} == CACHE_WRITER_REGION
    assert len(cache) == len(CACHE_WRITER_REGION)
    for a in cache:
        members = {
            q["metric"]["dimensions"]["CacheClusterId"] for q in a.inputs["metricQueries"] if q.get("metric")
        }
        assert members == {"prod-cache-001", "prod-cache-002"}, a.name


def test_a_region_that_takes_no_writes_has_fewer_cache_alarms_and_watches_the_primary() -> None:
    r = build(takes_writes=False, watch_primary=True, db_instances={}, proxies={})
    cache = {m for a in r.of_type(ALARM) if a.name.startswith("obs-cache-") for m in _metrics_of(a.inputs)}
    assert cache == {"EngineCPUUtilization", "CurrConnections", "GlobalDatastoreReplicationLag", "CacheHits",
                     "CacheMisses"}  # fmt: skip
    watchers = [a for a in r.of_type(ALARM) if a.name.endswith("-primary-silent")]
    assert {a.inputs["dimensions"]["DBInstanceIdentifier"] for a in watchers} == {"prod-db-r1", "prod-db-r2"}
    _ticket, page = _topics(r)
    for a in watchers:  # pages through this region's own topic, outside the primary region
        assert a.inputs["alarmActions"] == [page.state["arn"]] and a.inputs["threshold"] == 360
        assert a.inputs["treatMissingData"] == "notBreaching"
        assert (a.inputs["evaluationPeriods"], a.inputs["datapointsToAlarm"]) == (1, 1)
    behind = [a for a in r.of_type(ALARM) if a.name.endswith("-behind-rpo") and "-replica-" in a.name]
    assert {a.inputs["dimensions"]["DBInstanceIdentifier"] for a in behind} == {"prod-db-r1", "prod-db-r2"}
    for a in behind:  # the RPO, watched from outside the primary region too
        assert a.inputs["alarmActions"] == [page.state["arn"]] and a.inputs["metricName"] == "ReplicaLag"
        assert a.inputs["threshold"] == AlarmThresholds().replica_rpo_seconds == 70
        assert (a.inputs["evaluationPeriods"], a.inputs["datapointsToAlarm"]) == (6, 6)


def test_composite_symptoms_over_cause_alarms() -> None:
    r = build()
    by_name = {a.name: a for a in r.of_type(ALARM)}
    composites = {c.name: c.inputs["alarmRule"] for c in r.of_type(COMPOSITE)}
    proxy = composites["obs-proxy-writer-writer-unavailable"]
    for cause in ("obs-proxy-writer-availability", "obs-proxy-writer-pool-utilization",
                  "obs-proxy-writer-max-connections-allowed"):  # fmt: skip
        assert f'ALARM("{by_name[cause].state["name"]}")' in proxy
    assert proxy.count(" OR ") == 2
    storage = composites["obs-rds-primary-storage-running-out"]
    assert storage.count(" AND ") == 1 and by_name["obs-rds-primary-hours-to-full"].state["name"] in storage
    rpo = by_name["obs-rds-primary-replication-behind-rpo"].inputs
    queries = {q["id"]: q for q in rpo["metricQueries"]}
    assert queries["behind"]["expression"] == "IF(wal > 1024, lag / wal, 0)"
    assert queries["lag"]["metric"]["metricName"] == "OldestReplicationSlotLag"
    assert queries["wal"]["metric"]["metricName"] == "TransactionLogsGeneration"
    assert rpo["threshold"] == AlarmThresholds().rpo_seconds


def test_thresholds_are_configurable() -> None:
    t = AlarmThresholds(rds_cpu_percent=65, cache_evictions=5, evaluation_periods=3, datapoints_to_alarm=2)
    r = build(thresholds=t)
    cpu = simple_alarms(r)[("AWS/RDS", "CPUUtilization", "prod-db")]
    assert cpu["threshold"] == 65 and cpu["comparisonOperator"] == "GreaterThanThreshold"
    assert cpu["evaluationPeriods"] == 3 and cpu["datapointsToAlarm"] == 2
    assert next(a for a in r.of_type(ALARM) if a.name == "obs-cache-evictions").inputs["threshold"] == 5
    default = simple_alarms(build())[("AWS/RDS", "CPUUtilization", "prod-db")]
    assert default["threshold"] == AlarmThresholds().rds_cpu_percent == 80


def test_thresholds_follow_instance_size_storage_and_rpo() -> None:
    prod = _alarms.derive_thresholds(
        _alarms.DbCapacity("db.r7g.2xlarge", 1000, 4000, "io2", 20000), rpo_seconds=60
    )
    assert prod["rds_database_connections"][0] == 4000  # 80% of min(64 GiB/9531392, 5000)
    assert prod["proxy_database_connections"][0] == pytest.approx(0.8 * 0.9 * 5000)
    assert prod["rds_iops"][0] == 16000  # 80% of provisioned, not 50%
    assert prod["rds_free_storage_bytes"][0] == 50 * 1024**3  # 5% of the allocated 1000 GiB
    staging = _alarms.derive_thresholds(_alarms.DbCapacity("db.t4g.medium", 50, 200, "gp3"), rpo_seconds=60)
    assert staging["rds_database_connections"][0] == 0.8 * (4 * 1024**3 // 9531392)
    assert staging["rds_iops"][0] == 0.8 * 3000
    assert staging["rds_free_storage_bytes"][0] == 2.5 * 1024**3  # not 20 GiB = 40% of the volume
    assert staging["rds_replica_lag_seconds"][0] == 360  # above the 300 s idle heartbeat
    slow = _alarms.derive_thresholds(_alarms.DbCapacity("db.t4g.medium", 50), rpo_seconds=900)
    assert slow["rds_replica_lag_seconds"][0] == 960
    assert all(why for _v, why in prod.values())


def test_cache_hit_rate_metric_math_alarm() -> None:
    r = build()
    math = [a for a in r.of_type(ALARM) if "metricQueries" in a.inputs]
    hit = next(a for a in math if a.name == "obs-cache-hit-rate").inputs
    queries = {q["id"]: q for q in hit["metricQueries"]}
    expr = queries["hitrate"]["expression"]
    assert queries["hitrate"]["returnData"] is True
    hits = {
        q["metric"]["dimensions"]["CacheClusterId"]
        for q in queries.values()
        if q.get("metric", {}).get("metricName") == "CacheHits"
    }
    misses = {
        q["metric"]["dimensions"]["CacheClusterId"]
        for q in queries.values()
        if q.get("metric", {}).get("metricName") == "CacheMisses"
    }
    assert hits == misses == {"prod-cache-001", "prod-cache-002"}
    for qid, q in queries.items():
        if qid != "hitrate":
            assert q["returnData"] is False and q["metric"]["namespace"] == "AWS/ElastiCache"
            assert qid in expr
    assert expr == "IF((h0+h1+m0+m1) >= 1000, 100*(h0+h1)/(h0+h1+m0+m1), 100)"
    assert hit["comparisonOperator"] == "LessThanThreshold" and hit["threshold"] == 80
    assert "metricName" not in hit


def test_proxy_pool_utilization_metric_math_alarm() -> None:
    r = build()
    pool = next(a for a in r.of_type(ALARM) if a.name == "obs-proxy-writer-pool-utilization").inputs
    queries = {q["id"]: q for q in pool["metricQueries"]}
    assert queries["utilization"]["expression"] == "100*used/allowed"
    assert queries["used"]["metric"]["metricName"] == "DatabaseConnections"
    assert queries["allowed"]["metric"]["metricName"] == "MaxDatabaseConnectionsAllowed"
    assert queries["used"]["metric"]["dimensions"] == {"ProxyName": "prod-proxy"}


def test_rds_event_subscriptions() -> None:
    r = build(db_clusters={"aurora": "prod-aurora"})
    topic_arn = _topics(r)[0].state["arn"]
    subs = {
        s.inputs["sourceType"]: s.inputs for s in r.of_type("aws:rds/eventSubscription:EventSubscription")
    }
    inst = subs["db-instance"]
    assert inst["snsTopic"] == topic_arn
    assert set(inst["sourceIds"]) == {"prod-db", "prod-db-r1", "prod-db-r2"}
    assert {"failover", "failure", "low storage", "maintenance", "notification"} <= set(
        inst["eventCategories"]
    )
    cluster = subs["db-cluster"]
    assert cluster["sourceIds"] == ["prod-aurora"] and "failover" in cluster["eventCategories"]


def test_elasticache_events_routed_to_topic_by_eventbridge() -> None:
    r = build()
    rule = single(r, "aws:cloudwatch/eventRule:EventRule")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["source"] == ["aws.elasticache"]
    assert {"Cache Update Failed", "Cache Limit Approaching", "Snapshot Creation Failed"} <= set(
        pattern["detail-type"]
    )
    target = single(r, "aws:cloudwatch/eventTarget:EventTarget").inputs
    assert target["rule"] == rule.state["name"]
    assert target["arn"] == _topics(r)[0].state["arn"]
    assert build(cache_event_types=()).of_type("aws:cloudwatch/eventRule:EventRule") == []
    with pytest.raises(ValueError, match="cache_event_types"):
        ObservabilityLayerArgs(**{**FULL, "cache_event_types": ["Cache Exploded"]})


def test_dashboard_body_is_valid_json_and_mentions_every_metric() -> None:
    r = build()
    dash = single(r, "aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dash.inputs["dashboardBody"])
    text = json.dumps(body)
    for metric in (
        RDS_METRICS | PROXY_METRICS | CACHE_WRITER_REGION | {"ReplicaLag", "CacheHits", "CacheMisses"}
    ):
        assert f'"{metric}"' in text, metric
    for rid in ("prod-db", "prod-db-r1", "prod-db-r2", "prod-proxy", "prod-cache-001", "prod-cache-002"):
        assert f'"{rid}"' in text, rid
    graphs = [w for w in body["widgets"] if w["type"] == "metric"]
    assert all(w["properties"]["region"] == "us-east-1" for w in graphs)
    assert any("expression" in str(w["properties"]["metrics"]) for w in graphs)
    assert r.outputs["dashboard"] == dash.inputs["dashboardName"]


def test_dashboard_metric_list_matches_alarm_catalogue() -> None:
    body = json.loads(
        _alarms.dashboard_body(
            region="eu-west-1",
            sections=[("RDS Proxy", _alarms.PROXY_METRICS, {"w": "p1"})],
            thresholds=AlarmThresholds(),
        )
    )
    graphed = {w["properties"]["metrics"][0][1] for w in body["widgets"] if w["type"] == "metric"}
    assert graphed == {s.metric_name for s in _alarms.PROXY_METRICS}


def test_empty_replica_region_creates_topic_and_dashboard_only() -> None:
    r = build(db_instances={}, db_replicas={}, proxies={}, cache_clusters={}, subscriptions=())
    assert r.of_type(ALARM) == []
    assert r.of_type("aws:rds/eventSubscription:EventSubscription") == []
    assert r.of_type("aws:cloudwatch/eventRule:EventRule") == []
    body = json.loads(single(r, "aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    assert body["widgets"] and body["widgets"][0]["type"] == "text"
    assert r.outputs["firehose"] is None


def test_postgresql_logs_shipped_through_firehose_to_audit_bucket() -> None:
    r = build(
        audit_bucket_arn=BUCKET,
        audit_bucket_kms_key_arn=BUCKET_KEY,
        postgres_log_groups={"primary": "/aws/rds/instance/prod-db/postgresql"},
    )
    stream = single(r, "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream")
    s3 = stream.inputs["extendedS3Configuration"]
    assert stream.inputs["destination"] == "extended_s3"
    assert s3["bucketArn"] == BUCKET and s3["kmsKeyArn"] == BUCKET_KEY
    assert s3["prefix"] == "rds-logs/us-east-1/"
    assert stream.inputs["serverSideEncryption"] == {
        "enabled": True,
        "keyType": "CUSTOMER_MANAGED_CMK",
        "keyArn": CMK,
    }
    roles = {x.name: x for x in r.of_type("aws:iam/role:Role")}
    firehose_role, logs_role = roles["obs-firehose"], roles["obs-logs-to-firehose"]
    assert s3["roleArn"] == firehose_role.state["arn"]
    trust = json.loads(firehose_role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "firehose.amazonaws.com"}
    policies = {p.name: json.loads(p.inputs["policy"]) for p in r.of_type("aws:iam/rolePolicy:RolePolicy")}
    resources = {
        res
        for st in policies["obs-firehose"]["Statement"]
        for res in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])
    }
    assert resources == {BUCKET, f"{BUCKET}/*", BUCKET_KEY}  # limited to that bucket and its key
    key_stmt = next(st for st in policies["obs-firehose"]["Statement"] if st["Resource"] == BUCKET_KEY)
    # Bucket Keys put the bucket ARN (not the object ARN) in the encryption context: both must match.
    assert key_stmt["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"] == [BUCKET, f"{BUCKET}/*"]
    put = policies["obs-logs-to-firehose"]["Statement"][0]
    assert put["Action"] == ["firehose:PutRecord", "firehose:PutRecordBatch"]
    assert put["Resource"] == stream.state["arn"]
    filt = single(r, "aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter").inputs
    assert filt["logGroup"] == "/aws/rds/instance/prod-db/postgresql"
    assert filt["destinationArn"] == stream.state["arn"]
    assert filt["roleArn"] == logs_role.state["arn"]
    assert json.loads(logs_role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "logs.amazonaws.com"
    }
    assert r.outputs["firehose"] == stream.state["arn"]


def test_no_audit_bucket_means_no_firehose() -> None:
    r = build(postgres_log_groups={"primary": "/aws/rds/instance/prod-db/postgresql"})
    assert r.of_type("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream") == []
    assert r.of_type("aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter") == []


def test_rds_log_groups_exact_names_retention_and_kms() -> None:
    def program() -> None:
        logs = RdsLogGroups(
            "logs",
            RdsLogGroupsArgs(
                identifiers={"primary": "prod-db", "replica-1": "prod-db-r1"},
                retention_days=731,
                kms_key_arn=CMK,
            ),
        )
        pulumi.export("pg", logs.postgresql_log_group_names)
        pulumi.export("all", logs.log_group_names)

    r = run(program)
    groups = {g.inputs["name"]: g.inputs for g in r.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert set(groups) == {
        "/aws/rds/instance/prod-db/postgresql",
        "/aws/rds/instance/prod-db/upgrade",
        "/aws/rds/instance/prod-db-r1/postgresql",
        "/aws/rds/instance/prod-db-r1/upgrade",
    }
    assert all(g["retentionInDays"] == 731 and g["kmsKeyId"] == CMK for g in groups.values())
    assert r.outputs["pg"] == {
        "primary": "/aws/rds/instance/prod-db/postgresql",
        "replica-1": "/aws/rds/instance/prod-db-r1/postgresql",
    }
    assert rds_log_group_name("aur", "postgresql", kind="cluster") == "/aws/rds/cluster/aur/postgresql"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"identifiers": {"p": "Prod_DB"}}, "identifiers"),
        ({"identifiers": {"p": "db"}, "retention_days": 45}, "retention_days"),
        ({"identifiers": {"p": "db"}, "exports": ["slowquery"]}, "exports"),
        ({"identifiers": {"P": "db"}}, "label"),
    ],
)
def test_rds_log_groups_validation(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RdsLogGroupsArgs(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"evaluation_periods": 2, "datapoints_to_alarm": 3}, "datapoints_to_alarm"),
        ({"rds_cpu_percent": 120}, "rds_cpu_percent"),
        ({"cache_evictions": -1}, "cache_evictions"),
        ({"period_seconds": 45}, "period_seconds"),
    ],
)
def test_threshold_validation(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        AlarmThresholds(**kwargs)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"region": "mars-1"}, "region"),
        ({"audit_bucket_arn": BUCKET}, "audit_bucket_kms_key_arn"),
        ({"rds_event_categories": ["explosions"]}, "rds_event_categories"),
        ({"rds_cluster_event_categories": ["low storage"]}, "rds_cluster_event_categories"),
        ({"db_instances": {"a": "x"}, "db_replicas": {"a": "y"}}, "labels must be unique"),
        ({"proxies": {"Writer": "p"}}, "proxies label"),
        ({"audit_log_prefix": "no-trailing-slash"}, "audit_log_prefix"),
    ],
)
def test_args_validation(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ObservabilityLayerArgs(**{**FULL, **overrides})


@pytest.mark.parametrize(
    ("protocol", "endpoint"),
    [("pager", "x"), ("https", "http://insecure"), ("sqs", "queue-name"), ("email", "")],
)
def test_subscription_validation(protocol: str, endpoint: str) -> None:
    with pytest.raises(ValueError, match=r"protocol|endpoint"):
        AlarmSubscription(protocol=protocol, endpoint=endpoint)  # type: ignore[arg-type]


def test_alarm_catalogue_doc_is_generated_from_the_code() -> None:
    from pathlib import Path

    from commerce_db.alarm_docs import render

    doc = Path(__file__).resolve().parents[3] / "docs" / "alarms.md"
    assert doc.read_text() == render("prod"), "regenerate: python -m commerce_db.alarm_docs > docs/alarms.md"
