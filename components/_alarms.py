"""The metric catalogue shared by ObservabilityLayer's alarms and its dashboard (pure, no resources).

Each :class:`MetricSpec` says which CloudWatch metric to watch, with which statistic and
comparison, which :class:`~components.observability_layer.AlarmThresholds` field holds the
threshold, and how missing data is treated (with the reason, which also lands in the alarm
description). Alarms and dashboard widgets are generated from the same tuples, so a metric cannot
be alarmed on but missing from the dashboard, or the other way round.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

RDS_NAMESPACE = "AWS/RDS"
CACHE_NAMESPACE = "AWS/ElastiCache"
RDS_DIMENSION = "DBInstanceIdentifier"
PROXY_DIMENSION = "ProxyName"
CACHE_DIMENSION = "CacheClusterId"

_GT = "GreaterThanThreshold"
_LT = "LessThanThreshold"

# Why-comments for treat_missing_data, reused across specs.
_RDS_GAP = (
    "missing: RDS publishes every minute while the instance runs; a gap means it is stopped, "
    "rebooting or failing over, which the RDS event subscription already reports"
)
_PROXY_IDLE = (
    "notBreaching: the proxy publishes some metrics only after its first connection and count "
    "metrics only when there is traffic, so silence is an idle proxy"
)
_CACHE_GAP = (
    "missing: ElastiCache publishes every minute per node; a gap is a node being replaced, which "
    "ElastiCache events report"
)

_CACHE_LAG_SILENCE = (
    "notBreaching: only replica nodes publish it and the primary role moves on failover, so every member "
    "is watched and the silent one is the current primary"
)
_PROMOTED = (
    "notBreaching: a replica stops publishing ReplicaLag when it is promoted; in the middle of a "
    "failover that silence must not page (a replica that stopped replicating shows on the primary's "
    "OldestReplicationSlotLag and in the RDS 'read replica' events)"
)
_NO_SLOT = "notBreaching: without replicas there is no replication slot and the metric is absent"

_PRIMARY_GONE = (
    "notBreaching: a replica stops publishing ReplicaLag when it is promoted or while it is being "
    "created (hours for a 1 TB copy), and either would page for hours; a replica cut off from its "
    "source keeps publishing a ReplicaLag that grows (it is now() minus the last replayed commit, "
    "computed on the replica), which is what fires this alarm"
)

Window = Literal["shared", "once", "outlast_heartbeat"]
"""How many one-period datapoints an alarm looks at: ``shared`` is AlarmThresholds'
``datapoints_to_alarm`` of ``evaluation_periods`` (M of N, so one spike does not page); ``once``
is 1 of 1 (the first breaching datapoint pages); ``outlast_heartbeat`` is N of N with N periods
covering one primary heartbeat interval plus one period, so an idle primary's sawtooth (ReplicaLag
drops to ~0 after every heartbeat) can never fill the window."""

Severity = Literal["page", "ticket"]
"""``page`` wakes someone (a symptom users feel or will feel within hours); ``ticket`` is a cause
to look at in working hours. Each goes to its own SNS topic."""


@dataclass(frozen=True)
class MetricSpec:
    """One alarmed (and graphed) metric."""

    key: str
    """Short kebab-case role used in resource names, e.g. ``cpu``."""
    namespace: str
    metric_name: str
    dimension: str
    """Name of the per-resource dimension (DBInstanceIdentifier, ProxyName, CacheClusterId)."""
    statistic: str
    comparison: str
    threshold_field: str
    """Attribute of AlarmThresholds holding the threshold."""
    treat_missing_data: str
    why_missing: str
    description: str
    fixed_period: int | None = None
    """Period forced for gauges reported once a minute per node and summed (see the proxy docs)."""
    target_role_dimensions: bool = False
    """Add ``TargetGroup`` and ``TargetRole=READ_WRITE`` (RDS Proxy AvailabilityPercentage only
    exists in that dimension set)."""
    severity: Severity = "ticket"
    regions: Literal["all", "writer", "reader"] = "all"
    """Cache specs: alarmed in every region, only where writes happen (the primary), or only in
    regions that take no writes (Global Datastore secondaries)."""
    window: Window = "shared"
    """Evaluation window (see :data:`Window`)."""

    def dimensions(self, resource_id: str, *, target_group: str = "default") -> dict[str, str]:
        """The alarm's dimensions for one resource."""
        dims = {self.dimension: resource_id}
        if self.target_role_dimensions:
            dims.update({"TargetGroup": target_group, "TargetRole": "READ_WRITE"})
        return dims


