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
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from . import _alarms
from .validation import ArgumentError, check_region, coerce_args, stack_scoped

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

    rpo_seconds: float = 60.0
    """Recovery point objective of cross-region replication (seconds): the page "replication
    behind RPO" fires when the primary's most lagging replica is further behind. Default: 60."""

    # RDS instances (AWS/RDS, DBInstanceIdentifier). Defaults suit a db.r7g.large; RegionStack
    # derives the sized ones from the instance class and storage (_alarms.derive_thresholds).
    rds_cpu_percent: float = 80.0
    """RDS CPUUtilization above this (%). Default: 80."""
    rds_freeable_memory_bytes: float = 0.05 * 16 * 1024**3
    """RDS FreeableMemory below this (bytes). Default: 5% of 16 GiB."""
    rds_free_storage_bytes: float = 5 * 1024**3
    """RDS FreeStorageSpace below this (bytes). Default: 5 GiB (5% of 100 GiB)."""
    storage_hours_to_full: float = 12.0
    """Page when free storage, at the last hour's rate of decline, runs out within this many
    hours and is below ``rds_free_storage_bytes``. Default: 12."""
    rds_database_connections: float = 0.8 * 1802
    """RDS DatabaseConnections above this. Default: 80% of a db.r7g.large's default max_connections."""
    rds_iops: float = 0.8 * 3000
    """RDS ReadIOPS + WriteIOPS above this. Default: 80% of gp3's 3000 baseline."""
    rds_read_latency_seconds: float = 0.02
    """RDS ReadLatency above this (seconds). Default: 0.02 (20 ms)."""
    rds_write_latency_seconds: float = 0.02
    """RDS WriteLatency above this (seconds). Default: 0.02 (20 ms)."""
    rds_replica_lag_seconds: float = 360.0
    """RDS ReplicaLag above this (seconds), replicas only; above the 300 s an idle primary's
    heartbeat allows. Default: 360."""
    rds_xid_ticket: float = 500_000_000.0
    """MaximumUsedTransactionIDs above this: ticket (autovacuum freezes at 200 million by
    default, so this is vacuum falling behind). Default: 500 million."""
    rds_xid_page: float = 1_000_000_000.0
    """MaximumUsedTransactionIDs above this: page (PostgreSQL refuses writes near 2.1 billion;
    AWS advises acting at 1 billion). Default: 1 billion."""
    rds_slot_lag_bytes: float = 5 * 1024**3
    """OldestReplicationSlotLag above this (bytes of WAL kept for a lagging replica). Default: 5 GiB."""
    primary_heartbeat_seconds: float = 300.0
    """The longest a healthy primary goes without a commit its replicas replay (seconds). RDS for
    PostgreSQL writes a heartbeat every 300 s, so an idle primary's replicas report a ReplicaLag
    that climbs to ~300 s and drops back; lower it only when a job on the primary commits more
    often. It shapes the replica regions' pages: ``primary_silent_seconds`` is derived from it
    (heartbeat + 60 s) and ``behind-rpo`` must see the RPO exceeded for longer than one heartbeat
    interval. Default: 300."""
    replica_rpo_seconds: float = 70.0
    """A cross-region replica's ReplicaLag above this in every sample for longer than one heartbeat
    interval pages from *its* region (``behind-rpo``). Default: 70 (``rpo_seconds`` + 10 s: the
    first sample after an idle primary's heartbeat can land before the heartbeat is replayed, and
    the next one then reads 60 s plus that sub-second delay; a RegionStack derives it from the RPO)."""
    primary_silent_seconds: float = 360.0
    """A cross-region replica's ReplicaLag above this in one sample pages from *its* region: the
    primary region is silent. Default: 360 (the 300 s heartbeat + 60 s)."""

    # RDS Proxy (AWS/RDS, ProxyName)
    proxy_client_connections: float = 5000.0
    """Proxy ClientConnections above this. Default: 5000."""
    proxy_database_connections: float = 0.8 * 0.9 * 1802
    """Proxy DatabaseConnections above this. Default: 80% of a 90% pool of 1802."""
    proxy_pinned_connections: float = 50.0
    """Proxy DatabaseConnectionsCurrentlySessionPinned above this (pinning defeats pooling). Default: 50."""
    proxy_max_connections_allowed_min: float = 100.0
    """Proxy MaxDatabaseConnectionsAllowed *below* this (pool capacity collapsed, e.g. after a
    failover to a smaller class or a max_connections change). Default: 100."""
    proxy_pool_utilization_percent: float = 90.0
    """Proxy 100 * DatabaseConnections / MaxDatabaseConnectionsAllowed above this (%). Default: 90."""
    proxy_availability_percent: float = 99.0
    """Proxy AvailabilityPercentage (READ_WRITE target role) below this (%). Default: 99."""

    # ElastiCache (AWS/ElastiCache, over a replication group's member nodes)
    cache_engine_cpu_percent: float = 90.0
    """Busiest node's EngineCPUUtilization (the single Redis thread) above this (%). Default: 90."""
    cache_memory_percent: float = 90.0
    """Busiest node's DatabaseMemoryUsagePercentage above this (%). Default: 90."""
    cache_hit_rate_percent: float = 80.0
    """Cache hit rate 100*CacheHits/(CacheHits+CacheMisses) below this (%). Default: 80."""
    cache_hit_rate_min_requests: float = 1000.0
    """The hit-rate alarm only evaluates periods with at least this many lookups, so a quiet
    night does not page. Default: 1000."""
    cache_evictions: float = 1000.0
    """ElastiCache Evictions (Sum per period, all members) above this. Default: 1000."""
    cache_curr_connections: float = 52_000.0
    """Busiest node's CurrConnections above this: 80% of the 65,000 limit. Default: 52000."""
    cache_replication_lag_seconds: float = 10.0
    """In-region ReplicationLag above this (seconds), reported by replica nodes. Default: 10."""
    cache_global_lag_seconds: float = 60.0
    """GlobalDatastoreReplicationLag above this (seconds), in secondary regions. Default: 60."""

    def __post_init__(self) -> None:
        if self.period_seconds not in (10, 30) and (self.period_seconds < 60 or self.period_seconds % 60):
            raise ValueError(
                f"period_seconds {self.period_seconds} is invalid; allowed: 10, 30 or a multiple of 60"
            )
        if self.primary_heartbeat_seconds <= 0:
            raise ValueError(
                f"primary_heartbeat_seconds {self.primary_heartbeat_seconds} is invalid; allowed: > 0"
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
            "cache_memory_percent",
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

    def window(self, kind: _alarms.Window) -> tuple[int, int]:
        """(evaluation periods, datapoints to alarm) of an alarm with window ``kind``."""
        if kind == "once":
            return (1, 1)
        if kind == "outlast_heartbeat":
            n = math.ceil(self.primary_heartbeat_seconds / self.period_seconds) + 1
            return (n, n)
        return (self.evaluation_periods, self.datapoints_to_alarm)


@dataclass(frozen=True, kw_only=True)
class AlarmSubscription:
    """One SNS subscription of the alarm topic."""

    protocol: Literal["email", "email-json", "https", "sqs", "lambda", "sms"]
    """SNS protocol. ``email`` subscriptions stay pending until the recipient confirms. Required."""
    endpoint: pulumi.Input[str]
    """Address, URL or ARN matching ``protocol``. Required."""
    auto_confirms: bool = False
    """The endpoint confirms the subscription itself (PagerDuty, Opsgenie): Pulumi then waits for
    the confirmation instead of leaving it pending. Default: False."""

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

    kms_key_arn: pulumi.Input[str]
    """This region's CMK: SNS topic, log groups and the Firehose stream. Its key policy must let
    ``cloudwatch.amazonaws.com``, ``events.rds.amazonaws.com``, ``backup.amazonaws.com`` and (for
    the ElastiCache event rule) ``events.amazonaws.com`` use it (``kms:GenerateDataKey*``,
    ``kms:Decrypt``) for the encrypted topic. Required."""
    region: str | None = None
    """AWS region of this layer (dashboard widgets, log delivery prefixes). None takes the
    provider's. Default: None."""
    subscriptions: Sequence[AlarmSubscription] = ()
    """Subscriptions of the *ticket* topic (causes: look in working hours; ALARM only).
    Default: () (none)."""
    alarm_topic_arn: pulumi.Input[str] | None = None
    """Bring your own *ticket* topic (e.g. a central ops topic in this region): no topic, topic
    policy or subscriptions are created for tickets. Its policy must let
    ``cloudwatch.amazonaws.com``, ``events.rds.amazonaws.com`` and ``events.amazonaws.com`` publish
    (and its CMK, if any, let them use it). Default: None (``<name>-alarms``)."""
    page_topic_arn: pulumi.Input[str] | None = None
    """Bring your own *page* topic (the pager's), with the same requirements. Default: None
    (``<name>-page``)."""
    page_subscriptions: Sequence[AlarmSubscription] = ()
    """Subscriptions of the *page* topic (symptoms: wake someone; ALARM and OK), e.g. the pager's
    https endpoint. Default: () (none)."""
    takes_writes: bool = True
    """This region takes writes (the primary). A region that does not (a replica region) gets no
    cache memory/eviction/in-region-lag alarms but the Global Datastore lag alarm. Default: True."""
    watch_primary: bool = False
    """Page from this region when its cross-region replicas hear nothing from the primary region
    (``primary-silent``) or stay further behind than the RPO (``behind-rpo``): the watchers outside
    the primary region, paging through this region's own page topic. Default: False."""
    thresholds: AlarmThresholds = field(default_factory=AlarmThresholds)
    """Alarm thresholds. Default: AlarmThresholds() (see its documented defaults)."""
    watch: Sequence[Any] = ()
    """Components to watch, as they are: :class:`~commerce_db_components.postgres_cluster.PostgresCluster`
    (RDS: ``primary`` and ``replica-N``; Aurora: ``writer``, ``reader-N`` and ``cluster``; its
    ``postgresql`` log groups when it created them), ``CrossRegionReplicas`` (``xr-replica-N``),
    ``AuroraSecondaryCluster`` (``cluster``, ``reader-N``), ``ProxyLayer`` (``writer``) and
    ``CacheLayer`` (``node-N``, one per member). They fill the label maps below (with these
    labels), so none has to be built by hand; explicit map entries are added to theirs. Two
    components giving the same label are refused. Default: () (only the maps)."""
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
    dashboard_name: str | None = None
    """Dashboard name (unique per account). None: ``<name>-<stack>-db-tier``, so two stacks of one
    program never share one. Default: None."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags on every taggable child. Default: {}."""

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "thresholds", coerce_args(self.thresholds, AlarmThresholds, field="thresholds")
        )
        if self.watch:
            for group, labels in watched_labels(self.watch).items():
                mine = dict(getattr(self, group))
                for label, value in labels.items():
                    if label in mine and mine[label] is value:
                        continue  # already expanded (dataclasses.replace runs this again)
                    if label in mine:
                        raise ArgumentError(
                            "watch", label,
                            f"two sources give {group} label {label!r}; allowed: one component of a "
                            "kind per layer, or distinct labels in the explicit maps",
                        )  # fmt: skip
                    mine[label] = value
                object.__setattr__(self, group, mine)
        if self.region is not None:
            check_region("region", self.region)
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
        for topic, subs, sub_field in (
            (self.alarm_topic_arn, self.subscriptions, "subscriptions"),
            (self.page_topic_arn, self.page_subscriptions, "page_subscriptions"),
        ):
            if topic is not None and subs:
                raise ArgumentError(
                    sub_field, [sub.protocol for sub in subs],
                    "allowed: () with your own topic (subscribe to it where it is managed)",
                )  # fmt: skip
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


