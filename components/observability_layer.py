"""ObservabilityLayer: alarms, events, dashboard and log plumbing for one region's database tier.

One component per region. It owns:

- an SNS topic encrypted with the region's CMK, its subscriptions and a topic policy that lets
  CloudWatch alarms, RDS event notifications and AWS Backup publish (scoped to this account);
- CloudWatch metric alarms (thresholds in :class:`AlarmThresholds`) for every RDS instance and
  replica, every RDS Proxy and every ElastiCache member cluster it is given, with alarm and OK
  actions to the topic, plus a cache hit-rate alarm built with metric math;
- RDS event subscriptions to the topic, and an EventBridge rule for ElastiCache service events;
- a CloudWatch dashboard built from the same metric list as the alarms;
- when an audit bucket is given, a subscription filter on each RDS ``postgresql`` log group into
  a Kinesis Data Firehose stream that writes to it. The log groups themselves are created by
  :class:`commerce_db_components.rds_log_groups.RdsLogGroups` *before* the DB (RDS would otherwise create
  them itself, never-expiring and without the CMK).

All id inputs may be empty mappings (e.g. a replica-only region has no proxy).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from . import _alarms

_SUBSCRIPTION_PROTOCOLS = ("email", "email-json", "https", "sqs", "lambda", "sms")
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


_CACHE_EVENT_TYPES = (
    "Cache Created",
    "Cache Creation Failed",
    "Cache Deleted",
    "Cache Updated",
    "Cache Update Failed",
    "Cache Limit Approaching",
    "Snapshot Created",
    "Snapshot Creation Failed",
    "Snapshot Export Failed",
    "Snapshot Copy Failed",
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
    ``cloudwatch.amazonaws.com``, ``events.rds.amazonaws.com``, ``backup.amazonaws.com`` and (for
    the ElastiCache event rule) ``events.amazonaws.com`` use it (``kms:GenerateDataKey*``,
    ``kms:Decrypt``) for the encrypted topic. Required."""
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
    cache_event_types: Sequence[str] = (
        "Cache Creation Failed",
        "Cache Update Failed",
        "Cache Limit Approaching",
        "Snapshot Creation Failed",
        "Snapshot Export Failed",
        "Snapshot Copy Failed",
    )
    """ElastiCache EventBridge ``detail-type``s routed to the topic by an EventBridge rule (created
    only with ``cache_clusters``; () disables it). The CMK's key policy must also let
    ``events.amazonaws.com`` use the key. Default: the failure and limit events."""
    postgres_log_groups: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Label -> name of an RDS ``postgresql`` log group to ship to the audit bucket, usually
    :attr:`commerce_db_components.rds_log_groups.RdsLogGroups.postgresql_log_group_names` (the groups are
    created there, before the DB, so that RDS does not create them unmanaged). Default: {}."""
    audit_bucket_arn: pulumi.Input[str] | None = None
    """Audit bucket (:class:`commerce_db_components.audit.AuditTrail` ``bucket_arn``) receiving the
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
        for event in self.cache_event_types:
            if event not in _CACHE_EVENT_TYPES:
                raise ValueError(
                    f"cache_event_types entry {event!r} is invalid; allowed: {', '.join(_CACHE_EVENT_TYPES)}"
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
            ("postgres_log_groups", self.postgres_log_groups),
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
    firehose_stream_arn: pulumi.Output[str | None]
    """ARN of the Firehose delivery stream to the audit bucket (None without an audit bucket)."""

    def __init__(
        self, name: str, args: ObservabilityLayerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("commerce:db:ObservabilityLayer", name, None, opts)
        self._name = name
        self._args = args
        child = pulumi.ResourceOptions(parent=self)
        self._tags = {**args.tags, "component": "ObservabilityLayer"}
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id

        topic = aws.sns.Topic(
            f"{name}-alarms", kms_master_key_id=args.kms_key_arn, tags=self._tags, opts=child
        )
        self.topic_arn = topic.arn
        aws.sns.TopicPolicy(
            f"{name}-alarms",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, account_id).apply(lambda a: _topic_policy(a[0], a[1])),
            opts=child,
        )
        for i, sub in enumerate(args.subscriptions, start=1):
            aws.sns.TopicSubscription(
                f"{name}-alarms-{sub.protocol}-{i}",
                topic=topic.arn,
                protocol=sub.protocol,
                endpoint=sub.endpoint,
                opts=child,
            )

        self._alarms: list[aws.cloudwatch.MetricAlarm] = []
        instances = {**args.db_instances, **args.db_replicas}
        for label, db_id in instances.items():
            for spec in _alarms.RDS_INSTANCE_METRICS:
                self._metric_alarm(f"rds-{label}", spec, db_id)
        for label, db_id in args.db_replicas.items():
            for spec in _alarms.RDS_REPLICA_METRICS:
                self._metric_alarm(f"rds-{label}", spec, db_id)
        for label, proxy_name in args.proxies.items():
            for spec in _alarms.PROXY_METRICS:
                self._metric_alarm(f"proxy-{label}", spec, proxy_name)
            self._proxy_pool_alarm(label, proxy_name)
        for label, cluster_id in args.cache_clusters.items():
            for spec in _alarms.CACHE_METRICS:
                self._metric_alarm(f"cache-{label}", spec, cluster_id)
        if args.cache_clusters:
            self._hit_rate_alarm(list(args.cache_clusters.values()))
        self.alarm_names = [a.name for a in self._alarms]

        if instances:
            aws.rds.EventSubscription(
                f"{name}-db-instance-events",
                sns_topic=topic.arn,
                source_type="db-instance",
                source_ids=list(instances.values()),
                event_categories=list(args.rds_event_categories),
                enabled=True,
                tags=self._tags,
                opts=child,
            )
        if args.db_clusters:
            aws.rds.EventSubscription(
                f"{name}-db-cluster-events",
                sns_topic=topic.arn,
                source_type="db-cluster",
                source_ids=list(args.db_clusters.values()),
                event_categories=list(args.rds_cluster_event_categories),
                enabled=True,
                tags=self._tags,
                opts=child,
            )

        if args.cache_clusters and args.cache_event_types:
            # ElastiCache has no RDS-style event subscription; its service events go to EventBridge.
            rule = aws.cloudwatch.EventRule(
                f"{name}-cache-events",
                description="ElastiCache failure and limit events to the alarm topic",
                event_pattern=json.dumps(
                    {"source": ["aws.elasticache"], "detail-type": list(args.cache_event_types)}
                ),
                tags=self._tags,
                opts=child,
            )
            aws.cloudwatch.EventTarget(f"{name}-cache-events", rule=rule.name, arn=topic.arn, opts=child)

        self.dashboard_name = pulumi.Output.from_input(None)
        if args.create_dashboard:
            dashboard = aws.cloudwatch.Dashboard(
                f"{name}-dashboard",
                dashboard_name=f"{name}-db-tier",
                dashboard_body=self._dashboard_body(instances),
                opts=child,
            )
            self.dashboard_name = dashboard.dashboard_name

        self.firehose_stream_arn = pulumi.Output.from_input(None)
        bucket, bucket_key = args.audit_bucket_arn, args.audit_bucket_kms_key_arn
        if bucket is not None and bucket_key is not None and args.postgres_log_groups:
            self.firehose_stream_arn = self._deliver_to_audit_bucket(
                args.postgres_log_groups, bucket, bucket_key, account_id
            )

        self.register_outputs(
            {
                "topic_arn": self.topic_arn,
                "alarm_names": self.alarm_names,
                "dashboard_name": self.dashboard_name,
                "firehose_stream_arn": self.firehose_stream_arn,
            }
        )

    # -- alarms -------------------------------------------------------------------------------

    def _alarm(self, name: str, **alarm_args: Any) -> None:
        """Register alarm ``<component>-name`` with the shared evaluation window, SNS actions and tags."""
        t = self._args.thresholds
        alarm = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{name}",
            **alarm_args,
            evaluation_periods=t.evaluation_periods,
            datapoints_to_alarm=t.datapoints_to_alarm,
            alarm_actions=[self.topic_arn],
            ok_actions=[self.topic_arn],
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._alarms.append(alarm)

    def _metric_alarm(self, prefix: str, spec: _alarms.MetricSpec, resource_id: pulumi.Input[str]) -> None:
        t = self._args.thresholds
        threshold = float(getattr(t, spec.threshold_field))
        self._alarm(
            f"{prefix}-{spec.key}",
            alarm_description=(
                f"{spec.metric_name} {spec.description}: {spec.statistic} "
                f"{'>' if spec.comparison.startswith('Greater') else '<'} {threshold:g}. "
                f"Missing data treated as {spec.why_missing}."
            ),
            namespace=spec.namespace,
            metric_name=spec.metric_name,
            dimensions=pulumi.Output.from_input(resource_id).apply(
                lambda rid: spec.dimensions(rid, target_group=self._args.proxy_target_group)
            ),
            statistic=spec.statistic,
            period=spec.fixed_period or t.period_seconds,
            comparison_operator=spec.comparison,
            threshold=threshold,
            treat_missing_data=spec.treat_missing_data,
        )

    def _proxy_pool_alarm(self, label: str, proxy_name: pulumi.Input[str]) -> None:
        t = self._args.thresholds
        dims = {_alarms.PROXY_DIMENSION: proxy_name}
        self._alarm(
            f"proxy-{label}-pool-utilization",
            alarm_description=(
                "RDS Proxy pool utilization 100*DatabaseConnections/MaxDatabaseConnectionsAllowed "
                f"> {t.proxy_pool_utilization_percent:g}%: clients will soon wait for a connection. "
                "Missing data treated as notBreaching: an idle proxy publishes nothing."
            ),
            metric_queries=[
                _expression_query("utilization", "100*used/allowed", "pool utilization %"),
                _summed_metric_query("used", _alarms.RDS_NAMESPACE, "DatabaseConnections", dims, 60),
                _summed_metric_query(
                    "allowed", _alarms.RDS_NAMESPACE, "MaxDatabaseConnectionsAllowed", dims, 60
                ),
            ],
            comparison_operator="GreaterThanThreshold",
            threshold=t.proxy_pool_utilization_percent,
            treat_missing_data="notBreaching",
        )

    def _hit_rate_alarm(self, members: list[pulumi.Input[str]]) -> None:
        t = self._args.thresholds
        hit_ids = [f"h{i}" for i in range(len(members))]
        miss_ids = [f"m{i}" for i in range(len(members))]
        expression = _alarms.hit_rate_expression(hit_ids, miss_ids, t.cache_hit_rate_min_requests)
        queries = [_expression_query("hitrate", expression, "cache hit rate %")]
        for i, member in enumerate(members):
            for qid, metric in ((hit_ids[i], "CacheHits"), (miss_ids[i], "CacheMisses")):
                dims = {_alarms.CACHE_DIMENSION: member}
                queries.append(
                    _summed_metric_query(qid, _alarms.CACHE_NAMESPACE, metric, dims, t.period_seconds)
                )
        self._alarm(
            "cache-hit-rate",
            alarm_description=(
                f"Cache hit rate 100*CacheHits/(CacheHits+CacheMisses) over all members "
                f"< {t.cache_hit_rate_percent:g}% (periods with >= {t.cache_hit_rate_min_requests:g} "
                f"lookups). Missing data treated as {_alarms.HIT_RATE_WHY}."
            ),
            metric_queries=queries,
            comparison_operator="LessThanThreshold",
            threshold=t.cache_hit_rate_percent,
            treat_missing_data="notBreaching",
        )

    def _dashboard_body(self, instances: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[str]:
        args = self._args
        groups: dict[str, Mapping[str, pulumi.Input[str]]] = {
            "instances": instances,
            "replicas": args.db_replicas,
            "proxies": args.proxies,
            "cache": args.cache_clusters,
        }
        flat = {f"{g}|{label}": rid for g, mapping in groups.items() for label, rid in mapping.items()}
        # Output.all() without arguments resolves to a list, not a dict.
        resolved = pulumi.Output.all(**flat) if flat else pulumi.Output.from_input({})

        def build(ids: dict[str, str]) -> str:
            by_group: dict[str, dict[str, str]] = {g: {} for g in groups}
            for key, rid in ids.items():
                g, label = key.split("|", 1)
                by_group[g][label] = rid
            # Keep the caller's order (Output.all over kwargs may reorder).
            ordered = {g: {label: by_group[g][label] for label in groups[g]} for g in groups}
            return _alarms.dashboard_body(
                region=args.region,
                sections=[
                    ("RDS instances", _alarms.RDS_INSTANCE_METRICS, ordered["instances"]),
                    ("RDS replicas", _alarms.RDS_REPLICA_METRICS, ordered["replicas"]),
                    ("RDS Proxy", _alarms.PROXY_METRICS, ordered["proxies"]),
                    ("ElastiCache", _alarms.CACHE_METRICS, ordered["cache"]),
                ],
                thresholds=args.thresholds,
                target_group=args.proxy_target_group,
                hit_rate_members=list(ordered["cache"].values()),
            )

        return resolved.apply(build)

    # -- logs to the audit bucket -------------------------------------------------------------

    def _deliver_to_audit_bucket(
        self,
        groups: Mapping[str, pulumi.Input[str]],
        bucket_arn: pulumi.Input[str],
        bucket_key_arn: pulumi.Input[str],
        account_id: pulumi.Output[str],
    ) -> pulumi.Output[str]:
        name, args = self._name, self._args
        child = pulumi.ResourceOptions(parent=self)
        prefix = f"{args.audit_log_prefix}{args.region}/"

        firehose_role = aws.iam.Role(
            f"{name}-firehose",
            description="Firehose delivery of RDS PostgreSQL logs to the audit bucket",
            assume_role_policy=account_id.apply(
                lambda acct: _assume_role_policy("firehose.amazonaws.com", acct)
            ),
            tags=self._tags,
            opts=child,
        )
        # Only this bucket (and only under the prefix for writes), only its CMK for S3 use.
        firehose_policy = aws.iam.RolePolicy(
            f"{name}-firehose",
            role=firehose_role.id,
            policy=pulumi.Output.all(bucket_arn, bucket_key_arn).apply(
                lambda a: _firehose_s3_policy(a[0], a[1], prefix)
            ),
            opts=child,
        )
        stream = aws.kinesis.FirehoseDeliveryStream(
            f"{name}-rds-logs",
            destination="extended_s3",
            server_side_encryption=aws.kinesis.FirehoseDeliveryStreamServerSideEncryptionArgs(
                enabled=True, key_type="CUSTOMER_MANAGED_CMK", key_arn=args.kms_key_arn
            ),
            extended_s3_configuration=aws.kinesis.FirehoseDeliveryStreamExtendedS3ConfigurationArgs(
                role_arn=firehose_role.arn,
                bucket_arn=bucket_arn,
                kms_key_arn=bucket_key_arn,
                prefix=prefix,
                error_output_prefix=f"{args.audit_log_prefix}errors/{args.region}/",
                buffering_size=5,
                buffering_interval=300,
                # CloudWatch Logs already gzips every record it hands to Firehose.
                compression_format="UNCOMPRESSED",
            ),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[firehose_policy]),
        )

        logs_role = aws.iam.Role(
            f"{name}-logs-to-firehose",
            description="CloudWatch Logs subscription filters into the RDS log Firehose stream",
            assume_role_policy=account_id.apply(
                lambda acct: _assume_role_policy(
                    "logs.amazonaws.com", acct, source_arn=f"arn:aws:logs:{args.region}:{acct}:*"
                )
            ),
            tags=self._tags,
            opts=child,
        )
        logs_policy = aws.iam.RolePolicy(
            f"{name}-logs-to-firehose",
            role=logs_role.id,
            policy=stream.arn.apply(_put_record_policy),
            opts=child,
        )
        for label, group in groups.items():
            # CloudWatch Logs test-writes to the stream on creation, so the role policy must exist.
            aws.cloudwatch.LogSubscriptionFilter(
                f"{name}-{label}-postgresql-to-audit",
                log_group=group,
                filter_pattern="",
                destination_arn=stream.arn,
                role_arn=logs_role.arn,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[logs_policy]),
            )
        return stream.arn