def _rds(key: str, metric: str, statistic: str, comparison: str, threshold_field: str, description: str,
         *, missing: tuple[str, str] = ("missing", _RDS_GAP), **extra: Any) -> MetricSpec:  # fmt: skip
    """An AWS/RDS per-instance metric; ``missing`` is (treat_missing_data, why)."""
    return MetricSpec(key, RDS_NAMESPACE, metric, RDS_DIMENSION, statistic, comparison, threshold_field,
                      *missing, description, **extra)  # fmt: skip


def _proxy(key: str, metric: str, statistic: str, comparison: str, threshold_field: str, description: str,
           *, missing: tuple[str, str] = ("notBreaching", _PROXY_IDLE),
           **extra: Any) -> MetricSpec:  # fmt: skip
    """An AWS/RDS per-proxy metric (``extra``: fixed_period, target_role_dimensions)."""
    return MetricSpec(key, RDS_NAMESPACE, metric, PROXY_DIMENSION, statistic, comparison, threshold_field,
                      *missing, description, **extra)  # fmt: skip


def _cache(key: str, metric: str, statistic: str, comparison: str, threshold_field: str, description: str,
           *, missing: tuple[str, str] = ("missing", _CACHE_GAP), **extra: Any) -> MetricSpec:  # fmt: skip
    """An AWS/ElastiCache metric, alarmed once per replication group over its members."""
    return MetricSpec(key, CACHE_NAMESPACE, metric, CACHE_DIMENSION, statistic, comparison, threshold_field,
                      *missing, description, **extra)  # fmt: skip


RDS_INSTANCE_METRICS: tuple[MetricSpec, ...] = (
    _rds("cpu", "CPUUtilization", "Average", _GT, "rds_cpu_percent", "CPU above threshold (%)"),
    _rds("freeable-memory", "FreeableMemory", "Average", _LT, "rds_freeable_memory_bytes",
         "freeable memory below threshold (bytes)"),
    _rds("free-storage", "FreeStorageSpace", "Minimum", _LT, "rds_free_storage_bytes",
         "free storage below threshold (bytes): autoscaling is at its ceiling or cannot keep up"),
    _rds("connections", "DatabaseConnections", "Maximum", _GT, "rds_database_connections",
         "connections near max_connections"),
    _rds("read-latency", "ReadLatency", "Average", _GT, "rds_read_latency_seconds",
         "read latency above threshold (s)"),
    _rds("write-latency", "WriteLatency", "Average", _GT, "rds_write_latency_seconds",
         "write latency above threshold (s)"),
)  # fmt: skip
"""Alarmed on every DB instance, writer and replicas alike (tickets: causes, not symptoms).
Total IOPS (read + write against the provisioned figure) is a metric-math alarm next to these."""

RDS_WRITER_METRICS: tuple[MetricSpec, ...] = (
    _rds("xid-age", "MaximumUsedTransactionIDs", "Maximum", _GT, "rds_xid_ticket",
         "transaction IDs used since the oldest unfrozen one: vacuum is falling behind"),
    _rds("xid-wraparound", "MaximumUsedTransactionIDs", "Maximum", _GT, "rds_xid_page",
         "transaction ID wraparound approaching: PostgreSQL stops taking writes at ~2.1 billion",
         severity="page"),
    _rds("slot-lag", "OldestReplicationSlotLag", "Maximum", _GT, "rds_slot_lag_bytes",
         "WAL retained for the most lagging replica (bytes): a stuck replica fills the primary's disk",
         missing=("notBreaching", _NO_SLOT)),
)  # fmt: skip
"""Alarmed on RDS PostgreSQL writers only (not Aurora: no physical slots, different wraparound)."""