def watched_labels(components: Sequence[Any]) -> dict[str, dict[str, pulumi.Input[str]]]:
    """The label maps (``db_instances``, ``db_replicas``, ``db_clusters``, ``proxies``,
    ``cache_clusters``, ``postgres_log_groups``) of ``components``, with the labels the project's
    stacks use, so a layer built from ``watch`` names its alarms as one built from the maps."""
    from .cache_layer import CacheLayer
    from .postgres_cluster import AuroraSecondaryCluster, CrossRegionReplicas, PostgresCluster
    from .proxy_layer import ProxyLayer

    out: dict[str, dict[str, pulumi.Input[str]]] = {}

    def add(group: str, labels: Mapping[str, pulumi.Input[str]]) -> None:
        mine = out.setdefault(group, {})
        for label, value in labels.items():
            if label in mine:
                raise ArgumentError(
                    "watch", label, f"two components give {group} label {label!r}; allowed: one "
                    "component of a kind per layer (use the explicit maps for more)",
                )  # fmt: skip
            mine[label] = value

    for c in components:
        if isinstance(c, PostgresCluster):
            if c.is_aurora:
                add("db_instances", {"writer": c.instances[0].identifier})
                add("db_instances", {f"reader-{i + 1}": r.identifier for i, r in enumerate(c.replicas)})
                add("db_clusters", {"cluster": c.primary_identifier})
            else:
                add("db_instances", {"primary": c.primary_identifier})
                add("db_replicas", {f"replica-{i + 1}": r.identifier for i, r in enumerate(c.replicas)})
            add("postgres_log_groups", c.postgresql_log_group_names)
        elif isinstance(c, CrossRegionReplicas):
            add("db_replicas", {f"xr-replica-{i + 1}": r.identifier for i, r in enumerate(c.replicas)})
        elif isinstance(c, AuroraSecondaryCluster):
            add("db_clusters", {"cluster": c.cluster_identifier})
            add("db_instances", {f"reader-{i + 1}": r.identifier for i, r in enumerate(c.readers)})
        elif isinstance(c, ProxyLayer):
            add("proxies", {"writer": c.proxy_name})
        elif isinstance(c, CacheLayer):
            add("cache_clusters", {f"node-{i + 1}": m for i, m in enumerate(c.member_cluster_ids)})
        else:
            raise TypeError(
                f"watch entry is a {type(c).__name__}; expected PostgresCluster, CrossRegionReplicas, "
                "AuroraSecondaryCluster, ProxyLayer or CacheLayer"
            )
    return out


