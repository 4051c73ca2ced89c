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
from typing import Any

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

    def dimensions(self, resource_id: str, *, target_group: str = "default") -> dict[str, str]:
        """The alarm's dimensions for one resource."""
        dims = {self.dimension: resource_id}
        if self.target_role_dimensions:
            dims.update({"TargetGroup": target_group, "TargetRole": "READ_WRITE"})
        return dims


def _rds(key: str, metric: str, statistic: str, comparison: str, threshold_field: str, description: str,
         *, missing: tuple[str, str] = ("missing", _RDS_GAP)) -> MetricSpec:  # fmt: skip
    """An AWS/RDS per-instance metric; ``missing`` is (treat_missing_data, why)."""
    return MetricSpec(key, RDS_NAMESPACE, metric, RDS_DIMENSION, statistic, comparison, threshold_field,
                      *missing, description)  # fmt: skip


def _proxy(key: str, metric: str, statistic: str, comparison: str, threshold_field: str, description: str,
           *, missing: tuple[str, str] = ("notBreaching", _PROXY_IDLE),
           **extra: Any) -> MetricSpec:  # fmt: skip
    """An AWS/RDS per-proxy metric (``extra``: fixed_period, target_role_dimensions)."""
    return MetricSpec(key, RDS_NAMESPACE, metric, PROXY_DIMENSION, statistic, comparison, threshold_field,
                      *missing, description, **extra)  # fmt: skip


def _cache(key: str, metric: str, statistic: str, comparison: str, threshold_field: str, description: str,
           *, missing: tuple[str, str] = ("missing", _CACHE_GAP)) -> MetricSpec:  # fmt: skip
    """An AWS/ElastiCache per-node metric."""
    return MetricSpec(key, CACHE_NAMESPACE, metric, CACHE_DIMENSION, statistic, comparison, threshold_field,
                      *missing, description)  # fmt: skip


RDS_INSTANCE_METRICS: tuple[MetricSpec, ...] = (
    _rds("cpu", "CPUUtilization", "Average", _GT, "rds_cpu_percent", "CPU above threshold (%)"),
    _rds("freeable-memory", "FreeableMemory", "Average", _LT, "rds_freeable_memory_bytes",
         "freeable memory below threshold (bytes)"),
    _rds("free-storage", "FreeStorageSpace", "Minimum", _LT, "rds_free_storage_bytes",
         "free storage below threshold (bytes); autoscaling should have grown the volume"),
    _rds("connections", "DatabaseConnections", "Maximum", _GT, "rds_database_connections",
         "connections above threshold"),
    _rds("read-iops", "ReadIOPS", "Average", _GT, "rds_read_iops", "read IOPS near the provisioned limit"),
    _rds("write-iops", "WriteIOPS", "Average", _GT, "rds_write_iops",
         "write IOPS near the provisioned limit"),
    _rds("read-latency", "ReadLatency", "Average", _GT, "rds_read_latency_seconds",
         "read latency above threshold (s)"),
    _rds("write-latency", "WriteLatency", "Average", _GT, "rds_write_latency_seconds",
         "write latency above threshold (s)"),
)  # fmt: skip
"""Alarmed on every DB instance, writer and replicas alike."""

RDS_REPLICA_METRICS: tuple[MetricSpec, ...] = (
    _rds("replica-lag", "ReplicaLag", "Maximum", _GT, "rds_replica_lag_seconds",
         "replication lag above threshold (s)",
         missing=("breaching", "breaching: a replica that stops reporting lag has usually stopped "
                  "replicating, and readers routed to it would serve ever staler data")),
)  # fmt: skip
"""Alarmed on read replicas only."""

PROXY_METRICS: tuple[MetricSpec, ...] = (
    _proxy("client-connections", "ClientConnections", "Sum", _GT, "proxy_client_connections",
           "client connections above threshold", fixed_period=60),
    _proxy("db-connections", "DatabaseConnections", "Sum", _GT, "proxy_database_connections",
           "proxy-to-database connections above threshold", fixed_period=60),
    _proxy("pinned", "DatabaseConnectionsCurrentlySessionPinned", "Sum", _GT, "proxy_pinned_connections",
           "session-pinned connections above threshold (SET, advisory locks, LISTEN... defeat pooling)",
           fixed_period=60),
    _proxy("query-requests", "QueryRequests", "Sum", _GT, "proxy_query_requests",
           "queries per period above threshold"),
    _proxy("max-connections-allowed", "MaxDatabaseConnectionsAllowed", "Sum", _LT,
           "proxy_max_connections_allowed_min",
           "connection capacity to the database collapsed below threshold", fixed_period=60),
    _proxy("availability", "AvailabilityPercentage", "Average", _LT, "proxy_availability_percent",
           "READ_WRITE target availability below threshold (%)", target_role_dimensions=True,
           missing=("missing", "missing: an outage shows as low values; a gap (a new proxy before its first "
                    "connection) is shown as INSUFFICIENT_DATA rather than paged")),
)  # fmt: skip
"""Alarmed on every RDS Proxy (ProxyName dimension set; AvailabilityPercentage by target role)."""

CACHE_METRICS: tuple[MetricSpec, ...] = (
    _cache("cpu", "CPUUtilization", "Average", _GT, "cache_cpu_percent", "host CPU above threshold (%)"),
    _cache("engine-cpu", "EngineCPUUtilization", "Average", _GT, "cache_engine_cpu_percent",
           "engine thread CPU above threshold (%)"),
    _cache("network-in", "NetworkBytesIn", "Sum", _GT, "cache_network_bytes_in",
           "bytes in per period above threshold"),
    _cache("network-out", "NetworkBytesOut", "Sum", _GT, "cache_network_bytes_out",
           "bytes out per period above threshold"),
    _cache("evictions", "Evictions", "Sum", _GT, "cache_evictions", "evictions per period above threshold"),
    _cache("connections", "CurrConnections", "Maximum", _GT, "cache_curr_connections",
           "client connections above threshold"),
    _cache("replication-lag", "ReplicationLag", "Maximum", _GT, "cache_replication_lag_seconds",
           "replica lag above threshold (s)",
           missing=("notBreaching", _CACHE_LAG_SILENCE)),
)  # fmt: skip
"""Alarmed on every ElastiCache member cluster."""

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
