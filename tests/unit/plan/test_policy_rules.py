"""Each policy rule fires on a bad resource and passes on a good one (pure rule code)."""

from __future__ import annotations

from typing import Any

import pytest

from commerce_db.policy_rules import Enforcement, PolicyContext, Subject, evaluate, has_mandatory, rule_named

PROD = PolicyContext(stack="prod")
STAGING = PolicyContext(stack="staging")

RDS = "aws:rds/instance:Instance"
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
GOOD_PRIMARY: dict[str, Any] = {
    "engine": "postgres",
    "instanceClass": "db.r7g.large",
    "storageEncrypted": True,
    "kmsKeyId": "arn:aws:kms:us-east-1:1:key/k",
    "publiclyAccessible": False,
    "deletionProtection": True,
    "skipFinalSnapshot": False,
    "finalSnapshotIdentifier": "db-final",
    "backupRetentionPeriod": 35.0,
    "multiAz": True,
    "performanceInsightsEnabled": True,
}
GOOD_CACHE: dict[str, Any] = {
    "atRestEncryptionEnabled": True,
    "transitEncryptionEnabled": True,
    "authToken": "x" * 32,
    "multiAzEnabled": True,
    "automaticFailoverEnabled": True,
}


def res(type_: str, name: str = "r", region: str = "us-east-1", **inputs: Any) -> Subject:
    return Subject(type=type_, name=name, inputs=inputs, region=region)


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(base)
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def findings_of(rule: str, subjects: list[Subject], ctx: PolicyContext = PROD) -> list[str]:
    return [f.message for f in evaluate(subjects, ctx, [rule_named(rule)])]


