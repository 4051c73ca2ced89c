"""ObservabilityLayer: alarms, events, dashboard and log plumbing for one region's database tier.

One component per region. It owns:

- an SNS topic encrypted with the region's CMK, its subscriptions and a topic policy that lets
  CloudWatch alarms, RDS event notifications and AWS Backup publish (scoped to this account);
- CloudWatch metric alarms (thresholds in :class:`AlarmThresholds`) for every RDS instance and
  replica, every RDS Proxy and every ElastiCache member cluster it is given, with alarm and OK
  actions to the topic, plus a cache hit-rate alarm built with metric math;
- RDS event subscriptions to the topic;
- a CloudWatch dashboard built from the same metric list as the alarms;
- the ``/aws/rds/instance/<id>/<log>`` log groups (created *before* RDS exports to them, so this
  program owns their retention and KMS key) and, when an audit bucket is given, a subscription
  filter on each ``postgresql`` log group into a Kinesis Data Firehose stream that writes to it.

All id inputs may be empty mappings (e.g. a replica-only region has no proxy).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi

_LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
_SUBSCRIPTION_PROTOCOLS = ("email", "email-json", "https", "sqs", "lambda", "sms")
_RDS_LOG_EXPORTS = ("postgresql", "upgrade", "iam-db-auth-error")
_DB_INSTANCE_EVENT_CATEGORIES = (
    "availability",
    "backup",
    "configuration change",
    "creation",
    "deletion",
    "failover",
    "failure",
    "low storage",
    "maintenance",
    "notification",
    "read replica",
    "recovery",
    "restoration",
    "security",
    "security patching",
)
_DB_CLUSTER_EVENT_CATEGORIES = (
    "configuration change",
    "creation",
    "deletion",
    "failover",
    "failure",
    "global-failover",
    "maintenance",
    "migration",
    "notification",
    "serverless",
)


@dataclass(frozen=True, kw_only=True)
class AlarmThresholds:
    """Alarm thresholds and evaluation settings. Every value is per ``period_seconds`` datapoint."""

    period_seconds: int = 60
    """Alarm period (seconds; 10, 30 or a multiple of 60). Default: 60."""
    evaluation_periods: int = 5
    """Periods looked at per evaluation. Default: 5."""
    datapoints_to_alarm: int = 3
    """Breaching datapoints within ``evaluation_periods`` that fire the alarm (M of N, so one
    spike does not page). Default: 3."""

    # RDS instances (AWS/RDS, DBInstanceIdentifier)
    rds_cpu_percent: float = 80.0
    """RDS CPUUtilization above this (%). Default: 80."""
    rds_freeable_memory_bytes: float = 1024**3
    """RDS FreeableMemory below this (bytes). Default: 1 GiB."""
    rds_free_storage_bytes: float = 20 * 1024**3
    """RDS FreeStorageSpace below this (bytes); storage autoscaling should grow first. Default: 20 GiB."""
    rds_database_connections: float = 1000.0
    """RDS DatabaseConnections above this. Default: 1000."""
    rds_read_iops: float = 10000.0
    """RDS ReadIOPS above this (set ~80% of provisioned IOPS). Default: 10000."""
    rds_write_iops: float = 10000.0
    """RDS WriteIOPS above this (set ~80% of provisioned IOPS). Default: 10000."""
    rds_read_latency_seconds: float = 0.02
    """RDS ReadLatency above this (seconds). Default: 0.02 (20 ms)."""
    rds_write_latency_seconds: float = 0.02
    """RDS WriteLatency above this (seconds). Default: 0.02 (20 ms)."""
    rds_replica_lag_seconds: float = 30.0
    """RDS ReplicaLag above this (seconds), replicas only. Default: 30."""

    # RDS Proxy (AWS/RDS, ProxyName)
    proxy_client_connections: float = 5000.0
    """Proxy ClientConnections above this. Default: 5000."""
    proxy_database_connections: float = 900.0
    """Proxy DatabaseConnections above this. Default: 900."""
    proxy_pinned_connections: float = 50.0
    """Proxy DatabaseConnectionsCurrentlySessionPinned above this (pinning defeats pooling). Default: 50."""
    proxy_query_requests: float = 1_200_000.0
    """Proxy QueryRequests (Sum per period) above this; 1.2M/min = 20k queries/s. Default: 1200000."""
    proxy_max_connections_allowed_min: float = 100.0
    """Proxy MaxDatabaseConnectionsAllowed *below* this (pool capacity collapsed, e.g. after a
    failover to a smaller class or a max_connections change). Default: 100."""
    proxy_pool_utilization_percent: float = 90.0
    """Proxy 100 * DatabaseConnections / MaxDatabaseConnectionsAllowed above this (%). Default: 90."""
    proxy_availability_percent: float = 99.0
    """Proxy AvailabilityPercentage (READ_WRITE target role) below this (%). Default: 99."""

    # ElastiCache (AWS/ElastiCache, CacheClusterId)
    cache_cpu_percent: float = 80.0
    """ElastiCache host CPUUtilization above this (%). Default: 80."""
    cache_engine_cpu_percent: float = 90.0
    """ElastiCache EngineCPUUtilization (the single Redis thread) above this (%). Default: 90."""
    cache_network_bytes_in: float = 4_000_000_000.0
    """ElastiCache NetworkBytesIn (Sum per period) above this. Default: 4e9 (~530 Mbit/s at 60 s)."""
    cache_network_bytes_out: float = 4_000_000_000.0
    """ElastiCache NetworkBytesOut (Sum per period) above this. Default: 4e9."""
    cache_hit_rate_percent: float = 80.0
    """Cache hit rate 100*CacheHits/(CacheHits+CacheMisses) below this (%). Default: 80."""
    cache_hit_rate_min_requests: float = 1000.0
    """The hit-rate alarm only evaluates periods with at least this many lookups, so a quiet
    night does not page. Default: 1000."""
    cache_evictions: float = 1000.0
    """ElastiCache Evictions (Sum per period) above this. Default: 1000."""
    cache_curr_connections: float = 10000.0
    """ElastiCache CurrConnections above this (the engine limit is 65000). Default: 10000."""
    cache_replication_lag_seconds: float = 10.0
    """ElastiCache ReplicationLag above this (seconds), reported by replica nodes. Default: 10."""

    def __post_init__(self) -> None:
        if self.period_seconds not in (10, 30) and (self.period_seconds < 60 or self.period_seconds % 60):
            raise ValueError(
                f"period_seconds {self.period_seconds} is invalid; allowed: 10, 30 or a multiple of 60"
            )
        if self.evaluation_periods < 1:
            raise ValueError(f"evaluation_periods {self.evaluation_periods} is invalid; allowed: >= 1")
        if not 1 <= self.datapoints_to_alarm <= self.evaluation_periods:
            raise ValueError(
                f"datapoints_to_alarm {self.datapoints_to_alarm} is invalid; allowed: 1..evaluation_periods "
                f"({self.evaluation_periods})"
            )
        for name in (
            "rds_cpu_percent",
            "cache_cpu_percent",
            "cache_engine_cpu_percent",
            "cache_hit_rate_percent",
            "proxy_availability_percent",
            "proxy_pool_utilization_percent",
        ):
            value = getattr(self, name)
            if not 0 < value <= 100:
                raise ValueError(f"{name} {value} is invalid; allowed: a percentage in (0, 100]")
        for name, value in vars(self).items():
            if isinstance(value, (int, float)) and value < 0:
                raise ValueError(f"{name} {value} is invalid; allowed: >= 0")


@dataclass(frozen=True, kw_only=True)
class AlarmSubscription:
    """One SNS subscription of the alarm topic."""

    protocol: Literal["email", "email-json", "https", "sqs", "lambda", "sms"]
    """SNS protocol. ``email`` subscriptions stay pending until the recipient confirms. Required."""
    endpoint: pulumi.Input[str]
    """Address, URL or ARN matching ``protocol``. Required."""

    def __post_init__(self) -> None:
        if self.protocol not in _SUBSCRIPTION_PROTOCOLS:
            raise ValueError(
                f"protocol {self.protocol!r} is invalid; allowed: {', '.join(_SUBSCRIPTION_PROTOCOLS)}"
            )
        if isinstance(self.endpoint, str):
            if not self.endpoint:
                raise ValueError("endpoint '' is invalid; allowed: a non-empty address, URL or ARN")
            if self.protocol == "https" and not self.endpoint.startswith("https://"):
                raise ValueError(
                    f"endpoint {self.endpoint!r} is invalid for protocol https; expected https://..."
                )
            if self.protocol in ("sqs", "lambda") and not self.endpoint.startswith("arn:"):
                raise ValueError(
                    f"endpoint {self.endpoint!r} is invalid for protocol {self.protocol}; expected an ARN"
                )


@dataclass(frozen=True, kw_only=True)
class ObservabilityLayerArgs:
    """Inputs of :class:`ObservabilityLayer`. Mapping keys are stable labels used in child names."""

    region: str
    """AWS region of this layer (dashboard widgets need it). Required."""
    kms_key_arn: pulumi.Input[str]
    """This region's CMK: SNS topic, log groups and the Firehose stream. Its key policy must let
    ``cloudwatch.amazonaws.com``, ``events.rds.amazonaws.com``, ``backup.amazonaws.com`` use it
    for the topic and ``logs.<region>.amazonaws.com`` for the log groups. Required."""
    subscriptions: Sequence[AlarmSubscription] = ()
    """Subscriptions of the alarm topic. Default: () (none)."""
    thresholds: AlarmThresholds = field(default_factory=AlarmThresholds)
    """Alarm thresholds. Default: AlarmThresholds() (see its documented defaults)."""
    db_instances: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Writable RDS instances (label -> DB instance identifier): host alarms and log groups.
    Default: {}."""
    db_replicas: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """RDS read replicas in this region (label -> identifier): host alarms, ReplicaLag alarm and
    log groups. Default: {}."""
    db_clusters: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Aurora clusters (label -> cluster identifier) for a ``db-cluster`` event subscription.
    Default: {}."""
    proxies: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """RDS Proxies (label -> proxy name). Default: {}."""
    proxy_target_group: str = "default"
    """Target group name used in the proxy AvailabilityPercentage dimension. Default: "default"."""
    cache_clusters: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """ElastiCache member cache clusters (label -> CacheClusterId, e.g. ``<group>-001``).
    Default: {}."""
    rds_event_categories: Sequence[str] = (
        "availability",
        "failover",
        "failure",
        "low storage",
        "maintenance",
        "notification",
        "recovery",
        "read replica",
    )
    """Categories of the ``db-instance`` event subscription. Default: availability, failover,
    failure, low storage, maintenance, notification, recovery, read replica."""
    rds_cluster_event_categories: Sequence[str] = (
        "failover",
        "failure",
        "maintenance",
        "notification",
        "global-failover",
    )
    """Categories of the ``db-cluster`` event subscription (only with ``db_clusters``).
    Default: failover, failure, maintenance, notification, global-failover."""
    rds_log_exports: Sequence[str] = ("postgresql", "upgrade")
    """RDS log types exported to CloudWatch Logs; one log group per instance and type is created
    with the exact name RDS uses. Must match the instances' ``enabled_cloudwatch_logs_exports``.
    Default: ("postgresql", "upgrade")."""
    log_retention_days: int = 365
    """Retention of the RDS log groups (a CloudWatch Logs allowed value). Default: 365."""
    audit_bucket_arn: pulumi.Input[str] | None = None
    """Audit bucket (:class:`components.audit.AuditTrail` ``bucket_arn``) receiving the
    ``postgresql`` logs via Firehose; None skips Firehose and subscription filters. Default: None."""
    audit_bucket_kms_key_arn: pulumi.Input[str] | None = None
    """CMK of the audit bucket (Firehose encrypts objects with it). Required with
    ``audit_bucket_arn``. Default: None."""
    audit_log_prefix: str = "rds-logs/"
    """Object prefix of the delivered logs (Firehose appends ``region/`` and a date path).
    Default: "rds-logs/"."""
    create_dashboard: bool = True
    """Create the CloudWatch dashboard. Default: True."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every taggable child. Default: {}."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", self.region):
            raise ValueError(f"region {self.region!r} is invalid; expected an AWS region such as 'us-east-1'")
        if self.log_retention_days not in _LOG_RETENTION_DAYS:
            raise ValueError(
                f"log_retention_days {self.log_retention_days} is invalid; allowed: "
                f"{', '.join(str(d) for d in _LOG_RETENTION_DAYS)}"
            )
        for export in self.rds_log_exports:
            if export not in _RDS_LOG_EXPORTS:
                raise ValueError(
                    f"rds_log_exports entry {export!r} is invalid; allowed: {', '.join(_RDS_LOG_EXPORTS)}"
                )
        for cat in self.rds_event_categories:
            if cat not in _DB_INSTANCE_EVENT_CATEGORIES:
                raise ValueError(
                    f"rds_event_categories entry {cat!r} is invalid; "
                    f"allowed: {', '.join(_DB_INSTANCE_EVENT_CATEGORIES)}"
                )
        for cat in self.rds_cluster_event_categories:
            if cat not in _DB_CLUSTER_EVENT_CATEGORIES:
                raise ValueError(
                    f"rds_cluster_event_categories entry {cat!r} is invalid; allowed: "
                    f"{', '.join(_DB_CLUSTER_EVENT_CATEGORIES)}"
                )
        if (self.audit_bucket_arn is None) != (self.audit_bucket_kms_key_arn is None):
            raise ValueError(
                "audit_bucket_arn and audit_bucket_kms_key_arn must be given together "
                f"(audit_bucket_arn set: {self.audit_bucket_arn is not None}, "
                f"audit_bucket_kms_key_arn set: {self.audit_bucket_kms_key_arn is not None})"
            )
        if not re.fullmatch(r"([A-Za-z0-9_.!*'()-]+/)*", self.audit_log_prefix):
            raise ValueError(
                f"audit_log_prefix {self.audit_log_prefix!r} is invalid; expected path segments ending in '/'"
            )
        seen: dict[str, str] = {}
        for group, mapping in (
            ("db_instances", self.db_instances),
            ("db_replicas", self.db_replicas),
            ("db_clusters", self.db_clusters),
            ("proxies", self.proxies),
            ("cache_clusters", self.cache_clusters),
        ):
            for label in mapping:
                if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,47}", label):
                    raise ValueError(
                        f"{group} label {label!r} is invalid; "
                        "allowed: 1-48 lowercase letters, digits, hyphens"
                    )
                if group in ("db_instances", "db_replicas"):
                    if label in seen:
                        raise ValueError(
                            f"{group} label {label!r} is also used in {seen[label]}; labels must be unique"
                        )
                    seen[label] = group


class ObservabilityLayer(pulumi.ComponentResource):
    """Alarm topic, alarms, RDS events, dashboard and log retention/delivery for one region."""

    topic_arn: pulumi.Output[str]
    """ARN of the alarm SNS topic."""
    alarm_names: list[pulumi.Output[str]]
    """Names of every CloudWatch alarm created."""
    dashboard_name: pulumi.Output[str | None]
    """Name of the CloudWatch dashboard (None when disabled)."""
    log_group_names: list[pulumi.Output[str]]
    """Names of the RDS log groups created."""
    firehose_stream_arn: pulumi.Output[str | None]
    """ARN of the Firehose delivery stream to the audit bucket (None without an audit bucket)."""

    def __init__(
        self, name: str, args: ObservabilityLayerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("commerce:db:ObservabilityLayer", name, None, opts)
        raise NotImplementedError("ObservabilityLayer body lands in the next commit")