RDS_REPLICA_METRICS: tuple[MetricSpec, ...] = (
    _rds("replica-lag", "ReplicaLag", "Maximum", _GT, "rds_replica_lag_seconds",
         "replica behind its source (s); RDS writes a heartbeat every 5 minutes, so an idle primary "
         "shows up to 300 s here and the threshold sits above that", missing=("notBreaching", _PROMOTED)),
)  # fmt: skip
"""Alarmed on read replicas only."""

PRIMARY_WATCH_METRICS: tuple[MetricSpec, ...] = (
    _rds("primary-silent", "ReplicaLag", "Maximum", _GT, "primary_silent_seconds",
         "this region's replica has replayed nothing from the primary region for longer than the "
         "primary's heartbeat allows: the primary region (or the link to it) is down",
         missing=("notBreaching", _PRIMARY_GONE), severity="page", window="once"),
    _rds("behind-rpo", "ReplicaLag", "Maximum", _GT, "replica_rpo_seconds",
         "this region's replica has been further behind than the RPO in every sample for longer than "
         "one primary heartbeat interval: what a regional failover would lose now exceeds the RPO",
         missing=("notBreaching", _PRIMARY_GONE), severity="page", window="outlast_heartbeat"),
)  # fmt: skip
"""Alarmed on cross-region replicas, in *their* region, paging through that region's own page
topic: the watchers outside the primary region, which keep working when it is gone (the primary
region's ``replication-behind-rpo`` page cannot notify once its region is lost)."""

PROXY_METRICS: tuple[MetricSpec, ...] = (
    _proxy("client-connections", "ClientConnections", "Sum", _GT, "proxy_client_connections",
           "client connections above threshold", fixed_period=60),
    _proxy("db-connections", "DatabaseConnections", "Sum", _GT, "proxy_database_connections",
           "proxy-to-database connections near the pool's ceiling", fixed_period=60),
    _proxy("pinned", "DatabaseConnectionsCurrentlySessionPinned", "Sum", _GT, "proxy_pinned_connections",
           "session-pinned connections above threshold (SET, advisory locks, LISTEN... defeat pooling)",
           fixed_period=60),
    _proxy("max-connections-allowed", "MaxDatabaseConnectionsAllowed", "Sum", _LT,
           "proxy_max_connections_allowed_min",
           "connection capacity to the database collapsed below threshold", fixed_period=60),
    _proxy("availability", "AvailabilityPercentage", "Average", _LT, "proxy_availability_percent",
           "READ_WRITE target availability below threshold (%)", target_role_dimensions=True,
           missing=("missing", "missing: an outage shows as low values; a gap (a new proxy before its first "
                    "connection) is shown as INSUFFICIENT_DATA rather than paged")),
)  # fmt: skip
"""Alarmed on every RDS Proxy (ProxyName dimension set; AvailabilityPercentage by target role).
The page is the composite "writer unavailable" over availability, pool utilization and capacity."""