CASES: list[tuple[str, list[Subject], list[Subject], PolicyContext]] = [
    (
        "encryption-at-rest-rds",
        [res(RDS, **with_(GOOD_PRIMARY, storageEncrypted=False))],
        [res(RDS, **GOOD_PRIMARY)],
        STAGING,
    ),
    (
        "encryption-at-rest-rds",  # cross-region replica without a destination-region key
        [res(RDS, replicateSourceDb="arn:aws:rds:us-east-1:1:db:p", instanceClass="db.r7g.large")],
        [
            res(
                RDS,
                replicateSourceDb="arn:aws:rds:us-east-1:1:db:p",
                kmsKeyId="arn:aws:kms:eu-west-1:1:key/k",
            )
        ],
        STAGING,
    ),
    (
        "encryption-at-rest-elasticache",
        [res(CACHE, **with_(GOOD_CACHE, atRestEncryptionEnabled=False))],
        [res(CACHE, **GOOD_CACHE), res(CACHE, globalReplicationGroupId="ldgnf-x")],  # secondary inherits
        STAGING,
    ),
    (
        "encryption-at-rest-sns",
        [res("aws:sns/topic:Topic")],
        [res("aws:sns/topic:Topic", kmsMasterKeyId="arn:aws:kms:us-east-1:1:key/k")],
        STAGING,
    ),
    (
        "customer-managed-key",
        [res(RDS, **with_(GOOD_PRIMARY, kmsKeyId=None))],
        [
            res(RDS, **GOOD_PRIMARY),
            res(RDS, replicateSourceDb="p"),
        ],  # same-region replica uses the source key
        STAGING,
    ),
    (
        "encryption-in-transit-elasticache",
        [res(CACHE, **with_(GOOD_CACHE, transitEncryptionEnabled=None))],
        [res(CACHE, **GOOD_CACHE)],
        STAGING,
    ),
    (
        "proxy-require-tls",
        [res("aws:rds/proxy:Proxy", requireTls=False)],
        [res("aws:rds/proxy:Proxy", requireTls=True)],
        STAGING,
    ),
    (
        "rds-force-ssl",
        [
            res(
                "aws:rds/parameterGroup:ParameterGroup",
                family="postgres16",
                parameters=[{"name": "rds.force_ssl", "value": "0"}],
            ),
            res("aws:rds/parameterGroup:ParameterGroup", family="postgres14", parameters=[]),
            res(
                "aws:rds/clusterParameterGroup:ClusterParameterGroup",
                family="aurora-postgresql16",
                parameters=[],
            ),
        ],
        [
            res(
                "aws:rds/parameterGroup:ParameterGroup",
                family="postgres16",
                parameters=[{"name": "rds.force_ssl", "value": "1"}],
            ),
            res(
                "aws:rds/parameterGroup:ParameterGroup", family="postgres17", parameters=[]
            ),  # default 1 from 15
        ],
        STAGING,
    ),
    (
        "no-public-database",
        [res(RDS, **with_(GOOD_PRIMARY, publiclyAccessible=True))],
        [res(RDS, **GOOD_PRIMARY)],
        STAGING,
    ),
    (
        "no-open-ingress-db-ports",
        [
            res(
                "aws:ec2/securityGroup:SecurityGroup",
                ingress=[
                    {"protocol": "tcp", "fromPort": 5432.0, "toPort": 5432.0, "cidrBlocks": ["0.0.0.0/0"]}
                ],
            ),
            res(
                "aws:ec2/securityGroupRule:SecurityGroupRule",
                type="ingress",
                protocol="tcp",
                fromPort=6000,
                toPort=7000,
                ipv6CidrBlocks=["::/0"],
            ),
            res(
                "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                ipProtocol="-1",
                cidrIpv4="0.0.0.0/0",
            ),
        ],
        [
            res(
                "aws:ec2/securityGroup:SecurityGroup",
                ingress=[{"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "securityGroups": ["sg-app"]}],
            ),
            res(
                "aws:ec2/securityGroupRule:SecurityGroupRule",
                type="ingress",
                protocol="tcp",
                fromPort=443,
                toPort=443,
                cidrBlocks=["0.0.0.0/0"],
            ),
            res(
                "aws:ec2/securityGroupRule:SecurityGroupRule",
                type="egress",
                protocol="-1",
                cidrBlocks=["0.0.0.0/0"],
            ),
            res(
                "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
                ipProtocol="tcp",
                fromPort=6379,
                toPort=6379,
                cidrIpv4="10.0.0.0/16",
            ),
        ],
        STAGING,
    ),
    (
        "prod-deletion-protection",
        [res(RDS, **with_(GOOD_PRIMARY, deletionProtection=False))],
        [res(RDS, **GOOD_PRIMARY), res(RDS, replicateSourceDb="p")],  # replicas exempt
        PROD,
    ),
    (
        "prod-final-snapshot",
        [
            res(RDS, **with_(GOOD_PRIMARY, skipFinalSnapshot=True)),
            res(RDS, **with_(GOOD_PRIMARY, finalSnapshotIdentifier=None)),
        ],
        [res(RDS, **GOOD_PRIMARY)],
        PROD,
    ),
    (
        "backup-retention",
        [
            res(RDS, **with_(GOOD_PRIMARY, backupRetentionPeriod=0)),
            res(RDS, **with_(GOOD_PRIMARY, backupRetentionPeriod=None)),
            res("aws:backup/plan:Plan", rules=[{"ruleName": "daily", "lifecycle": {"deleteAfter": 6}}]),
            res(
                "aws:backup/plan:Plan",
                rules=[
                    {
                        "ruleName": "d",
                        "lifecycle": {"deleteAfter": 35},
                        "copyActions": [{"lifecycle": {"deleteAfter": 3}}],
                    }
                ],
            ),
        ],
        [
            res(RDS, **with_(GOOD_PRIMARY, backupRetentionPeriod=7)),
            res(RDS, replicateSourceDb="p"),
            res(
                "aws:backup/plan:Plan",
                rules=[
                    {
                        "ruleName": "d",
                        "lifecycle": {"deleteAfter": 35},
                        "copyActions": [{"lifecycle": {"deleteAfter": 35}}],
                    }
                ],
            ),
        ],
        STAGING,
    ),
    (
        "prod-multi-az",
        [
            res(RDS, **with_(GOOD_PRIMARY, multiAz=False)),
            res(CACHE, **with_(GOOD_CACHE, automaticFailoverEnabled=False)),
        ],
        [res(RDS, **GOOD_PRIMARY), res(CACHE, **GOOD_CACHE), res(CACHE, globalReplicationGroupId="g")],
        PROD,
    ),
    (
        "performance-insights",
        [res(RDS, **with_(GOOD_PRIMARY, performanceInsightsEnabled=False))],
        [
            res(RDS, **GOOD_PRIMARY),
            res(RDS, **with_(GOOD_PRIMARY, performanceInsightsEnabled=None, databaseInsightsMode="advanced")),
        ],
        STAGING,
    ),
    (
        "redis-auth-token",
        [res(CACHE, **with_(GOOD_CACHE, authToken=None))],
        [
            res(CACHE, **GOOD_CACHE),
            res(CACHE, globalReplicationGroupId="g"),
            res(CACHE, **with_(GOOD_CACHE, authToken=None, userGroupIds=["ug"])),
        ],
        STAGING,
    ),
    (
        "alarm-actions",
        [res("aws:cloudwatch/metricAlarm:MetricAlarm", metricName="CPUUtilization")],
        [
            res(
                "aws:cloudwatch/metricAlarm:MetricAlarm",
                metricName="CPUUtilization",
                alarmActions=["arn:sns"],
            )
        ],
        STAGING,
    ),
]


@pytest.mark.parametrize(
    ("rule", "bad", "good", "ctx"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_rule_fires_on_bad_and_passes_on_good(
    rule: str, bad: list[Subject], good: list[Subject], ctx: PolicyContext
) -> None:
    for subject in bad:
        msgs = findings_of(rule, [subject], ctx)
        assert msgs, f"{rule} did not fire on {subject.inputs}"
        assert all(subject.name in m for m in msgs)  # the message names the resource
    assert findings_of(rule, good, ctx) == []


def test_prod_only_rules_skip_staging() -> None:
    bad = res(RDS, **with_(GOOD_PRIMARY, deletionProtection=False, multiAz=False, skipFinalSnapshot=True))
    assert findings_of("prod-deletion-protection", [bad], STAGING) == []
    assert findings_of("prod-multi-az", [bad], STAGING) == []
    assert findings_of("prod-deletion-protection", [bad], PolicyContext(stack="blue", environment="prod"))


def _s3(bucket_sse: bool) -> list[Subject]:
    bucket = Subject("aws:s3/bucket:Bucket", "audit", {}, "us-east-1", identifiers=("audit-bucket-id",))
    out = [bucket]
    if bucket_sse:
        out.append(
            res(
                "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                "audit-sse",
                bucket="audit-bucket-id",
            )
        )
    return out


def test_s3_encryption_stack_rule() -> None:
    assert findings_of("encryption-at-rest-s3", _s3(False), STAGING)
    assert findings_of("encryption-at-rest-s3", _s3(True), STAGING) == []


def _alarm(metric: str, ident: str) -> Subject:
    return res(
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        f"{ident}-{metric}",
        namespace="AWS/RDS",
        metricName=metric,
        dimensions={"DBInstanceIdentifier": ident},
        alarmActions=["arn:sns"],
    )


def test_db_alarms_stack_rule_needs_cpu_and_storage_per_instance() -> None:
    db = res(RDS, "primary", identifier="cdb-primary", **GOOD_PRIMARY)
    replica = res(RDS, "replica", identifier="cdb-replica", replicateSourceDb="cdb-primary")
    alarms = [_alarm("CPUUtilization", "cdb-primary"), _alarm("FreeStorageSpace", "cdb-primary")]
    msgs = findings_of("db-alarms", [db, replica, *alarms], STAGING)
    assert len(msgs) == 1 and "'replica'" in msgs[0] and "CPUUtilization, FreeStorageSpace" in msgs[0]
    alarms += [_alarm("CPUUtilization", "cdb-replica")]
    msgs = findings_of("db-alarms", [db, replica, *alarms], STAGING)
    assert len(msgs) == 1 and "FreeStorageSpace" in msgs[0] and "CPUUtilization" not in msgs[0]
    alarms += [_alarm("FreeStorageSpace", "cdb-replica")]
    assert findings_of("db-alarms", [db, replica, *alarms], STAGING) == []


def test_mandatory_vs_advisory_and_ordering() -> None:
    subjects = [
        res(RDS, "db", **with_(GOOD_PRIMARY, performanceInsightsEnabled=False, publiclyAccessible=True)),
    ]
    found = evaluate(subjects, STAGING)
    kinds = [
        (f.policy, f.enforcement) for f in found if f.policy in ("no-public-database", "performance-insights")
    ]
    assert kinds == [
        ("no-public-database", Enforcement.MANDATORY),
        ("performance-insights", Enforcement.ADVISORY),
    ]
    assert has_mandatory(found)
    assert not has_mandatory([f for f in found if f.enforcement == Enforcement.ADVISORY])


def test_backup_retention_judges_only_the_floor() -> None:
    # The 35-day ceiling is AWS's (the config and the Args refuse more); the policy judges the choice.
    assert findings_of(
        "backup-retention", [res(RDS, **with_(GOOD_PRIMARY, backupRetentionPeriod=1))], STAGING
    )
    assert (
        "at least 7 days"
        in findings_of(
            "backup-retention", [res(RDS, **with_(GOOD_PRIMARY, backupRetentionPeriod=6))], STAGING
        )[0]
    )
    assert findings_of("backup-retention", [res(RDS, **with_(GOOD_PRIMARY, backupRetentionPeriod=7))]) == []


def test_prod_data_must_be_protected() -> None:
    def subject(protect: bool | None) -> Subject:
        return Subject(RDS, "pg", GOOD_PRIMARY, "us-east-1", protect=protect)

    msgs = findings_of("prod-protected-data", [subject(False)], PROD)
    assert len(msgs) == 1 and "'pg'" in msgs[0] and "protectResources" in msgs[0]
    assert findings_of("prod-protected-data", [subject(True)], PROD) == []
    assert findings_of("prod-protected-data", [subject(None)], PROD) == []  # options unknown
    assert findings_of("prod-protected-data", [subject(False)], STAGING) == []
    kms = Subject("aws:kms/key:Key", "k", {}, "us-east-1", protect=False)
    assert findings_of("prod-protected-data", [kms], PROD)


def test_prod_global_aurora_keeps_two_acu() -> None:
    def cluster(minimum: float, global_id: str | None = "cdb-global") -> Subject:
        inputs: dict[str, Any] = {
            "serverlessv2ScalingConfiguration": {"minCapacity": minimum, "maxCapacity": 64}
        }
        if global_id:
            inputs["globalClusterIdentifier"] = global_id
        return Subject("aws:rds/cluster:Cluster", "aur", inputs, "us-east-1")

    msgs = findings_of("prod-aurora-min-capacity", [cluster(0.5)], PROD)
    assert len(msgs) == 1 and "0.5 ACU" in msgs[0]
    assert findings_of("prod-aurora-min-capacity", [cluster(2)], PROD) == []
    assert findings_of("prod-aurora-min-capacity", [cluster(0.5, None)], PROD) == []  # no Global Database
    assert findings_of("prod-aurora-min-capacity", [cluster(0.5)], STAGING) == []


def test_prod_aurora_needs_a_reader() -> None:
    cluster = Subject("aws:rds/cluster:Cluster", "aur", {"clusterIdentifier": "cdb-aur"}, "us-east-1")
    writer = res("aws:rds/clusterInstance:ClusterInstance", "w", clusterIdentifier="cdb-aur")
    reader = res("aws:rds/clusterInstance:ClusterInstance", "r1", clusterIdentifier="cdb-aur")
    msgs = findings_of("prod-aurora-readers", [cluster, writer], PROD)
    assert len(msgs) == 1 and "1 instance(s)" in msgs[0]
    assert findings_of("prod-aurora-readers", [cluster, writer, reader], PROD) == []
    assert findings_of("prod-aurora-readers", [cluster, writer], STAGING) == []


def test_every_rule_is_covered_by_a_test_here() -> None:
    from pathlib import Path

    from commerce_db.policy_rules import RULES

    source = Path(__file__).read_text()
    assert [r.name for r in RULES if f'"{r.name}"' not in source] == []