class ObservabilityLayer(pulumi.ComponentResource):
    """Alarm topic, alarms, RDS events, dashboard and log retention/delivery for one region."""

    topic_arn: pulumi.Output[str]
    """ARN of the ticket topic (causes; ALARM notifications only)."""
    page_topic_arn: pulumi.Output[str]
    """ARN of the page topic (symptoms; ALARM and OK notifications)."""
    alarm_names: list[pulumi.Output[str]]
    """Names of every CloudWatch alarm created."""
    dashboard_name: pulumi.Output[str | None]
    """Name of the CloudWatch dashboard (None when disabled)."""
    firehose_stream_arn: pulumi.Output[str | None]
    """ARN of the Firehose delivery stream to the audit bucket (None without an audit bucket)."""

    def __init__(
        self, name: str, args: ObservabilityLayerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args = coerce_args(args, ObservabilityLayerArgs)
        super().__init__("commerce:db:ObservabilityLayer", name, None, opts)
        self._name = name
        self._region: pulumi.Output[str] = (
            pulumi.Output.from_input(args.region)
            if args.region is not None
            else aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        )
        self._args = args
        child = pulumi.ResourceOptions(parent=self)
        self._tags = {**args.tags, "component": "ObservabilityLayer"}
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id

        # Two topics: tickets (causes, ALARM only) and pages (symptoms, ALARM and OK); either may
        # be the team's own (a central ops topic), then none is created for it.
        self.topic_arn = self._topic(f"{name}-alarms", args.alarm_topic_arn, args.subscriptions, account_id)
        self.page_topic_arn = self._topic(
            f"{name}-page", args.page_topic_arn, args.page_subscriptions, account_id
        )
        self._topics = {"ticket": self.topic_arn, "page": self.page_topic_arn}

        self._alarms: list[aws.cloudwatch.MetricAlarm | aws.cloudwatch.CompositeAlarm] = []
        instances = {**args.db_instances, **args.db_replicas}
        for label, db_id in instances.items():
            specs = {
                s.key: self._metric_alarm(f"rds-{label}", s, db_id) for s in _alarms.RDS_INSTANCE_METRICS
            }
            self._iops_alarm(label, db_id)
            if label in args.db_instances and not args.db_clusters:
                for spec in _alarms.RDS_WRITER_METRICS:
                    self._metric_alarm(f"rds-{label}", spec, db_id)
                self._rpo_alarm(label, db_id)
                self._storage_page(label, db_id, specs["free-storage"])
        for label, db_id in args.db_replicas.items():
            for spec in _alarms.RDS_REPLICA_METRICS:
                self._metric_alarm(f"rds-{label}", spec, db_id)
            if args.watch_primary:
                for spec in _alarms.PRIMARY_WATCH_METRICS:
                    self._metric_alarm(f"rds-{label}", spec, db_id)
        for label, proxy_name in args.proxies.items():
            causes = [
                self._metric_alarm(f"proxy-{label}", spec, proxy_name) for spec in _alarms.PROXY_METRICS
            ]
            causes.append(self._proxy_pool_alarm(label, proxy_name))
            by_key = dict(zip([*(s.key for s in _alarms.PROXY_METRICS), "pool"], causes, strict=True))
            self._composite(
                f"proxy-{label}-writer-unavailable",
                [by_key["availability"], by_key["pool"], by_key["max-connections-allowed"]],
                "OR",
                "The writer path cannot serve: RDS Proxy READ_WRITE availability is low, its pool is "
                "exhausted, or its capacity to the database collapsed. Symptom: writes fail or wait.",
            )
        if args.cache_clusters:
            members = list(args.cache_clusters.values())
            for spec in _alarms.cache_specs(args.takes_writes):
                self._cache_group_alarm(spec, members)
            self._hit_rate_alarm(members)
        self.alarm_names = [
            a.alarm_name if isinstance(a, aws.cloudwatch.CompositeAlarm) else a.name for a in self._alarms
        ]

        if instances:
            aws.rds.EventSubscription(
                f"{name}-db-instance-events",
                sns_topic=self.topic_arn,
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
                sns_topic=self.topic_arn,
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
            aws.cloudwatch.EventTarget(f"{name}-cache-events", rule=rule.name, arn=self.topic_arn, opts=child)

        self.dashboard_name = pulumi.Output.from_input(None)
        if args.create_dashboard:
            dashboard = aws.cloudwatch.Dashboard(
                f"{name}-dashboard",
                dashboard_name=args.dashboard_name
                or stack_scoped(name, alphabet=r"A-Za-z0-9_-") + "-db-tier",
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
                "page_topic_arn": self.page_topic_arn,
                "alarm_names": self.alarm_names,
                "dashboard_name": self.dashboard_name,
                "firehose_stream_arn": self.firehose_stream_arn,
            }
        )

    # -- alarms -------------------------------------------------------------------------------

    def _topic(
        self,
        name: str,
        existing_arn: pulumi.Input[str] | None,
        subscriptions: Sequence[AlarmSubscription],
        account_id: pulumi.Output[str],
    ) -> pulumi.Output[str]:
        """The given topic's ARN, or a new KMS-encrypted topic with its policy and subscriptions."""
        if existing_arn is not None:
            return pulumi.Output.from_input(existing_arn)
        child = pulumi.ResourceOptions(parent=self)
        topic = aws.sns.Topic(name, kms_master_key_id=self._args.kms_key_arn, tags=self._tags, opts=child)
        aws.sns.TopicPolicy(
            name,
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, account_id).apply(lambda a: _topic_policy(a[0], a[1])),
            opts=child,
        )
        for i, sub in enumerate(subscriptions, start=1):
            confirms = {"endpoint_auto_confirms": True} if sub.auto_confirms else {}
            aws.sns.TopicSubscription(
                f"{name}-{sub.protocol}-{i}", topic=topic.arn, protocol=sub.protocol, endpoint=sub.endpoint,
                **confirms,
                # An https endpoint may carry a key (a pager's integration key): secret in the state.
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(additional_secret_outputs=["endpoint"])
                ) if sub.protocol == "https" else child,
            )  # fmt: skip
        return topic.arn

    def _actions(self, severity: str) -> dict[str, Any]:
        """Pages notify ALARM and OK (the pager resolves itself); tickets only ALARM."""
        arn = self._topics[severity]
        return {"alarm_actions": [arn], "ok_actions": [arn] if severity == "page" else []}

    def _alarm(
        self,
        name: str,
        severity: str = "ticket",
        *,
        window: tuple[int, int] | None = None,
        **alarm_args: Any,
    ) -> aws.cloudwatch.MetricAlarm:
        """Register alarm ``<component>-name`` with its evaluation window ((periods, datapoints);
        None: the shared M of N), actions and tags."""
        periods, datapoints = window or self._args.thresholds.window("shared")
        alarm = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{name}",
            **alarm_args,
            evaluation_periods=periods,
            datapoints_to_alarm=datapoints,
            **self._actions(severity),
            tags={**self._tags, "severity": severity},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._alarms.append(alarm)
        return alarm

    def _composite(
        self, name: str, inputs: Sequence[aws.cloudwatch.MetricAlarm], op: str, description: str
    ) -> None:
        """A paging composite alarm over cause alarms: the symptom, paged once."""
        rule = pulumi.Output.all(*[a.name for a in inputs]).apply(
            lambda names: f" {op} ".join(f'ALARM("{n}")' for n in names)
        )
        alarm = aws.cloudwatch.CompositeAlarm(
            f"{self._name}-{name}",
            # Composite alarms have no auto-naming: the stack keeps two stacks' names apart.
            alarm_name=f"{stack_scoped(self._name)}-{name}",
            alarm_rule=rule,
            alarm_description=f"{description} Severity: page.",
            **self._actions("page"),
            tags={**self._tags, "severity": "page"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._alarms.append(alarm)

    def _metric_alarm(
        self, prefix: str, spec: _alarms.MetricSpec, resource_id: pulumi.Input[str]
    ) -> aws.cloudwatch.MetricAlarm:
        t = self._args.thresholds
        threshold = float(getattr(t, spec.threshold_field))
        periods, datapoints = t.window(spec.window)
        return self._alarm(
            f"{prefix}-{spec.key}",
            spec.severity,
            window=(periods, datapoints),
            alarm_description=(
                f"{spec.metric_name} {spec.description}: {spec.statistic} "
                f"{'>' if spec.comparison.startswith('Greater') else '<'} {threshold:g} in {datapoints} of "
                f"{periods} periods. Severity: {spec.severity}. Missing data treated as {spec.why_missing}."
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

    def _iops_alarm(self, label: str, db_id: pulumi.Input[str]) -> None:
        t = self._args.thresholds
        dims = {_alarms.RDS_DIMENSION: db_id}
        self._alarm(
            f"rds-{label}-iops",
            alarm_description=(
                f"RDS ReadIOPS + WriteIOPS > {t.rds_iops:g}: near the provisioned IOPS both share. "
                "Severity: ticket. Missing data treated as missing (see the RDS event subscription)."
            ),
            metric_queries=[
                _expression_query("iops", "read+write", "total IOPS"),
                _metric_query("read", _alarms.RDS_NAMESPACE, "ReadIOPS", dims, t.period_seconds, "Average"),
                _metric_query("write", _alarms.RDS_NAMESPACE, "WriteIOPS", dims, t.period_seconds, "Average"),
            ],
            comparison_operator="GreaterThanThreshold",
            threshold=t.rds_iops,
            treat_missing_data="missing",
        )

    def _rpo_alarm(self, label: str, db_id: pulumi.Input[str]) -> None:
        """Page: the most lagging replica is further behind than the RPO, in seconds of WAL.

        ReplicaLag cannot say this (it grows on an idle primary and lives in the replica's
        region); the primary's OldestReplicationSlotLag (bytes not yet received by the slowest
        replica) divided by its WAL rate is the time behind, and 0 when nothing is written.
        """
        t = self._args.thresholds
        dims = {_alarms.RDS_DIMENSION: db_id}
        self._alarm(
            f"rds-{label}-replication-behind-rpo",
            "page",
            window=_alarms.RPO_WINDOW,
            alarm_description=(
                f"Replication behind the RPO: OldestReplicationSlotLag / TransactionLogsGeneration > "
                f"{t.rpo_seconds:g} s in {_alarms.RPO_WINDOW[1]} of {_alarms.RPO_WINDOW[0]} periods (WAL "
                "the slowest replica has not received, in seconds of the primary's write rate; 0 while "
                "under 1 KiB/s is written, so quiet hours do not page). Lives in the primary region: the "
                "replica regions' behind-rpo pages stand in when it is gone. "
                "Severity: page. Missing data treated as notBreaching: no replicas, no slot."
            ),
            metric_queries=[
                _expression_query("behind", "IF(wal > 1024, lag / wal, 0)", "seconds behind"),
                _metric_query(
                    "lag",
                    _alarms.RDS_NAMESPACE,
                    "OldestReplicationSlotLag",
                    dims,
                    t.period_seconds,
                    "Maximum",
                ),
                _metric_query(
                    "wal",
                    _alarms.RDS_NAMESPACE,
                    "TransactionLogsGeneration",
                    dims,
                    t.period_seconds,
                    "Average",
                ),
            ],
            comparison_operator="GreaterThanThreshold",
            threshold=t.rpo_seconds,
            treat_missing_data="notBreaching",
        )

    def _storage_page(self, label: str, db_id: pulumi.Input[str], low: aws.cloudwatch.MetricAlarm) -> None:
        """Page when storage is low *and* will run out within hours at the current rate."""
        t = self._args.thresholds
        dims = {_alarms.RDS_DIMENSION: db_id}
        fill = self._alarm(
            f"rds-{label}-hours-to-full",
            alarm_description=(
                f"FreeStorageSpace runs out within {t.storage_hours_to_full:g} h at the rate of the last "
                "hour (metric math; 1000 h while not shrinking). Severity: ticket (pages together with "
                "free-storage). Missing data treated as missing."
            ),
            metric_queries=[
                _expression_query(
                    "hours", "IF(RATE(free) < 0, free / (-RATE(free)) / 3600, 1000)", "hours until full"
                ),
                _metric_query("free", _alarms.RDS_NAMESPACE, "FreeStorageSpace", dims, 3600, "Minimum"),
            ],
            comparison_operator="LessThanThreshold",
            threshold=t.storage_hours_to_full,
            treat_missing_data="missing",
        )
        self._composite(
            f"rds-{label}-storage-running-out",
            [low, fill],
            "AND",
            f"Storage of {label} is below its free-space floor and runs out within "
            f"{t.storage_hours_to_full:g} h: writes stop when it is full.",
        )

    def _proxy_pool_alarm(self, label: str, proxy_name: pulumi.Input[str]) -> aws.cloudwatch.MetricAlarm:
        t = self._args.thresholds
        dims = {_alarms.PROXY_DIMENSION: proxy_name}
        return self._alarm(
            f"proxy-{label}-pool-utilization",
            alarm_description=(
                "RDS Proxy pool utilization 100*DatabaseConnections/MaxDatabaseConnectionsAllowed "
                f"> {t.proxy_pool_utilization_percent:g}%: clients will soon wait for a connection. "
                "Severity: ticket. Missing data treated as notBreaching: an idle proxy publishes nothing."
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

    def _cache_group_alarm(self, spec: _alarms.MetricSpec, members: list[pulumi.Input[str]]) -> None:
        """One alarm per replication group: MAX (or SUM) of the members' metric."""
        t = self._args.thresholds
        ids = [f"n{i}" for i in range(len(members))]
        threshold = float(getattr(t, spec.threshold_field))
        queries = [_expression_query("group", _alarms.group_expression(spec, ids), spec.metric_name)]
        for qid, member in zip(ids, members, strict=True):
            queries.append(
                _metric_query(
                    qid, spec.namespace, spec.metric_name, {spec.dimension: member}, t.period_seconds,
                    spec.statistic,
                )
            )  # fmt: skip
        self._alarm(
            f"cache-{spec.key}",
            spec.severity,
            alarm_description=(
                f"{spec.metric_name} {spec.description}: {_alarms.group_expression(spec, ids)} over the "
                f"group's nodes {'>' if spec.comparison.startswith('Greater') else '<'} {threshold:g}. "
                f"Severity: {spec.severity}. Missing data treated as {spec.why_missing}."
            ),
            metric_queries=queries,
            comparison_operator=spec.comparison,
            threshold=threshold,
            treat_missing_data=spec.treat_missing_data,
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
                f"lookups). Severity: ticket. Missing data treated as {_alarms.HIT_RATE_WHY}."
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
        resolved = pulumi.Output.all(region=self._region, **flat)

        def build(ids: dict[str, str]) -> str:
            by_group: dict[str, dict[str, str]] = {g: {} for g in groups}
            region = ids.pop("region")
            for key, rid in ids.items():
                g, label = key.split("|", 1)
                by_group[g][label] = rid
            # Keep the caller's order (Output.all over kwargs may reorder).
            ordered = {g: {label: by_group[g][label] for label in groups[g]} for g in groups}
            return _alarms.dashboard_body(
                region=region,
                sections=[
                    (
                        "RDS instances",
                        (*_alarms.RDS_INSTANCE_METRICS, *_alarms.RDS_WRITER_METRICS),
                        ordered["instances"],
                    ),
                    ("RDS replicas", _alarms.RDS_REPLICA_METRICS, ordered["replicas"]),
                    ("RDS Proxy", _alarms.PROXY_METRICS, ordered["proxies"]),
                    ("ElastiCache", _alarms.cache_specs(args.takes_writes), ordered["cache"]),
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
        prefix = self._region.apply(lambda r: f"{args.audit_log_prefix}{r}/")

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
            policy=pulumi.Output.all(bucket_arn, bucket_key_arn, prefix).apply(
                lambda a: _firehose_s3_policy(a[0], a[1], a[2])
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
                error_output_prefix=self._region.apply(lambda r: f"{args.audit_log_prefix}errors/{r}/"),
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
            assume_role_policy=pulumi.Output.all(account_id, self._region).apply(
                lambda a: _assume_role_policy(
                    "logs.amazonaws.com", a[0], source_arn=f"arn:aws:logs:{a[1]}:{a[0]}:*"
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


def _metric_query(
    qid: str, namespace: str, metric: str, dimensions: Mapping[str, pulumi.Input[str]], period: int, stat: str
) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    """A hidden input of a metric-math alarm: ``metric``'s ``stat`` over ``period`` seconds."""
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=qid,
        return_data=False,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace=namespace, metric_name=metric, dimensions=dimensions, stat=stat, period=period
        ),
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