CACHE_METRICS: tuple[MetricSpec, ...] = (
    _cache("engine-cpu", "EngineCPUUtilization", "Maximum", _GT, "cache_engine_cpu_percent",
           "busiest node's engine thread CPU above threshold (%)"),
    _cache("connections", "CurrConnections", "Maximum", _GT, "cache_curr_connections",
           "client connections on the busiest node near the 65,000 limit"),
    _cache("memory", "DatabaseMemoryUsagePercentage", "Maximum", _GT, "cache_memory_percent",
           "used memory of maxmemory above threshold (%): evictions follow", regions="writer"),
    _cache("evictions", "Evictions", "Sum", _GT, "cache_evictions", "evictions per period above threshold",
           regions="writer"),
    _cache("replication-lag", "ReplicationLag", "Maximum", _GT, "cache_replication_lag_seconds",
           "in-region replica lag above threshold (s)", missing=("notBreaching", _CACHE_LAG_SILENCE),
           regions="writer"),
    _cache("global-lag", "GlobalDatastoreReplicationLag", "Maximum", _GT, "cache_global_lag_seconds",
           "Global Datastore lag from the primary region above threshold (s)",
           missing=("notBreaching", "notBreaching: published by the secondary's primary node only; "
                    "a promoted secondary stops publishing it"), regions="reader"),
)  # fmt: skip
"""Alarmed once per replication group (metric math over its member nodes), not once per node.
Memory, evictions and in-region lag follow writes and are alarmed where writes happen; a region
that takes no writes mirrors those and is alarmed on what its readers feel (engine CPU,
connections) and on its lag behind the primary region. Caches fail open: no cache alarm pages."""


def cache_specs(takes_writes: bool) -> tuple[MetricSpec, ...]:
    """The cache specs for a region that takes writes (the primary) or not (a secondary)."""
    wanted = ("all", "writer") if takes_writes else ("all", "reader")
    return tuple(s for s in CACHE_METRICS if s.regions in wanted)


def group_expression(spec: MetricSpec, ids: Sequence[str]) -> str:
    """Metric math combining the members: MAX for gauges, SUM for per-period counts."""
    fn = "SUM" if spec.statistic == "Sum" else "MAX"
    return f"{fn}([{', '.join(ids)}])"


HIT_RATE_WHY = (
    "notBreaching: periods with fewer lookups than the minimum are reported as 100% by the "
    "expression, and no data means no traffic"
)


def hit_rate_expression(hit_ids: Sequence[str], miss_ids: Sequence[str], min_requests: float) -> str:
    """Metric-math hit rate in percent over all members; quiet periods count as 100%.

    ``IF(total >= min, 100*hits/total, 100)`` so a handful of lookups at night cannot page.
    """
    hits = "+".join(hit_ids)
    total = "+".join([*hit_ids, *miss_ids])
    return f"IF(({total}) >= {min_requests:g}, 100*({hits})/({total}), 100)"


def _widget(title: str, metrics: list[list[Any]], region: str, *, stat: str, period: int,
            threshold: float | None, x: int, y: int) -> dict[str, Any]:  # fmt: skip
    props: dict[str, Any] = {
        "title": title,
        "view": "timeSeries",
        "stacked": False,
        "region": region,
        "stat": stat,
        "period": period,
        "metrics": metrics,
    }
    if threshold is not None:
        props["annotations"] = {"horizontal": [{"label": "alarm threshold", "value": threshold}]}
    return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": props}