def _expression_query(qid: str, expression: str, label: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    """The metric-math query whose result the alarm evaluates."""
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=qid, expression=expression, label=label, return_data=True
    )


def _summed_metric_query(
    qid: str, namespace: str, metric: str, dimensions: Mapping[str, pulumi.Input[str]], period: int
) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    """A hidden input of a metric-math alarm: ``metric``'s Sum over ``period`` seconds."""
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=qid,
        return_data=False,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace=namespace, metric_name=metric, dimensions=dimensions, stat="Sum", period=period
        ),
    )


def _topic_policy(topic_arn: str, account_id: str) -> str:
    """Let CloudWatch alarms, RDS events, AWS Backup and EventBridge rules publish, only for this account."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AccountAdmin",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": [
                "SNS:GetTopicAttributes",
                "SNS:SetTopicAttributes",
                "SNS:AddPermission",
                "SNS:RemovePermission",
                "SNS:DeleteTopic",
                "SNS:Subscribe",
                "SNS:ListSubscriptionsByTopic",
                "SNS:Publish",
            ],
            "Resource": topic_arn,
        }
    ]
    for sid, service in (
        ("CloudWatchAlarms", "cloudwatch.amazonaws.com"),
        ("RdsEvents", "events.rds.amazonaws.com"),
        ("BackupNotifications", "backup.amazonaws.com"),
    ):
        statements.append(
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "SNS:Publish",
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        )
    statements.append(
        {
            "Sid": "EventBridgeRules",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:events:*:{account_id}:rule/*"}},
        }
    )
    statements.append(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "SNS:Publish",
            "Resource": topic_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _assume_role_policy(service: str, account_id: str, *, source_arn: str | None = None) -> str:
    condition: dict[str, Any] = {"StringEquals": {"aws:SourceAccount": account_id}}
    if source_arn:
        condition["ArnLike"] = {"aws:SourceArn": source_arn}
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                    "Condition": condition,
                }
            ],
        }
    )


def _firehose_s3_policy(bucket_arn: str, key_arn: str, prefix: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "Bucket",
                    "Effect": "Allow",
                    "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                    "Resource": bucket_arn,
                },
                {
                    "Sid": "Objects",
                    "Effect": "Allow",
                    "Action": ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
                    "Resource": f"{bucket_arn}/*",
                },
                {
                    "Sid": "BucketKey",
                    "Effect": "Allow",
                    "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                    "Resource": key_arn,
                    # With S3 Bucket Keys the encryption context is the bucket ARN, else the object's.
                    "Condition": {
                        "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket_arn, f"{bucket_arn}/*"]}
                    },
                },
            ],
        }
    )


def _put_record_policy(stream_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["firehose:PutRecord", "firehose:PutRecordBatch"],
                    "Resource": stream_arn,
                }
            ],
        }
    )
