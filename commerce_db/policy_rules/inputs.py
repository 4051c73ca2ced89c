"""Small readers over registered resource inputs shared by the rules, the plan and the cost model.

Inputs arrive as camelCase keys; numbers may be floats (mock engine) and booleans may be strings
(stack files); secret values are wrapped objects. These helpers normalise all of that once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Resource type tokens the rules and renderers talk about.
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
RDS_PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
RDS_CLUSTER_PARAMETER_GROUP = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
RDS_PROXY = "aws:rds/proxy:Proxy"
RDS_PROXY_TARGET = "aws:rds/proxyTarget:ProxyTarget"
RDS_PROXY_ENDPOINT = "aws:rds/proxyEndpoint:ProxyEndpoint"
RDS_PROXY_TARGET_GROUP = "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup"
CACHE_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_GLOBAL = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"
S3_BUCKET = "aws:s3/bucket:Bucket"
S3_BUCKET_V2 = "aws:s3/bucketV2:BucketV2"
S3_SSE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
SNS_TOPIC = "aws:sns/topic:Topic"
KMS_KEY = "aws:kms/key:Key"
SECRET = "aws:secretsmanager/secret:Secret"
SG = "aws:ec2/securityGroup:SecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
BACKUP_PLAN = "aws:backup/plan:Plan"
BACKUP_VAULT = "aws:backup/vault:Vault"
BACKUP_SELECTION = "aws:backup/selection:Selection"

DB_INSTANCE_TYPES = frozenset({RDS_INSTANCE, RDS_CLUSTER_INSTANCE})


def short_type(type_token: str) -> str:
    """``aws:rds/instance:Instance`` -> ``rds.Instance``; components keep their last segment."""
    parts = type_token.split(":")
    if len(parts) != 3:
        return type_token
    pkg, module, cls = parts
    mod = module.split("/")[0]
    if pkg == "pulumi" and mod == "providers":
        return f"provider.{cls}"
    if mod in ("index", ""):
        return f"{pkg}.{cls}" if pkg != "aws" else cls
    if pkg == "commerce":
        return cls
    return f"{mod}.{cls}"


def truthy(value: Any) -> bool:
    """True for ``True`` and the strings ``"true"``/``"1"``/``"yes"`` (stack files store strings)."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return value is True or (isinstance(value, int | float) and not isinstance(value, bool) and value != 0)


def falsy_explicit(value: Any) -> bool:
    """True when ``value`` was set to false (as opposed to left unset)."""
    if value is None:
        return False
    return not truthy(value)


def number(value: Any) -> float | None:
    """A numeric input as float, ``None`` when unset or not a number."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def is_set(value: Any) -> bool:
    """A value counts as set unless it is ``None`` or an empty string/list."""
    return value is not None and value != "" and value != [] and value != {}


def items(value: Any) -> list[Mapping[str, Any]]:
    """An input that is a list of objects (or one object, pulumi-aws v7 style) as a list of mappings."""
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, Mapping)]
    return []


def strings(value: Any) -> list[str]:
    """A string-or-list input as a list of strings."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []


def is_rds_replica(inputs: Mapping[str, Any]) -> bool:
    """True for a read replica (``replicate_source_db`` set)."""
    return is_set(inputs.get("replicateSourceDb"))


def is_cross_region_replica(inputs: Mapping[str, Any]) -> bool:
    """Cross-region replicas name their source by ARN (same-region ones may use the identifier)."""
    src = inputs.get("replicateSourceDb")
    return isinstance(src, str) and src.startswith("arn:")


def is_cache_secondary(inputs: Mapping[str, Any]) -> bool:
    """True for a Global Datastore secondary (joins an existing global replication group)."""
    return is_set(inputs.get("globalReplicationGroupId"))


def identifiers_of(resource: Any) -> set[str]:
    """Strings other resources may use to refer to ``resource`` (name, identifier, id, ARN, ...).

    Works for ``RegisteredResource`` (reads its mock ``state``), the policy adapter's ``Subject``
    (``identifiers``) and anything with ``name``/``inputs``.
    """
    out: set[str] = {resource.name}
    inputs = resource.inputs
    for key in ("identifier", "name", "bucket", "clusterIdentifier", "replicationGroupId"):
        v = inputs.get(key)
        if isinstance(v, str) and v:
            out.add(v)
    for v in getattr(resource, "identifiers", ()) or ():
        out.add(v)
    state = getattr(resource, "state", None) or {}
    for key in ("id", "arn", "identifier", "bucket", "clusterIdentifier", "name", "replicationGroupId"):
        v = state.get(key)
        if isinstance(v, str) and v:
            out.add(v)
    return out


def alarm_metrics(inputs: Mapping[str, Any]) -> Iterable[tuple[str | None, str | None, Mapping[str, Any]]]:
    """``(namespace, metric name, dimensions)`` of an alarm, including metric-math queries."""
    yield inputs.get("namespace"), inputs.get("metricName"), inputs.get("dimensions") or {}
    for query in items(inputs.get("metricQueries")):
        metric = query.get("metric")
        if isinstance(metric, Mapping):
            yield metric.get("namespace"), metric.get("metricName"), metric.get("dimensions") or {}


def mapping(value: Any) -> Mapping[str, Any]:
    """An object input as a mapping (empty when unset or not an object)."""
    return value if isinstance(value, Mapping) else {}