def dashboard_body(
    *,
    region: str,
    sections: Sequence[tuple[str, Sequence[MetricSpec], Mapping[str, str]]],
    thresholds: Any,
    target_group: str = "default",
    hit_rate_members: Sequence[str] = (),
) -> str:
    """CloudWatch dashboard JSON: a text header per section, one graph per metric spec.

    ``sections`` are (title, specs, {label: resource id}); sections without resources are left
    out. ``hit_rate_members`` (cache cluster ids) adds the hit-rate metric-math graph.
    """
    widgets: list[dict[str, Any]] = []
    y = 0
    for title, specs, resources in sections:
        if not resources:
            continue
        widgets.append({"type": "text", "x": 0, "y": y, "width": 24, "height": 1,
                        "properties": {"markdown": f"## {title}"}})  # fmt: skip
        y += 1
        for i, spec in enumerate(specs):
            metrics: list[list[Any]] = []
            for label, rid in resources.items():
                dims = spec.dimensions(rid, target_group=target_group)
                line: list[Any] = [spec.namespace, spec.metric_name]
                for k, v in dims.items():
                    line += [k, v]
                line.append({"label": label})
                metrics.append(line)
            widgets.append(
                _widget(f"{title}: {spec.metric_name}", metrics, region, stat=spec.statistic,
                        period=spec.fixed_period or thresholds.period_seconds,
                        threshold=getattr(thresholds, spec.threshold_field),
                        x=(i % 2) * 12, y=y + (i // 2) * 6)
            )  # fmt: skip
        y += ((len(specs) + 1) // 2) * 6
    if hit_rate_members:
        hit_ids = [f"h{i}" for i in range(len(hit_rate_members))]
        miss_ids = [f"m{i}" for i in range(len(hit_rate_members))]
        expr = hit_rate_expression(hit_ids, miss_ids, thresholds.cache_hit_rate_min_requests)
        metrics = [[{"expression": expr, "label": "hit rate %", "id": "rate"}]]
        for i, member in enumerate(hit_rate_members):
            for metric, mid in (("CacheHits", hit_ids[i]), ("CacheMisses", miss_ids[i])):
                metrics.append([CACHE_NAMESPACE, metric, CACHE_DIMENSION, member,
                                {"id": mid, "visible": False, "stat": "Sum"}])  # fmt: skip
        widgets.append(
            _widget("ElastiCache: hit rate (CacheHits / (CacheHits + CacheMisses))", metrics, region,
                    stat="Sum", period=thresholds.period_seconds,
                    threshold=thresholds.cache_hit_rate_percent, x=0, y=y)
        )  # fmt: skip
    if not widgets:
        widgets.append({"type": "text", "x": 0, "y": 0, "width": 24, "height": 2,
                        "properties": {"markdown": "No database resources in this region."}})  # fmt: skip
    return json.dumps({"widgets": widgets}, sort_keys=True)


# -- thresholds from sizes and the RPO -----------------------------------------------------------

# Memory (GiB) of RDS instance sizes by family group, from the AWS instance-type tables
# (Graviton r6g/r7g/r8g: 8 GiB per vCPU; m6g/m7g: 4 GiB per vCPU; burstable t3/t4g as listed).
_MEMORY_GIB: dict[str, dict[str, float]] = {
    "r": {"large": 16, "xlarge": 32, "2xlarge": 64, "4xlarge": 128, "8xlarge": 256, "12xlarge": 384,
          "16xlarge": 512, "24xlarge": 768},
    "m": {"large": 8, "xlarge": 16, "2xlarge": 32, "4xlarge": 64, "8xlarge": 128, "12xlarge": 192,
          "16xlarge": 256, "24xlarge": 384},
    "t": {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32},
}  # fmt: skip
_PG_CONNECTION_BYTES = 9531392
"""RDS for PostgreSQL's default ``max_connections`` is LEAST(DBInstanceClassMemory/9531392, 5000)."""
RPO_WINDOW = (2, 2)
"""(evaluation periods, datapoints to alarm) of the primary-side ``replication-behind-rpo`` page: two
consecutive minutes above the RPO. One datapoint is the ratio of two one-minute figures (bytes not
yet received / the average WAL rate), which one large statement's burst of WAL can push over the
RPO for a single period without the replica falling behind; the old 3 of 5 let breaches shorter
than ~3 minutes go unpaged."""
RDS_HEARTBEAT_SECONDS = 300
"""RDS for PostgreSQL writes a heartbeat every 5 minutes: an idle primary's replicas report up to
300 s of ReplicaLag (AWS docs, "Monitoring read replication")."""
GP3_BASELINE_IOPS = (3000, 12000)
"""gp3 baseline IOPS for RDS below / at or above 400 GiB (striped over four volumes)."""


def instance_memory_gib(instance_class: str) -> float | None:
    """Memory of ``db.<family>.<size>`` (None when the family is not in the table)."""
    parts = instance_class.split(".")
    if len(parts) != 3 or not parts[1]:
        return None
    return _MEMORY_GIB.get(parts[1][0], {}).get(parts[2])


@dataclass(frozen=True)
class DbCapacity:
    """What sizes the database alarms in one region: the class and storage the alarms watch."""

    instance_class: str
    allocated_gib: int
    max_allocated_gib: int | None = None
    storage_type: str = "gp3"
    provisioned_iops: int | None = None
    max_connections: int | None = None
    """Explicit ``max_connections`` parameter (None: the RDS default formula)."""
    proxy_max_connections_percent: int = 90
    """RDS Proxy's ``max_connections_percent`` of the writer's max_connections."""


def derive_thresholds(
    cap: DbCapacity, *, rpo_seconds: float, heartbeat_seconds: float = RDS_HEARTBEAT_SECONDS
) -> dict[str, tuple[float, str]]:
    """Threshold field -> (value, reasoning) from the instance size, storage, RPO and the primary's
    heartbeat interval (the longest a healthy primary goes without a commit; default RDS's 300 s).

    The reasoning is what the alarm catalogue (docs/alarms.md) prints next to each value.
    """
    out: dict[str, tuple[float, str]] = {}
    mem = instance_memory_gib(cap.instance_class)
    if cap.max_connections:
        max_conn = float(cap.max_connections)
        conn_src = f"max_connections parameter {cap.max_connections}"
    elif mem:
        max_conn = float(min(mem * 1024**3 // _PG_CONNECTION_BYTES, 5000))
        conn_src = f"RDS default LEAST({mem:g} GiB/9531392, 5000) = {max_conn:g}"
    else:
        max_conn, conn_src = 0.0, ""
    if max_conn:
        out["rds_database_connections"] = (0.8 * max_conn, f"80% of max_connections ({conn_src})")
        pool = max_conn * cap.proxy_max_connections_percent / 100
        out["proxy_database_connections"] = (
            0.8 * pool,
            f"80% of the proxy's pool ({cap.proxy_max_connections_percent}% of {max_conn:g} = {pool:g})",
        )
        out["proxy_max_connections_allowed_min"] = (
            0.5 * pool,
            "half the configured pool: capacity collapsed (failover to a smaller class, parameter change)",
        )
    if mem:
        out["rds_freeable_memory_bytes"] = (
            0.05 * mem * 1024**3,
            f"5% of {cap.instance_class}'s {mem:g} GiB: the OS is about to swap or the OOM killer acts",
        )
    iops = cap.provisioned_iops
    if iops is None and cap.storage_type == "gp3":
        iops = GP3_BASELINE_IOPS[1] if cap.allocated_gib >= 400 else GP3_BASELINE_IOPS[0]
    if iops:
        out["rds_iops"] = (0.8 * iops, f"80% of {iops:g} provisioned IOPS (read + write share them)")
    out["rds_free_storage_bytes"] = (
        0.05 * cap.allocated_gib * 1024**3,
        f"5% of the {cap.allocated_gib} GiB allocated: below storage autoscaling's 10% trigger, so "
        "firing means autoscaling did not act (at its ceiling or in its 6-hour cool-down)",
    )
    out["rds_slot_lag_bytes"] = (
        0.05 * cap.allocated_gib * 1024**3,
        f"5% of the {cap.allocated_gib} GiB volume held back for a lagging replica",
    )
    out["rds_replica_lag_seconds"] = (
        max(rpo_seconds, heartbeat_seconds) + 60,
        f"max(RPO {rpo_seconds:g} s, the {heartbeat_seconds:g} s heartbeat of an idle primary) + 60 s",
    )
    out["replica_rpo_seconds"] = (
        rpo_seconds + 10,
        f"RPO {rpo_seconds:g} s + 10 s: the first sample after an idle primary's heartbeat can land before "
        "the heartbeat is replayed (cross-region apply takes well under a second), and the next one then "
        "reads 60 s plus that delay",
    )
    out["primary_silent_seconds"] = (
        heartbeat_seconds + 60,
        f"the primary's {heartbeat_seconds:g} s heartbeat + 60 s: an idle primary commits at least that "
        "often, and replay held back by a replica query (max_standby_streaming_delay, 30 s by "
        "default) stays inside the margin, so one sample above it is a silent primary, not an idle one",
    )
    return out


def catalogue_rows(
    thresholds: Any, reasons: Mapping[str, str], *, takes_writes: bool
) -> list[tuple[str, str, str, str, str]]:
    """(alarm, severity, metric, threshold, why) for every spec a region gets: docs/alarms.md."""
    rows: list[tuple[str, str, str, str, str]] = []
    groups: list[tuple[str, Sequence[MetricSpec]]] = [
        ("RDS instance", RDS_INSTANCE_METRICS),
        ("RDS writer", RDS_WRITER_METRICS),
        ("RDS replica", RDS_REPLICA_METRICS),
        ("RDS cross-region replica (its region)", PRIMARY_WATCH_METRICS),
        ("RDS Proxy", PROXY_METRICS),
        ("ElastiCache group", cache_specs(takes_writes)),
    ]

    def shown(field: str) -> str:
        value = float(getattr(thresholds, field))
        return f"{value / 1024**3:,.3g} GiB" if field.endswith("_bytes") else f"{value:,.6g}"

    def evaluation(periods: int, datapoints: int, period: int) -> str:
        return f"Evaluation: {datapoints} of {periods} periods of {period} s"

    for scope, specs in groups:
        for spec in specs:
            op = ">" if spec.comparison == _GT else "<"
            why = reasons.get(spec.threshold_field, "default")
            periods, datapoints = thresholds.window(spec.window)
            rows.append((f"{scope}: {spec.key}", spec.severity, f"{spec.metric_name} ({spec.statistic})",
                         f"{op} {shown(spec.threshold_field)}", f"{spec.description}. Threshold: {why}. "
                         f"{evaluation(periods, datapoints, spec.fixed_period or thresholds.period_seconds)}."
                         " "
                         f"Missing data: {spec.why_missing}"))  # fmt: skip
    # Metric-math alarms built by ObservabilityLayer next to the specs.
    math = [
        ("RDS instance: iops", "ticket", "ReadIOPS + WriteIOPS", f"> {shown('rds_iops')}",
         f"near the IOPS read and write share. Threshold: {reasons.get('rds_iops', 'default')}"),
        ("RDS writer: hours-to-full", "ticket (input of a page)", "FreeStorageSpace / -RATE",
         f"< {shown('storage_hours_to_full')} h", "storage runs out within hours at the last hour's rate"),
        ("RDS writer: replication-behind-rpo", "page", "OldestReplicationSlotLag / TransactionLogsGeneration",
         f"> {shown('rpo_seconds')} s", "seconds of writes the slowest replica has not received: the RPO, "
         "immune to an idle primary (0 while under 1 KiB/s of WAL is written). "
         f"{evaluation(*RPO_WINDOW, thresholds.period_seconds)}: a breach pages at the second minute; it "
         "lives in the primary region, so the replica regions' behind-rpo pages stand in when it is gone"),
        ("RDS Proxy: pool-utilization", "ticket (input of a page)", "DatabaseConnections / MaxAllowed",
         f"> {shown('proxy_pool_utilization_percent')} %", "clients will soon wait for a connection"),
        ("ElastiCache group: hit-rate", "ticket", "CacheHits / (CacheHits + CacheMisses)",
         f"< {shown('cache_hit_rate_percent')} %",
         f"periods with >= {shown('cache_hit_rate_min_requests')} lookups only, so quiet nights stay quiet"),
    ]  # fmt: skip
    return rows + math
